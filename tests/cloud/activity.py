"""What the run's database shows: the server connections behind PgBouncer, sampled, and what
one batch's rows say at its end (`batch_rows`, read by figures.py).

PgBouncer's SHOW POOLS says clients waited for a server connection; `ActivitySampler` says what
held the connections meanwhile (which statement, waiting on which lock): a thread samples the
run's database over a direct connection (not through PgBouncer) every `interval` seconds.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg

_ACTIVITY = b"""
SELECT state, COALESCE(wait_event_type || ':' || wait_event, '-') AS wait,
       left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS query
FROM pg_stat_activity
WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'
  AND state <> 'idle'
"""


@dataclass
class Activity:
    samples: int = 0
    peak_busy: int = 0  # backends not idle at once (active or idle in transaction)
    peak_lock_waits: int = 0  # of those, waiting for a lock
    seen: Counter[str] = field(default_factory=Counter)  # "state | wait | query" per sample
    errors: list[str] = field(default_factory=list)

    def top(self, n: int = 6) -> list[tuple[str, int]]:
        return self.seen.most_common(n)


class ActivitySampler:
    def __init__(self, conninfo: str, dbname: str, interval: float = 0.5) -> None:
        self.conninfo = conninfo
        self.dbname = dbname
        self.interval = interval
        self.activity = Activity()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="activity", daemon=True)

    def start(self) -> ActivitySampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            with psycopg.connect(self.conninfo, autocommit=True) as conn:
                while not self._stop.wait(self.interval):
                    rows = conn.execute(_ACTIVITY, (self.dbname,)).fetchall()
                    self._add(rows)
        except psycopg.Error as exc:  # the figures say so; the run goes on
            self.activity.errors.append(f"{type(exc).__name__}: {exc}".strip())

    def _add(self, rows: list[tuple[str, str, str]]) -> None:
        act = self.activity
        act.samples += 1
        act.peak_busy = max(act.peak_busy, len(rows))
        act.peak_lock_waits = max(
            act.peak_lock_waits, sum(w.startswith("Lock") for _, w, _ in rows)
        )
        act.seen.update(f"{state} | {wait} | {query}" for state, wait, query in rows)


# --------------------------------------------------------------------------- a batch's rows

_REDISPATCHES = """
SELECT entity_type, entity_id, workflow_slug, attempt, status,
       extract(epoch FROM created_at - prev_at) AS gap_s, timeout_seconds
FROM (
    SELECT d.*, w.timeout_seconds,
           lag(d.created_at) OVER (PARTITION BY d.entity_id, d.workflow_slug
                                   ORDER BY d.attempt) AS prev_at
    FROM entity_dispatches d JOIN db_driven_enrichment_workflows w USING (workflow_slug)
    WHERE d.batch_id = %(b)s
) d
WHERE prev_at IS NOT NULL
"""


_STATUS = b"SELECT status FROM upload_batches WHERE id = %(b)s"


def batch_rows(url: str, batch: UUID) -> dict[str, Any]:
    params = {"b": batch}
    with psycopg.connect(url, autocommit=True) as conn:

        def one(sql: str) -> int:
            row = conn.execute(sql.encode(), params).fetchone()
            return int(row[0]) if row and row[0] is not None else 0

        def grouped(sql: str) -> dict[str, int]:
            return {str(k): int(n) for k, n in conn.execute(sql.encode(), params).fetchall()}

        redispatches = [
            {
                "entity_type": r[0],
                "entity_id": str(r[1]),
                "workflow": r[2],
                "attempt": r[3],
                "status": r[4],
                "gap_s": float(r[5]),
                "timeout_s": int(r[6]),
            }
            for r in conn.execute(_REDISPATCHES.encode(), params).fetchall()
        ]
        reasons = conn.execute(
            b"SELECT COALESCE(meta->>'reason', meta->>'error', '?'), count(*)"
            b" FROM workflow_states WHERE batch_id = %(b)s AND status = 'FAILED'"
            b" GROUP BY 1 ORDER BY 2 DESC LIMIT 5",
            params,
        ).fetchall()
        entity_states = grouped(
            "SELECT 'company ' || s.status, count(*) FROM company_workflow_states s"
            " JOIN normalized_companies c ON c.id = s.company_id WHERE c.batch_id = %(b)s"
            " GROUP BY 1 UNION ALL"
            " SELECT 'person ' || s.status, count(*) FROM person_workflow_states s"
            " JOIN normalized_people p ON p.id = s.person_id WHERE p.batch_id = %(b)s GROUP BY 1"
        )
        return {
            "status": str((conn.execute(_STATUS, params).fetchone() or ("?",))[0]),
            "companies": one("SELECT count(*) FROM normalized_companies WHERE batch_id = %(b)s"),
            "people": one("SELECT count(*) FROM normalized_people WHERE batch_id = %(b)s"),
            "dispatched": one(
                "SELECT count(DISTINCT (entity_id, workflow_slug)) FROM entity_dispatches"
                " WHERE batch_id = %(b)s"
            ),
            "dispatches": Counter(
                grouped(
                    "SELECT status, count(*) FROM entity_dispatches"
                    " WHERE batch_id = %(b)s GROUP BY 1"
                )
            ),
            "item_steps": grouped(
                "SELECT status, count(*) FROM workflow_states WHERE batch_id = %(b)s GROUP BY 1"
            ),
            "entity_states": entity_states,
            "reasons": [(str(r), int(n)) for r, n in reasons],
            "redispatches": redispatches,
        }
