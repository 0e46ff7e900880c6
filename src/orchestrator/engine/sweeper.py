"""The sweeper: nothing stays IN_PROGRESS forever.

Work past its lease is retried (a fresh dispatch, a fresh token) up to its workflow's attempt
limit, then FAILED with the reason; items waiting on an entity follow the entity. Work of a
runner that is gone (see `runners`) does not wait for its lease: its claims are released and
the calls nobody can answer any more are sent again at once. Runs from
`enrich sweep`, from the local runtime's heartbeat, and on a Modal schedule.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from uuid import UUID

from orchestrator.db.pool import Conn, Databases
from orchestrator.db.queries import query
from orchestrator.engine import runners
from orchestrator.engine.context import Trigger
from orchestrator.state.completion import apply_stored
from orchestrator.state.entity_kinds import KINDS, EntityKind
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
        live = runners.live_runners(conn)
        for kind in KINDS.values():
            # A stored result completes before its lease is judged: it is never sent again.
            applied = apply_stored(conn, kind, "everywhere")
            if applied.entities:
                report.entities[f"{kind.name} COMPLETED"] += applied.entities
            report.batches |= applied.batch_ids
            # Parameters, even none, make psycopg read %% in the SQL as a literal %.
            for row in conn.execute(entity_query("sweep_expired_entities", kind), {}):
                report.entities[f"{kind.name} {row['status']}"] += 1
            resent = resend_unanswerable(conn, kind, live, batch_id=None)
            if resent:
                report.entities[f"{kind.name} PENDING (caller gone)"] += resent
            params = {"entity_type": kind.name, "batch_id": None, "live": live}
            for row in conn.execute(entity_query("sweep_entity_items", kind), params):
                report.items[str(row["status"])] += 1
                report.batches.add(row["batch_id"])
        for row in conn.execute(query("sweep_expired_item_steps"), {"live": live}):
            report.items[str(row["status"])] += 1
            report.batches.add(row["batch_id"])
    if trigger is not None:
        for batch_id in report.batches:
            trigger.request(batch_id)
    return report


def resend_unanswerable(
    conn: Conn,
    kind: EntityKind,
    live: list[UUID],
    *,
    batch_id: UUID | None,
    resend_now: bool = False,
) -> int:
    """Supersede the calls of gone runners that can never be answered, and make their entities
    PENDING to be sent again; with `resend_now`, real providers' calls too."""
    cur = conn.execute(
        entity_query("resend_unanswerable", kind),
        {
            "entity_type": kind.name,
            "batch_id": batch_id,
            "live": live,
            "resend_now": resend_now,
        },
    )
    return cur.rowcount
