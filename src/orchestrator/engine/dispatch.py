"""The dispatch port: how claimed item-steps reach their step functions.

A call names a step and a chunk of item ids, never rows: step functions read what they need.
The local implementation runs calls on a thread pool; the Modal one (in `worker.py`) spawns
functions in the cloud.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Any, Protocol
from uuid import UUID

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepCall:
    """A chunk of one step's work: item ids in a batch, or entity ids for a manual play run."""

    batch_id: UUID | None
    step_name: str
    item_ids: tuple[UUID, ...]
    entity_ids: tuple[UUID, ...] = ()
    play_name: str | None = None
    step_number: int | None = None

    def to_json(self) -> dict[str, object]:
        """A plain form for crossing process boundaries (Modal spawn arguments)."""
        return {
            "batch_id": str(self.batch_id) if self.batch_id else None,
            "step_name": self.step_name,
            "item_ids": [str(i) for i in self.item_ids],
            "entity_ids": [str(i) for i in self.entity_ids],
            "play_name": self.play_name,
            "step_number": self.step_number,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepCall:
        batch = data.get("batch_id")
        return cls(
            batch_id=UUID(batch) if batch else None,
            step_name=str(data["step_name"]),
            item_ids=tuple(UUID(i) for i in data.get("item_ids", [])),
            entity_ids=tuple(UUID(i) for i in data.get("entity_ids", [])),
            play_name=data.get("play_name"),
            step_number=data.get("step_number"),
        )


class Dispatcher(Protocol):
    def dispatch(self, calls: Sequence[StepCall]) -> None: ...


def chunk_calls(
    batch_id: UUID, claimed: Iterable[tuple[UUID, str]], chunk_size: int
) -> list[StepCall]:
    """Group claimed (item id, step) pairs into calls of at most `chunk_size` items per step."""
    by_step: dict[str, list[UUID]] = {}
    for item_id, step in claimed:
        by_step.setdefault(step, []).append(item_id)
    calls = []
    for step, ids in by_step.items():
        it = iter(ids)
        while chunk := tuple(islice(it, chunk_size)):
            calls.append(StepCall(batch_id, step, chunk))
    return calls


class ThreadPoolDispatcher:
    """Runs each call on a local worker thread; `wait_idle` blocks until all have finished."""

    def __init__(self, run: Callable[[StepCall], None], workers: int = 4) -> None:
        self._run = run
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="step")
        self._in_flight = 0
        self._queued: dict[Future[None], StepCall] = {}
        self._idle = threading.Condition()

    def dispatch(self, calls: Sequence[StepCall]) -> None:
        for call in calls:
            with self._idle:
                self._in_flight += 1
                future = self._pool.submit(self._run, call)
                self._queued[future] = call
            future.add_done_callback(self._finished)

    def cancel_pending(self) -> list[StepCall]:
        """Cancel the calls no worker has started; returns them (their item-steps are still
        claimed: the caller releases them)."""
        with self._idle:
            queued = list(self._queued.items())
        return [call for future, call in queued if future.cancel()]

    def _finished(self, future: Future[None]) -> None:
        exc = None if future.cancelled() else future.exception()
        if exc is not None:
            log.error("step call crashed outside its own error handling", exc_info=exc)
        with self._idle:
            self._queued.pop(future, None)
            self._in_flight -= 1
            self._idle.notify_all()

    @property
    def idle(self) -> bool:
        with self._idle:
            return self._in_flight == 0

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
