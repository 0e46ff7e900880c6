"""What a batch looks like right now: per-step counts, and whether it is finished."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from uuid import UUID

from entities.status import Status
from orchestrator.db.pool import Conn
from orchestrator.db.queries import query

# The status of an uploaded batch held for launch: it sends nothing until it is launched.
HELD_FOR_LAUNCH = "HELD"


@dataclass
class StepCounts:
    step_number: int
    step_name: str
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> int:
        return self.counts[Status.COMPLETED] + self.counts[Status.FAILED]


@dataclass
class BatchProgress:
    batch_id: UUID
    steps: list[StepCounts]
    unadvanced: int
    # Workflows on hold (their webhooks are spent) that keep item-steps of the batch waiting:
    # slug -> the reason, which says what to configure.
    held: dict[str, str] = field(default_factory=dict)
    held_pending: int = 0

    @property
    def stopped_by_hold(self) -> bool:
        """All that is left waits for a held workflow: nothing moves until it is lifted."""
        return bool(self.held) and self.active == self.held_pending and self.unadvanced == 0

    @property
    def active(self) -> int:
        return sum(s.counts[Status.PENDING] + s.counts[Status.IN_PROGRESS] for s in self.steps)

    @property
    def done(self) -> bool:
        """Nothing waiting, running, or completed-but-not-yet-moved-on."""
        return bool(self.steps) and self.active == 0 and self.unadvanced == 0


def read_progress(conn: Conn, batch_id: UUID) -> BatchProgress:
    steps: dict[str, StepCounts] = {}
    unadvanced = 0
    for row in conn.execute(query("batch_progress"), {"batch_id": batch_id}):
        name = str(row["step_name"])
        step = steps.setdefault(name, StepCounts(int(row["step_number"]), name))
        step.counts[str(row["status"])] += int(row["items"])
        unadvanced += int(row["unadvanced"])
    ordered = sorted(steps.values(), key=lambda s: s.step_number)
    holds = conn.execute(query("batch_holds"), {"batch_id": batch_id}).fetchall()
    progress = BatchProgress(
        batch_id,
        ordered,
        unadvanced,
        held={str(h["workflow_slug"]): str(h["reason"]) for h in holds},
        held_pending=sum(int(h["pending"]) for h in holds),
    )
    batch = conn.execute(query("batch_play"), {"batch_id": batch_id}).fetchone()
    if batch is not None and batch["status"] == HELD_FOR_LAUNCH:
        # Held for launch: nothing of it moves until it is launched.
        progress.held = {"launch": launch_reason(batch_id)}
        progress.held_pending = progress.active
    return progress


def launch_reason(batch_id: UUID) -> str:
    return (
        f"batch {batch_id} is held for launch: nothing is sent until it is launched; read its"
        " forecast on its dashboard page (or `enrich estimate` of its file), then launch it with:"
        f" enrich launch {batch_id}"
    )
