"""What the simulator has seen, behind one lock: counters, history, open connections."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import Counter, deque
from decimal import Decimal
from typing import Any

from orchestrator.providers.simulators.clay.billing import Ledger
from orchestrator.providers.simulators.clay.config import SimulatorConfig
from orchestrator.providers.simulators.clay.records import CallbackJob, CallbackOutcome, Submission


class WindowMax:
    """Most events seen in any sliding window [s, s + width) with s >= `floor`.

    Fed exact, non-decreasing timestamps; events before `floor` are ignored, so
    no window starting before it counts. Amortized O(1) per event.
    """

    def __init__(self, width: float) -> None:
        self.width = width
        self.best = 0
        self._times: deque[float] = deque()

    def add(self, now: float, floor: float) -> None:
        if now < floor:
            return
        times = self._times
        times.append(now)
        while times[0] <= now - self.width:
            times.popleft()
        self.best = max(self.best, len(times))


class Traffic:
    """Arrival measurements since the first POST; the caller holds the state lock.

    Seconds are counted from the first POST received. The sliding-window maxima
    skip every window starting within the first second after it, so a sender's
    start-up burst does not hide its steady rate.
    """

    def __init__(self) -> None:
        self.origin: float | None = None
        self.received = 0
        self.received_per_second: Counter[int] = Counter()
        self.accepted_per_second: Counter[int] = Counter()
        self.received_1s = WindowMax(1.0)
        self.accepted_1s = WindowMax(1.0)
        self.received_10s = WindowMax(10.0)
        self.accepted_10s = WindowMax(10.0)
        self.times_accepted: Counter[tuple[str, str]] = Counter()  # (workflow_slug, entity_id)
        self.duplicates = 0  # (workflow_slug, entity_id) pairs accepted twice or more
        self.duplicate_submissions = 0  # acceptances beyond each pair's first
        self.duplicates_by_webhook: Counter[str] = Counter()  # those, by receiving webhook

    def receive(self, now: float) -> None:
        if self.origin is None:
            self.origin = now
        self.received += 1
        self.received_per_second[int(now - self.origin)] += 1
        floor = self.origin + 1.0
        self.received_1s.add(now, floor)
        self.received_10s.add(now, floor)

    def accept(self, now: float, webhook: str, workflow_slug: str, entity_id: str) -> None:
        origin = now if self.origin is None else self.origin
        self.accepted_per_second[int(max(0.0, now - origin))] += 1
        self.accepted_1s.add(now, origin + 1.0)
        self.accepted_10s.add(now, origin + 1.0)
        key = (workflow_slug, entity_id)
        self.times_accepted[key] += 1
        seen = self.times_accepted[key]
        if seen >= 2:
            if seen == 2:
                self.duplicates += 1
            self.duplicate_submissions += 1
            self.duplicates_by_webhook[webhook] += 1

    def snapshot(self, now: float) -> dict[str, Any]:
        seconds = max([*self.received_per_second, *self.accepted_per_second], default=-1) + 1
        return {
            "received": self.received,
            "duplicates": self.duplicates,
            "duplicate_submissions": self.duplicate_submissions,
            "duplicates_by_webhook": dict(self.duplicates_by_webhook),
            "max_accepted_in_1s": self.accepted_1s.best,
            "max_received_in_1s": self.received_1s.best,
            "max_rate_10s": self.accepted_10s.best / self.accepted_10s.width,
            "max_received_rate_10s": self.received_10s.best / self.received_10s.width,
            "received_per_second": [self.received_per_second[i] for i in range(seconds)],
            "accepted_per_second": [self.accepted_per_second[i] for i in range(seconds)],
            "seconds_since_first_post": 0.0 if self.origin is None else now - self.origin,
        }


class SimulatorState:
    """Bookkeeping behind ClaySimulator's introspection, all under one lock.

    Server threads and callback workers write here concurrently; readers get copies.
    """

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._submissions: list[Submission] = []
        self._accepted = 0
        self._by_entity: Counter[str] = Counter()
        self._by_webhook: Counter[str] = Counter()
        self._by_type: Counter[str] = Counter()
        self._rejected: Counter[int] = Counter()
        self._callback_statuses: Counter[int] = Counter()
        self._outcomes: list[CallbackOutcome] = []
        self._callbacks_sent = 0
        self._callbacks_failed = 0
        self._callbacks_dropped = 0
        self._callbacks_duplicated = 0
        self._callbacks_errored = 0
        self._traffic = Traffic()
        self._ledger = Ledger(config.prices)  # its own lock, taken after this one if both

    # -- introspection -----------------------------------------------------

    @property
    def submissions(self) -> list[Submission]:
        """Accepted rows in arrival order (empty when record_history is off)."""
        with self._lock:
            return list(self._submissions)

    @property
    def submissions_by_entity(self) -> Counter[str]:
        with self._lock:
            return Counter(self._by_entity)

    @property
    def submissions_by_webhook(self) -> Counter[str]:
        with self._lock:
            return Counter(self._by_webhook)

    def submission_count(self, entity_type: str | None = None) -> int:
        with self._lock:
            return self._accepted if entity_type is None else self._by_type[entity_type]

    @property
    def rejected(self) -> Counter[int]:
        with self._lock:
            return Counter(self._rejected)

    @property
    def callbacks_sent(self) -> int:
        """Callbacks the receiver answered with a non-5xx status."""
        with self._lock:
            return self._callbacks_sent

    @property
    def callbacks_failed(self) -> int:
        """Callbacks abandoned after retries (unreachable receiver or 5xx)."""
        with self._lock:
            return self._callbacks_failed

    @property
    def callbacks_dropped(self) -> int:
        """Callbacks never attempted: drop_rate, or discarded by stop()."""
        with self._lock:
            return self._callbacks_dropped

    @property
    def callbacks_duplicated(self) -> int:
        """Extra copies scheduled because of duplicate_rate."""
        with self._lock:
            return self._callbacks_duplicated

    @property
    def callbacks_errored(self) -> int:
        """Rows that were answered with an error callback (callback_failure_rate)."""
        with self._lock:
            return self._callbacks_errored

    @property
    def callback_statuses(self) -> Counter[int]:
        """Every receiver status seen, retried attempts included."""
        with self._lock:
            return Counter(self._callback_statuses)

    @property
    def callback_outcomes(self) -> list[CallbackOutcome]:
        with self._lock:
            return list(self._outcomes)

    def billed(self) -> tuple[Decimal, Decimal]:
        """(Actions, data credits) billed so far; the breakdown is stats()["billing"]."""
        return self._ledger.totals()

    def _stats(self, now: float) -> dict[str, Any]:
        """Everything GET /stats reports, except what the dispatcher knows."""
        with self._lock:
            snapshot = self._traffic.snapshot(now)
            snapshot.update(
                accepted=self._accepted,
                rejected={str(status): n for status, n in sorted(self._rejected.items())},
                accepted_by_webhook=dict(self._by_webhook),
                callbacks_sent=self._callbacks_sent,
                callbacks_failed=self._callbacks_failed,
                callbacks_dropped=self._callbacks_dropped,
                callbacks_duplicated=self._callbacks_duplicated,
                callbacks_errored=self._callbacks_errored,
                # Acceptances are billed under this lock too, so `accepted` and the rows
                # billed agree (lock order: state, then ledger).
                billing=self._ledger.snapshot(),
            )
        return snapshot

    # -- recording (called from server threads and callback workers) ---------

    def _record_outcome(self, outcome: CallbackOutcome) -> None:
        delivered = outcome.status is not None and outcome.status < 500
        with self._lock:
            if self.config.record_history:
                self._outcomes.append(outcome)
            if delivered:
                self._callbacks_sent += 1
            else:
                self._callbacks_failed += 1

    def _record_send(self, job: CallbackJob) -> None:
        if job.charge is not None:
            self._ledger.settle(job.charge)

    def _record_status(self, status: int) -> None:
        with self._lock:
            self._callback_statuses[status] += 1

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def _close_connections(self) -> None:
        # Idle keep-alive connections would otherwise outlive stop().
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
