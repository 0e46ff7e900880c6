"""Thread-safe token bucket, shared per key inside one process.

Every sender thread that targets one limit must draw from the same bucket; `bucket_for` hands
out that shared bucket. A limit shared by several processes (Clay's, per workspace) is kept in
the database instead (`orchestrator.steps.send_rate`), behind the same `SendPacer` interface.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["SendPacer", "TokenBucket", "bucket_for", "reset_buckets"]

Clock = Callable[[], float]
_EPSILON = 1e-9
Sleep = Callable[[float], None]


def _is_unlimited(rate_per_second: float) -> bool:
    return rate_per_second <= 0 or math.isinf(rate_per_second) or math.isnan(rate_per_second)


class SendPacer(Protocol):
    """What a sender needs of a rate limit: this bucket, or one shared through a database."""

    def acquire(self, n: int = 1) -> float: ...

    def penalize(self, seconds: float) -> None: ...


class TokenBucket:
    """Classic token bucket: `rate_per_second` refill, at most `burst` tokens banked.

    `burst` defaults to one second's worth of tokens (at least 1), which lets a
    sender that was idle start at full speed without ever exceeding the rate
    averaged over a second. A rate <= 0 or infinite means unlimited.
    """

    def __init__(
        self,
        rate_per_second: float,
        burst: int | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if burst is not None and burst < 1:
            raise ValueError("burst must be >= 1")
        self._unlimited = _is_unlimited(rate_per_second)
        self._rate = 0.0 if self._unlimited else float(rate_per_second)
        default_burst = 1 if self._unlimited else max(1, math.ceil(self._rate))
        self._capacity = float(burst if burst is not None else default_burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self._capacity
        self._updated = clock()
        # Nobody may take tokens before this instant (set by `penalize`).
        self._blocked_until = -math.inf

    @property
    def rate_per_second(self) -> float:
        """Refill rate; math.inf when unlimited."""
        return math.inf if self._unlimited else self._rate

    @property
    def capacity(self) -> int:
        return int(self._capacity)

    def acquire(self, n: int = 1) -> float:
        """Block until `n` tokens are taken; return the seconds spent waiting."""
        self._check_n(n)
        waited = 0.0
        while True:
            delay = self.try_acquire(n)
            if delay <= 0:
                return waited
            self._sleep(delay)
            waited += delay

    def try_acquire(self, n: int = 1) -> float:
        """Take `n` tokens if possible right now and return 0.0.

        Otherwise take nothing and return the seconds until they could be taken
        (a hint: other threads may get there first). Used directly by servers
        that answer 429 instead of blocking.
        """
        self._check_n(n)
        with self._lock:
            now = self._clock()
            if now < self._blocked_until:
                return self._blocked_until - now
            if self._unlimited:
                return 0.0
            self._refill(now)
            # The epsilon absorbs float rounding in the refill: without it a
            # sleeper can wake a hair short of a token and spin on tiny sleeps.
            if self._tokens + _EPSILON >= n:
                self._tokens -= n
                return 0.0
            return (n - self._tokens) / self._rate

    def penalize(self, seconds: float) -> None:
        """Stop everybody from sending until now + `seconds` (e.g. a Retry-After).

        The bank is emptied and no tokens accrue during the penalty, so once it
        ends the waiting senders resume at the steady rate instead of bursting.
        """
        if not seconds > 0:  # also rejects NaN
            return
        with self._lock:
            now = self._clock()
            until = now + seconds
            if until <= self._blocked_until:
                return
            self._blocked_until = until
            if not self._unlimited:
                self._refill(now)
                self._tokens = min(self._tokens, 0.0)
                self._updated = until

    def blocked_for(self) -> float:
        """Seconds left on the current penalty (0.0 when none)."""
        with self._lock:
            return max(0.0, self._blocked_until - self._clock())

    def _refill(self, now: float) -> None:
        # `_updated` may lie in the future after a penalty; no refill until then.
        elapsed = now - self._updated
        if elapsed > 0:
            self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
            self._updated = now

    def _check_n(self, n: int) -> None:
        if n < 1:
            raise ValueError("n must be >= 1")
        if n > self._capacity and not self._unlimited:
            # Could never be satisfied: fail loudly instead of blocking forever.
            raise ValueError(f"cannot take {n} tokens from a bucket of {int(self._capacity)}")

    def __repr__(self) -> str:
        rate = "unlimited" if self._unlimited else f"{self._rate:g}/s"
        return f"TokenBucket(rate={rate}, burst={int(self._capacity)})"


_registry: dict[str, TokenBucket] = {}
_registry_lock = threading.Lock()


def bucket_for(key: str, rate_per_second: float) -> TokenBucket:
    """The process-wide bucket for `key`, created on first use.

    The first caller's rate wins for a given key: every sender of one webhook
    must share one budget, so a later, different rate must not fork it. A
    caller asking for a different rate gets the existing bucket anyway.
    """
    with _registry_lock:
        bucket = _registry.get(key)
        if bucket is None:
            bucket = TokenBucket(rate_per_second)
            _registry[key] = bucket
        return bucket


def reset_buckets() -> None:
    """Forget every shared bucket (for tests that need a fresh budget)."""
    with _registry_lock:
        _registry.clear()
