"""What a batch looks like right now: per-step counts, and whether it is finished."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from uuid import UUID

from entities.status import Status
from orchestrator.db.pool import Conn
from orchestrator.db.queries import query


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
    return BatchProgress(batch_id, ordered, unadvanced)
