"""Status values shared by item steps and entity workflows."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


FINISHED = frozenset({Status.COMPLETED, Status.FAILED})
