"""Records the simulator keeps and passes around: submissions, callbacks, replies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.providers.simulators.clay.billing import CallbackCharge


@dataclass(frozen=True, slots=True)
class Submission:
    """One accepted row."""

    row_id: str
    webhook: str
    entity_type: str
    entity_id: str
    row: dict[str, Any]
    received_at: float  # time.time()


@dataclass(frozen=True, slots=True)
class CallbackOutcome:
    """Final result of one callback delivery (after its retries)."""

    row_id: str
    entity_id: str
    kind: str  # "data" | "error"
    duplicate: bool
    status: int | None  # last receiver status; None when it never answered
    attempts: int
    error: str | None  # exception class name when the receiver was unreachable


@dataclass(frozen=True, slots=True)
class CallbackJob:
    url: str
    body: bytes
    headers: dict[str, str]
    row_id: str
    entity_id: str
    kind: str
    duplicate: bool
    # Shared by a row's duplicated copies, so whichever is sent first bills the row.
    charge: CallbackCharge | None = None


@dataclass(slots=True)
class Reply:
    status: int
    payload: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    jobs: list[tuple[CallbackJob, float]] = field(default_factory=list)
