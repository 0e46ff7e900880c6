"""Coalesced orchestrator passes.

Step completions and Clay callbacks each ask for a pass; a burst of hundreds of requests must
cause a few passes, not hundreds. Requests only mark a batch dirty; one background thread runs
at most one pass per batch per `min_interval`, and re-checks unfinished batches on a heartbeat
so a lost request delays work but never strands it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from uuid import UUID

from orchestrator.engine.passes import PassResult

log = logging.getLogger(__name__)


class CoalescingTrigger:
    def __init__(
        self,
        run_pass: Callable[[UUID], PassResult],
        *,
        min_interval: float = 0.1,
        heartbeat: float = 2.0,
    ) -> None:
        self._run_pass = run_pass
        self._min_interval = min_interval
        self._heartbeat = heartbeat
        self._dirty: set[UUID] = set()
        self._unfinished: set[UUID] = set()
        self._driven: set[UUID] = set()
        self._passing = False
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="orchestrator", daemon=True)
        self.passes = 0
        self.requests = 0
        self.finished = threading.Condition(self._lock)
        self.last_results: dict[UUID, PassResult] = {}

    def start(self) -> CoalescingTrigger:
        self._thread.start()
        return self

    def drives(self, batch_id: UUID) -> bool:
        """Whether this trigger was ever asked to run the batch."""
        with self._lock:
            return batch_id in self._driven

    def request(self, batch_id: UUID) -> None:
        with self._lock:
            self._driven.add(batch_id)
            self.requests += 1
            self._dirty.add(batch_id)
            self._unfinished.add(batch_id)
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def wait_finished(self, batch_id: UUID, timeout: float | None = None) -> bool:
        """Block until a pass finds the batch done."""
        with self.finished:
            return self.finished.wait_for(
                lambda: batch_id not in self._unfinished or self._stop.is_set(), timeout
            )

    def wait_settled(self, timeout: float | None = None) -> bool:
        """Block until every pass requested so far has run (callers that need what the
        receivers stored to be completed, such as tests and benchmarks)."""
        with self.finished:
            return self.finished.wait_for(
                lambda: not (self._dirty or self._passing) or self._stop.is_set(), timeout
            )

    def _take_dirty(self, heartbeat_due: bool) -> set[UUID]:
        with self._lock:
            batches = set(self._dirty)
            if heartbeat_due:
                batches |= self._unfinished
            self._dirty.clear()
            self._passing = bool(batches)
            return batches

    def _passes_done(self) -> None:
        with self._lock:
            self._passing = False
            self.finished.notify_all()

    def _loop(self) -> None:
        last_pass = 0.0
        while not self._stop.is_set():
            woke = self._wake.wait(timeout=self._heartbeat)
            self._wake.clear()
            if self._stop.is_set():
                return
            # Let a burst accumulate: everything requested in the interval shares one pass.
            delay = self._min_interval - (time.monotonic() - last_pass)
            if delay > 0:
                time.sleep(delay)
            last_pass = time.monotonic()
            for batch_id in self._take_dirty(heartbeat_due=not woke):
                self._pass(batch_id)
            self._passes_done()

    def _pass(self, batch_id: UUID) -> None:
        try:
            result = self._run_pass(batch_id)
        except Exception:
            log.exception("orchestrator pass over batch %s failed; will retry", batch_id)
            return
        with self._lock:
            self.passes += 1
            self.last_results[batch_id] = result
            if result.done:
                self._unfinished.discard(batch_id)
                self.finished.notify_all()
