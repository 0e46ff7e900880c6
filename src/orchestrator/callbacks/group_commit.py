"""Group commit for receivers: callbacks that arrive together are stored by one transaction.

A burst of Clay callbacks is hundreds of small writes a second. Committed one by one, each
costs a pooled connection, a statement and a WAL flush, and the receivers queue for
connections that senders and passes also need. Here a receiver thread hands its verified
callback to one writer thread and waits: the writer stores everything that queued meanwhile
with one statement per entity kind and one commit, then answers them all. A callback is still
answered only once its result is durable, and a group that fails is retried callback by
callback, so one bad callback never fails the others.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from uuid import UUID

from orchestrator.callbacks.answers import Answer, Stored, store_results, stored_answer
from orchestrator.db.pool import Databases

log = logging.getLogger(__name__)

# Bounds one statement's size and locks; a larger burst is simply several groups.
MAX_GROUP = 256


@dataclass(frozen=True)
class _Pending:
    answer: Answer
    future: Future[Stored | None] = field(default_factory=Future)


def _first_per_dispatch(group: Sequence[_Pending]) -> tuple[list[_Pending], list[_Pending]]:
    """A dispatch goes into a statement once; its duplicates wait for the next round."""
    seen: set[UUID] = set()
    first: list[_Pending] = []
    later: list[_Pending] = []
    for pending in group:
        dispatch = pending.answer.dispatch_id
        (later if dispatch in seen else first).append(pending)
        seen.add(dispatch)
    return first, later


class GroupCommitWriter:
    """Stores receivers' results in groups; `store` blocks until its group is committed."""

    def __init__(self, dbs: Databases, *, max_group: int = MAX_GROUP) -> None:
        self._dbs = dbs
        self._max_group = max_group
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.groups = 0

    def store(self, answer: Answer) -> Stored | None:
        """Store the answer in the next group and wait for its commit (from a worker thread)."""
        return self.submit(answer).result()

    def submit(self, answer: Answer) -> Future[Stored | None]:
        """Queue the answer for the next group; the future resolves once it is committed."""
        pending = _Pending(answer)
        self._ensure_started()
        self._queue.put(pending)
        return pending.future

    def close(self) -> None:
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=30)

    def _ensure_started(self) -> None:
        # Started on first use: a process that never receives a callback keeps no thread.
        with self._lock:
            if self._closed:
                raise RuntimeError("the callback writer is closed")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="callback-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while (first := self._queue.get()) is not None:
            group, stop = self._drain([first])
            self._write_rounds(group)
            if stop:
                break
        self._refuse_leftovers()

    def _refuse_leftovers(self) -> None:
        # Callers that queued while the writer closed get an error (a 500 that Clay retries)
        # instead of waiting forever.
        while True:
            try:
                pending = self._queue.get_nowait()
            except queue.Empty:
                return
            if pending is not None:
                pending.future.set_exception(RuntimeError("the callback writer is closed"))

    def _drain(self, group: list[_Pending]) -> tuple[list[_Pending], bool]:
        while len(group) < self._max_group:
            try:
                pending = self._queue.get_nowait()
            except queue.Empty:
                return group, False
            if pending is None:
                return group, True
            group.append(pending)
        return group, False

    def _write_rounds(self, group: list[_Pending]) -> None:
        while group:
            first, group = _first_per_dispatch(group)
            try:
                self._write(first)
            except Exception as exc:
                self._write_alone(first, exc)

    def _write(self, group: Sequence[_Pending]) -> None:
        with self._dbs.hq.connection() as conn:
            answers: dict[UUID, Stored | None] = {}
            for kind in {p.answer.kind for p in group}:
                of_kind = [p.answer for p in group if p.answer.kind == kind]
                rows = store_results(conn, kind, of_kind)
                for answer in of_kind:
                    row = rows.get(answer.dispatch_id)
                    answers[answer.dispatch_id] = stored_answer(conn, answer, row)
        self.groups += 1
        for pending in group:
            pending.future.set_result(answers[pending.answer.dispatch_id])

    def _write_alone(self, group: Sequence[_Pending], exc: Exception) -> None:
        if len(group) == 1:
            group[0].future.set_exception(exc)
            return
        log.info("a group of %d callbacks failed (%s); storing them one by one", len(group), exc)
        for pending in group:
            try:
                self._write([pending])
            except Exception as alone:
                pending.future.set_exception(alone)
