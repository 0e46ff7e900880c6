"""The enrichment logger: one log row for every attempt, and the step completion that the
pipeline UI trusts, written only after the storage worker verified the data is there."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from orchestrator.db.pool import Conn
from orchestrator.db.queries import query
from orchestrator.state.registry import WorkflowConfig


@dataclass(frozen=True)
class PlayPosition:
    """The play step a result completes; unset parts come from the company's batch play."""

    play_name: str | None = None
    step_number: int | None = None
    batch_id: UUID | None = None


@dataclass(frozen=True)
class LogEntry:
    workflow: WorkflowConfig
    company_id: UUID | None
    position: PlayPosition = field(default_factory=PlayPosition)
    company_domain: str | None = None
    person_id: UUID | None = None
    error: str | None = None
    result_table: str | None = None


def log_enrichment(conn: Conn, entry: LogEntry, *, verified: bool) -> bool:
    """Returns whether a step completion was recorded."""
    row = conn.execute(
        query("log_result"),
        {
            "workflow_id": entry.workflow.id,
            "workflow_slug": entry.workflow.workflow_slug,
            "company_id": entry.company_id,
            "company_domain": entry.company_domain,
            "person_id": entry.person_id,
            "batch_id": entry.position.batch_id,
            "play_name": entry.position.play_name,
            "step_number": entry.position.step_number,
            "status": "error" if entry.error else "success",
            "error": entry.error,
            "result_table": entry.result_table,
            "verified": verified and entry.error is None,
        },
    ).fetchone()
    return bool(row and row["completed"])
