"""What the simulator has seen, behind one lock: counters, history, open connections."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import Counter

from orchestrator.providers.simulators.clay.config import SimulatorConfig
from orchestrator.providers.simulators.clay.records import CallbackOutcome, Submission


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
