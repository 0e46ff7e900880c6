"""What the server connections behind PgBouncer were doing: pg_stat_activity, sampled.

PgBouncer's SHOW POOLS says clients waited for a server connection; this says what held the
connections meanwhile (which statement, waiting on which lock). A thread samples the run's
database over a direct connection (not through PgBouncer) every `interval` seconds.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

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
