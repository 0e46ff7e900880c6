"""Resume an interrupted batch and retry a failed one, without redoing work that succeeded."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from orchestrator.db.pool import Conn, Databases
from orchestrator.db.queries import query
from orchestrator.engine import runners
from orchestrator.engine.passes import UnknownBatchError
from orchestrator.engine.sweeper import resend_unanswerable
from orchestrator.state.entity_kinds import KINDS, EntityKind
from orchestrator.state.entity_store import entity_query


@dataclass(frozen=True)
class ProviderWait:
    """Calls a real provider accepted whose caller is gone: their callbacks may still come."""

    calls: int = 0
    earliest: datetime | None = None
    latest: datetime | None = None
    credits: Decimal = Decimal(0)

    def __add__(self, other: ProviderWait) -> ProviderWait:
        def pick(a: datetime | None, b: datetime | None, f: Any) -> datetime | None:
            return f(x for x in (a, b) if x is not None) if (a or b) else None

        return ProviderWait(
            self.calls + other.calls,
            pick(self.earliest, other.earliest, min),
            pick(self.latest, other.latest, max),
            self.credits + other.credits,
        )


@dataclass(frozen=True)
class RecoveryReport:
    item_steps: int
    entities: int = 0
    resent: int = 0
    waiting: ProviderWait = field(default_factory=ProviderWait)

    def as_json(self) -> dict[str, Any]:
        return {
            "item_steps_released": self.item_steps,
            "entities_resent": self.resent,
            "waiting": {
                "calls": self.waiting.calls,
                "earliest_lease_expiry": self.waiting.earliest,
                "latest_lease_expiry": self.waiting.latest,
                "resend_now_credits": float(self.waiting.credits),
            },
        }


def _reopen(databases: Databases, batch_id: UUID) -> None:
    with databases.hq.connection() as conn:
        conn.execute(query("reopen_batch"), {"batch_id": batch_id})


def _waits(conn: Conn, kind: EntityKind, batch_id: UUID, live: list[UUID]) -> ProviderWait:
    row = conn.execute(
        entity_query("provider_waits", kind),
        {"batch_id": batch_id, "entity_type": kind.name, "live": live},
    ).fetchone()
    if row is None or not row["calls"]:
        return ProviderWait()
    return ProviderWait(row["calls"], row["earliest"], row["latest"], Decimal(row["credits"]))


def prepare_resume(dbs: Databases, batch_id: UUID, *, resend_now: bool = False) -> RecoveryReport:
    """Take over what runners that are gone left of the batch: their claims are released, the
    calls nobody can answer any more are sent again (with `resend_now`, real providers' too),
    and what a real provider may still answer is reported as a wait."""
    with dbs.hq.connection() as conn:
        live = runners.live_runners(conn)
        params = {"batch_id": batch_id, "live": live}
        released = conn.execute(query("release_orphaned_item_steps"), params).rowcount
        resent, waiting = 0, ProviderWait()
        for kind in KINDS.values():
            resent += resend_unanswerable(
                conn, kind, live, batch_id=batch_id, resend_now=resend_now
            )
            items = conn.execute(
                entity_query("sweep_entity_items", kind), {**params, "entity_type": kind.name}
            )
            released += items.rowcount
            waiting += _waits(conn, kind, batch_id, live)
    _reopen(dbs, batch_id)
    return RecoveryReport(released, resent=resent, waiting=waiting)


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


def retry_failure_group(dbs: Databases, batch_id: UUID, step_name: str, reason: str) -> int:
    """The items of one failure group (a step and a reason) go back to PENDING, with the failed
    entities behind them; other failures of the batch stay as they are. Returns the items."""
    params = {"batch_id": batch_id, "step_name": step_name, "reason": reason}
    # One transaction (the pool's connection block): the entities and their items together.
    with dbs.hq.connection() as conn:
        for kind in KINDS.values():
            conn.execute(entity_query("retry_failure_group_entities", kind), params)
        items = conn.execute(query("retry_failure_group_items"), params).rowcount
        if items:
            conn.execute(query("reopen_batch"), {"batch_id": batch_id})
    return items


class NotHeldError(ValueError):
    """Only a batch held for launch can be launched."""


def launch_batch(dbs: Databases, batch_id: UUID, *, reuse: bool | None = None) -> None:
    """Start a batch uploaded held (HELD -> RUNNING); `reuse` False makes it call for every
    entity instead of reusing the client's fresh results. Its runner then drives it."""
    with dbs.hq.connection() as conn:
        launched = conn.execute(
            query("launch_batch"), {"batch_id": batch_id, "reuse": reuse}
        ).fetchone()
        if launched is None:
            row = conn.execute(query("batch_play"), {"batch_id": batch_id}).fetchone()
            if row is None:
                raise UnknownBatchError(f"no upload batch {batch_id}")
            if row["status"] == "RUNNING":
                raise NotHeldError(
                    f"batch {batch_id} is not waiting for a launch: it was launched already, or"
                    " uploaded without --hold; if nothing runs it, resume it with:"
                    f" enrich resume {batch_id}"
                )
            raise NotHeldError(
                f"batch {batch_id} is {str(row['status']).lower()} already: there is nothing"
                " to launch"
            )
