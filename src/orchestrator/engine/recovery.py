"""Resume an interrupted batch and retry a failed one, without redoing work that succeeded."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from orchestrator.db.pool import Databases
from orchestrator.db.queries import query
from orchestrator.state.entity_kinds import KINDS
from orchestrator.state.entity_store import entity_query


@dataclass(frozen=True)
class RecoveryReport:
    item_steps: int
    entities: int = 0


def _reopen(databases: Databases, batch_id: UUID) -> None:
    with databases.hq.connection() as conn:
        conn.execute(query("reopen_batch"), {"batch_id": batch_id})


def prepare_resume(dbs: Databases, batch_id: UUID) -> RecoveryReport:
    """Hand back the item-steps a dead process had claimed; entity work waits for its lease."""
    with dbs.hq.connection() as conn:
        released = conn.execute(query("release_orphaned_item_steps"), {"batch_id": batch_id})
        count = released.rowcount
    _reopen(dbs, batch_id)
    return RecoveryReport(count)


def prepare_retry(dbs: Databases, batch_id: UUID) -> RecoveryReport:
    """FAILED items and entities of the batch go back to PENDING with fresh attempts."""
    entities = 0
    with dbs.hq.connection() as conn:
        for kind in KINDS.values():
            cur = conn.execute(entity_query("retry_failed_entities", kind), {"batch_id": batch_id})
            entities += cur.rowcount
        items = conn.execute(query("retry_failed_item_steps"), {"batch_id": batch_id}).rowcount
    _reopen(dbs, batch_id)
    return RecoveryReport(items, entities)
