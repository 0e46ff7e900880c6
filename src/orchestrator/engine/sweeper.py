"""The sweeper: nothing stays IN_PROGRESS forever.

Work past its lease is retried (a fresh dispatch, a fresh token) up to its workflow's attempt
limit, then FAILED with the reason; items waiting on an entity follow the entity. Work of a
runner that is gone (see `runners`) does not wait for its lease: its claims are released and
the calls nobody can answer any more are sent again at once. Runs from
`enrich sweep`, from the local runtime's heartbeat, and on a Modal schedule.

One sweep at a time, across every process and container: a sweep is one transaction whose first
statement takes a transaction-scoped advisory lock without waiting. A second sweep that finds
it taken returns at once, saying who holds it. The lock ends with its transaction: at commit,
when the holder's connection dies with its process, or, for a holder that hangs inside its
transaction, after `STUCK_AFTER_SECONDS` idle (the transaction's own
idle_in_transaction_session_timeout). Nothing is kept by the session, so it works behind a
transaction pooler (Supabase's port 6543) as on a direct connection.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from orchestrator.db.pool import Conn, Databases
from orchestrator.db.queries import query
from orchestrator.engine import runners
from orchestrator.engine.context import Trigger
from orchestrator.state.completion import apply_stored
from orchestrator.state.entity_kinds import KINDS, EntityKind
from orchestrator.state.entity_store import entity_query

# The two keys of the advisory lock: "enri" and "swee" in ASCII, apart from other applications'.
SWEEP_LOCK = (0x656E7269, 0x73776565)
STUCK_AFTER_SECONDS = 60.0

_TAKE_LOCK = """
SELECT set_config('idle_in_transaction_session_timeout', %(stuck_ms)s, true),
       pg_try_advisory_xact_lock(%(class)s, %(object)s) AS taken
"""
# The session holding the lock (a two-key advisory lock shows with objsubid 2).
_LOCK_HOLDER = """
SELECT a.pid, a.xact_start, a.application_name
FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.database = (
        SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid::bigint = %(class)s AND l.objid::bigint = %(object)s AND l.objsubid = 2
"""


@dataclass
class SweepReport:
    entities: Counter[str] = field(default_factory=Counter)
    items: Counter[str] = field(default_factory=Counter)
    batches: set[UUID] = field(default_factory=set)
    # Set when this sweep did nothing because another one holds the lock: who and since when.
    skipped: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.entities or self.items)


def take_sweep_lock(conn: Conn, stuck_after: float = STUCK_AFTER_SECONDS) -> str | None:
    """Take the sweep lock for `conn`'s transaction: None when taken, else who holds it. The
    transaction is ended by the server if it stays idle `stuck_after` seconds."""
    params: dict[str, Any] = {
        "stuck_ms": str(max(1, round(stuck_after * 1000))),
        "class": SWEEP_LOCK[0],
        "object": SWEEP_LOCK[1],
    }
    row = conn.execute(_TAKE_LOCK, params).fetchone()
    if row is not None and row["taken"]:
        return None
    holder = conn.execute(_LOCK_HOLDER, params).fetchone()
    if holder is None or holder["pid"] is None:
        return "another sweep holds the sweep lock"
    since = holder["xact_start"]
    return (
        f"another sweep holds the sweep lock (server process {holder['pid']}"
        + (f", its transaction started {since.isoformat(timespec='seconds')}" if since else "")
        + ")"
    )


def sweep(
    dbs: Databases, trigger: Trigger | None = None, *, stuck_after: float = STUCK_AFTER_SECONDS
) -> SweepReport:
    report = SweepReport()
    with dbs.hq.connection() as conn:
        report.skipped = take_sweep_lock(conn, stuck_after)
        if report.skipped is not None:
            return report
        live = runners.live_runners(conn)
        for kind in KINDS.values():
            # A stored result completes before its lease is judged: it is never sent again.
            applied = apply_stored(conn, kind, "everywhere")
            if applied.entities:
                report.entities[f"{kind.name} COMPLETED"] += applied.entities
            report.batches |= applied.batch_ids
            # Parameters, even none, make psycopg read %% in the SQL as a literal %.
            expired = conn.execute(entity_query("sweep_expired_entities", kind), {}).fetchall()
            for row in expired:
                report.entities[f"{kind.name} {row['status']}"] += 1
            if expired:
                ended = {
                    "ids": [r["dispatch_id"] for r in expired],
                    "statuses": [r["status"] for r in expired],
                }
                conn.execute(query("end_expired_dispatches"), ended)
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
