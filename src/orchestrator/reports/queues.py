"""The pages the source documents name, read from `company_play_step_completions` alone:
"Manual GTM Enrichment Stages" (a queue per step of a play) and "Company Enrichment Pipeline"
("X / N steps completed", with the destination row that proves each step)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import sql

from orchestrator.db.pool import Conn, Databases
from orchestrator.db.queries import query
from orchestrator.reports.leads import decode_cursor, encode_cursor

_FIRST_ID = UUID(int=0)
RESULT_TABLE = "company_enrichment_results"
RESULTS_VIEW = "company_results"


@dataclass(frozen=True)
class QueueStep:
    step_number: int
    workflow_slug: str
    title: str
    provider: str
    entity_type: str
    call_ceiling: Decimal  # the most one call costs
    previous_step: int | None
    ready: int | None  # None: not a company step, so no queue of companies

    @property
    def runnable(self) -> bool:
        return self.entity_type == "company"


@dataclass(frozen=True)
class QueuedCompany:
    id: UUID
    domain: str
    name: str
    client_name: str
    last_step: int | None
    last_workflow: str | None
    last_attempted_at: datetime | None


def play_names(conn: Conn) -> list[str]:
    return [str(r["play_name"]) for r in conn.execute(query("play_names"))]


def upload_play_names(conn: Conn) -> list[str]:
    """The plays a file can be uploaded to (their first step works on its rows)."""
    return [str(r["play_name"]) for r in conn.execute(query("upload_play_names"))]


def queue_steps(conn: Conn, play_name: str, batch_id: UUID | None = None) -> list[QueueStep]:
    params = {"play_name": play_name, "batch_id": batch_id}
    return [
        QueueStep(
            int(r["step_number"]),
            str(r["workflow_slug"]),
            str(r["title"]),
            str(r["provider"]),
            str(r["entity_type"]),
            Decimal(r["call_ceiling"]),
            r["previous_step"],
            None if r["ready"] is None else int(r["ready"]),
        )
        for r in conn.execute(query("queue_steps"), params)
    ]


def _like(search: str | None) -> str | None:
    text = (search or "").strip()
    if not text:
        return None
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _after(cursor: str | None) -> tuple[str, UUID]:
    """A page starts after the (domain, id) of the last row of the page before."""
    if not cursor:
        return "", _FIRST_ID
    domain, ident = decode_cursor(cursor)
    try:
        return domain, UUID(ident)
    except ValueError:
        raise ValueError(f"malformed cursor {cursor[:40]!r}: follow the page's own links") from None


def cursor_of(domain: str, company_id: UUID) -> str:
    return encode_cursor(domain, str(company_id))


def queued_companies(
    conn: Conn,
    play_name: str,
    step: QueueStep,
    *,
    batch_id: UUID | None = None,
    search: str | None = None,
    after: str | None = None,
    limit: int = 100,
) -> list[QueuedCompany]:
    after_domain, after_id = _after(after)
    params: dict[str, Any] = {
        "play_name": play_name,
        "step_number": step.step_number,
        "previous_step": step.previous_step,
        "batch_id": batch_id,
        "search": _like(search),
        "after_domain": after_domain,
        "after_id": after_id,
        "limit": limit,
    }
    return [
        QueuedCompany(
            UUID(str(r["id"])),
            str(r["domain"]),
            str(r["name"]),
            str(r["client_name"]),
            r["last_step"],
            r["last_workflow"],
            r["last_attempted_at"],
        )
        for r in conn.execute(query("queue_companies"), params)
    ]


@dataclass(frozen=True)
class PipelineLine:
    id: UUID
    domain: str
    name: str
    client_name: str
    completed: int


def pipeline_list(
    conn: Conn,
    play_name: str,
    *,
    search: str | None = None,
    after: str | None = None,
    limit: int = 100,
) -> list[PipelineLine]:
    after_domain, after_id = _after(after)
    params = {
        "play_name": play_name,
        "search": _like(search),
        "after_domain": after_domain,
        "after_id": after_id,
        "limit": limit,
    }
    return [
        PipelineLine(
            UUID(str(r["id"])),
            str(r["domain"]),
            str(r["name"]),
            str(r["client_name"]),
            int(r["completed"]),
        )
        for r in conn.execute(query("company_pipeline_list"), params)
    ]


@dataclass(frozen=True)
class StepProof:
    step_number: int
    workflow_slug: str
    title: str
    completed_at: datetime | None
    destination: str  # "hq.company_enrichment_results" or "workspace.company_homepage_scrapes"
    proof: dict[str, Any] | None  # the destination row, shortened; None when there is none

    @property
    def orphaned(self) -> bool:
        """Completed with no data behind it: the integrity rule is broken."""
        return self.completed_at is not None and self.proof is None


@dataclass(frozen=True)
class PlayPipeline:
    play_name: str
    steps: list[StepProof]

    @property
    def completed(self) -> int:
        return sum(1 for s in self.steps if s.completed_at is not None)


def _short(row: dict[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for key, value in row.items():
        text = str(value)
        shown[key] = text if len(text) <= 120 else text[:117] + "..."
    return shown


def _proof(dbs: Databases, company_id: UUID, row: dict[str, Any]) -> dict[str, Any] | None:
    table = str(row["destination_table_name"] or RESULT_TABLE)
    if table == "batch_items" or row["entity_type"] != "company":
        return None
    where = sql.SQL("company_id = %(id)s")
    params: dict[str, Any] = {"id": company_id, "slug": row["workflow_slug"]}
    source = table
    if table == RESULT_TABLE:
        where = sql.SQL("company_id = %(id)s AND workflow_slug = %(slug)s")
        # Its own result or the one of its client's earlier batch it reuses.
        source = RESULTS_VIEW
    stmt = sql.SQL("SELECT * FROM {} WHERE {} ORDER BY created_at DESC LIMIT 1").format(
        sql.Identifier(source), where
    )
    pool = dbs.workspace if row["destination_db"] == "workspace" else dbs.hq
    with pool.connection() as conn:
        found = conn.execute(stmt, params).fetchone()
    return _short(dict(found)) if found else None


def company_pipelines(dbs: Databases, company_id: UUID) -> list[PlayPipeline]:
    with dbs.hq.connection() as conn:
        params = {"company_id": company_id}
        rows = [dict(r) for r in conn.execute(query("company_play_steps"), params)]
    plays: dict[str, list[StepProof]] = {}
    for row in rows:
        done = row["completion_id"] is not None
        db = str(row["destination_db"])
        table = str(row["destination_table_name"] or RESULT_TABLE)
        plays.setdefault(str(row["play_name"]), []).append(
            StepProof(
                int(row["step_number"]),
                str(row["workflow_slug"]),
                str(row["title"]),
                row["completed_at"],
                f"{db}.{table}",
                _proof(dbs, company_id, row) if done else None,
            )
        )
    return [PlayPipeline(name, steps) for name, steps in plays.items()]


def company(conn: Conn, company_id: UUID) -> dict[str, Any]:
    """Raises LookupError when there is no such company."""
    row = conn.execute(query("company_by_id"), {"company_id": company_id}).fetchone()
    if row is None:
        raise LookupError(f"no company {company_id}")
    return dict(row)
