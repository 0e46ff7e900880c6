"""One send rate per provider account, shared by every process and container through Postgres.

Clay limits a workspace, not a webhook or a process: twenty containers with a bucket each would
send twenty times its rate. The account's row holds the time the next row may go (the generic
cell rate algorithm): reserving a send is one statement that moves that time on by 1/rate and
answers how long to wait, so senders never poll and never hold a lock while they wait. It works
through a transaction pooler: nothing lives in a session.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import psycopg

from orchestrator.db.pool import Conn, Databases
from orchestrator.db.queries import query

log = logging.getLogger(__name__)

Sleep = Callable[[float], None]


class SharedSendRate:
    """`acquire` and `penalize` as `providers.ratelimit.TokenBucket` has them, for ClayClient."""

    def __init__(
        self,
        dbs: Databases,
        account: str,
        rate_per_second: float,
        burst: int,
        sleep: Sleep = time.sleep,
    ) -> None:
        if not rate_per_second > 0 or math.isinf(rate_per_second):
            raise ValueError(f"a shared send rate needs a finite rate > 0, not {rate_per_second}")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        self._dbs = dbs
        self.account = account
        self._interval = 1.0 / rate_per_second
        # Rows that may go at once after a quiet spell.
        self._tolerance = burst * self._interval
        self._sleep = sleep
        self.rate_per_second = rate_per_second
        self.capacity = burst

    def acquire(self, n: int = 1) -> float:
        """Reserve the next `n` send slots of the account and wait for them; seconds waited."""
        with self._dbs.hq.connection() as conn:
            wait = max(0.0, self._last_wait(conn, n))
        if wait > 0:
            self._sleep(wait)
        return wait

    def schedule(self, conn: Conn, n: int) -> list[float]:
        """Reserve `n` slots in one statement, in `conn`'s transaction: seconds from now until
        each may go. A chunk's rows are paced without a statement each."""
        if n <= 0:
            return []
        last = self._last_wait(conn, n)
        return [max(0.0, last - (n - k) * self._interval) for k in range(1, n + 1)]

    def penalize(self, seconds: float) -> None:
        """Nobody of the account sends for `seconds` (Clay answered 429 with Retry-After)."""
        if not seconds > 0:
            return
        try:
            with self._dbs.hq.connection() as conn:
                conn.execute(
                    query("delay_sends"),
                    {"account": self.account, "seconds": seconds, "tolerance": self._tolerance},
                )
        except psycopg.Error:
            # The sender that was told to wait waits anyway; the others learn from their 429.
            log.warning("could not share a %.1f s send delay for %s", seconds, self.account)

    def _last_wait(self, conn: Conn, n: int) -> float:
        row = conn.execute(
            query("reserve_send_slot"),
            {"account": self.account, "interval": n * self._interval, "tolerance": self._tolerance},
        ).fetchone()
        return float(row["last_wait"]) if row else 0.0

    def __repr__(self) -> str:
        return (
            f"SharedSendRate({self.account!r}, {self.rate_per_second:g}/s, burst {self.capacity})"
        )
