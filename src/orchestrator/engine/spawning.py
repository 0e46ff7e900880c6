"""Dispatch and trigger for a deployment where every step runs in its own container.

Both only need a `spawn` callable, so they are plain code: `worker.py` passes Modal's
`Function.spawn`, tests pass a recorder.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from uuid import UUID

from orchestrator.db.pool import Databases
from orchestrator.db.queries import query
from orchestrator.engine.dispatch import StepCall

SpawnStep = Callable[[dict[str, object]], object]
SpawnPass = Callable[[str], object]


class SpawningDispatcher:
    """One spawn per chunk of items, never one per item, never a blocking call."""

    def __init__(self, spawn: SpawnStep) -> None:
        self._spawn = spawn

    def dispatch(self, calls: Sequence[StepCall]) -> None:
        for call in calls:
            self._spawn(call.to_json())


class DatabaseCoalescingTrigger:
    """Coalesces pass requests from any number of containers through the batch row."""

    def __init__(self, dbs: Databases, spawn: SpawnPass, window_seconds: float = 1.0) -> None:
        self._dbs = dbs
        self._spawn = spawn
        self._window = window_seconds

    def request(self, batch_id: UUID) -> None:
        with self._dbs.hq.connection() as conn:
            scheduled = conn.execute(
                query("schedule_pass"), {"batch_id": batch_id, "window": self._window}
            ).fetchone()
        if scheduled is not None:
            self._spawn(str(batch_id))


def wait_for_scheduled_pass(dbs: Databases, batch_id: UUID, *, max_wait: float = 30.0) -> None:
    """Sleep until the end of the pass's coalescing window, so it sees every request in it."""
    with dbs.hq.connection() as conn:
        row = conn.execute(query("pass_due_at"), {"batch_id": batch_id}).fetchone()
        now = conn.execute("SELECT NOW() AS now").fetchone()
    if row and row["next_pass_at"] and now:
        delay = (row["next_pass_at"] - now["now"]).total_seconds()
        time.sleep(min(max(delay, 0.0), max_wait))
