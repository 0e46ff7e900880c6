"""The sweeper: nothing stays IN_PROGRESS forever.

Work past its lease is retried (a fresh dispatch, a fresh token) up to its workflow's attempt
limit, then FAILED with the reason; items waiting on an entity follow the entity. Runs from
`enrich sweep`, from the local runtime's heartbeat, and on a Modal schedule.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from uuid import UUID

from orchestrator.db.pool import Databases
from orchestrator.db.queries import query
from orchestrator.engine.context import Trigger
from orchestrator.state.completion import apply_stored
from orchestrator.state.entity_kinds import KINDS
from orchestrator.state.entity_store import entity_query


@dataclass
class SweepReport:
    entities: Counter[str] = field(default_factory=Counter)
    items: Counter[str] = field(default_factory=Counter)
    batches: set[UUID] = field(default_factory=set)

    @property
    def changed(self) -> bool:
        return bool(self.entities or self.items)


def sweep(dbs: Databases, trigger: Trigger | None = None) -> SweepReport:
    report = SweepReport()
    with dbs.hq.connection() as conn:
        for kind in KINDS.values():
            # A stored result completes before its lease is judged: it is never sent again.
            applied = apply_stored(conn, kind, "everywhere")
            if applied.entities:
                report.entities[f"{kind.name} COMPLETED"] += applied.entities
            report.batches |= applied.batch_ids
            # Parameters, even none, make psycopg read %% in the SQL as a literal %.
            for row in conn.execute(entity_query("sweep_expired_entities", kind), {}):
                report.entities[f"{kind.name} {row['status']}"] += 1
            params = {"entity_type": kind.name}
            for row in conn.execute(entity_query("sweep_entity_items", kind), params):
                report.items[str(row["status"])] += 1
                report.batches.add(row["batch_id"])
        for row in conn.execute(query("sweep_expired_item_steps"), {}):
            report.items[str(row["status"])] += 1
            report.batches.add(row["batch_id"])
    if trigger is not None:
        for batch_id in report.batches:
            trigger.request(batch_id)
    return report
