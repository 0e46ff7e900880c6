"""Cross-check every step completion against its destination data, in HQ and Workspace.

The source-of-truth rule: a row of `company_play_step_completions` must never exist without
data in the workflow's destination table. Completions that fail the check are orphans;
`fix` deletes exactly those.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from psycopg import sql

from orchestrator.db.pool import Databases
from orchestrator.db.queries import query
from orchestrator.state.destinations import destination_problems
from orchestrator.state.registry import RegistryError, WorkflowConfig, load_workflow

RESULT_TABLE = "company_enrichment_results"
# A company's own results and the one it reuses.
RESULTS_VIEW = "company_results"


@dataclass(frozen=True)
class Orphan:
    completion_id: UUID
    company_id: UUID
    play_name: str
    step_number: int
    workflow_slug: str
    reason: str


@dataclass
class IntegrityReport:
    checked: int = 0
    orphans: list[Orphan] = field(default_factory=list)


def _present(dbs: Databases, workflow: WorkflowConfig, company_ids: list[UUID]) -> set[UUID]:
    """Companies that have data in the workflow's destination."""
    table = workflow.destination_table_name or RESULT_TABLE
    pool = dbs.workspace if workflow.destination_db == "workspace" else dbs.hq
    where = "company_id = ANY(%(ids)s::uuid[])"
    params: dict[str, Any] = {"ids": company_ids}
    if table == RESULT_TABLE:
        # The shared result table holds every Clay workflow's results: match this one's.
        where += " AND workflow_slug = %(slug)s"
        params["slug"] = workflow.workflow_slug
    # A company may reuse a result of its client's earlier batch: the view holds both.
    source = RESULTS_VIEW if table == RESULT_TABLE else table
    stmt = sql.SQL("SELECT DISTINCT company_id FROM {} WHERE " + where).format(
        sql.Identifier(source)
    )
    with pool.connection() as conn:
        return {r["company_id"] for r in conn.execute(stmt, params)}


def _missing(dbs: Databases, slug: str, company_ids: list[UUID]) -> dict[UUID, str]:
    try:
        with dbs.hq.connection() as conn:
            workflow = load_workflow(conn, slug)
    except RegistryError:
        return dict.fromkeys(company_ids, f"workflow {slug!r} no longer exists")
    table = workflow.destination_table_name or RESULT_TABLE
    if table != RESULT_TABLE:
        problems = destination_problems(dbs, workflow)
        if any("does not exist" in p for p in problems):
            return dict.fromkeys(company_ids, "; ".join(problems))
    present = _present(dbs, workflow, company_ids)
    where = f"{table} ({workflow.destination_db})"
    return {c: f"no data in {where}" for c in company_ids if c not in present}


def check(dbs: Databases) -> IntegrityReport:
    with dbs.hq.connection() as conn:
        completions = [dict(r) for r in conn.execute(query("completions_by_workflow"))]
    by_workflow: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in completions:
        by_workflow[row["workflow_slug"]].append(row)
    report = IntegrityReport(checked=len(completions))
    for slug, rows in by_workflow.items():
        missing = _missing(dbs, slug, [r["company_id"] for r in rows])
        report.orphans += [
            Orphan(
                r["id"],
                r["company_id"],
                r["play_name"],
                r["step_number"],
                slug,
                missing[r["company_id"]],
            )
            for r in rows
            if r["company_id"] in missing
        ]
    return report


def fix(dbs: Databases, report: IntegrityReport) -> int:
    """Delete exactly the orphaned completions found by `check`."""
    if not report.orphans:
        return 0
    with dbs.hq.connection() as conn:
        ids = [o.completion_id for o in report.orphans]
        return conn.execute(query("delete_completions"), {"ids": ids}).rowcount
