"""The workflow registry as people check it: every row of `db_driven_enrichment_workflows`
with what is wrong with it (a bad row, or a destination table or column that is missing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.db.pool import Databases
from orchestrator.state.destinations import destination_problems
from orchestrator.state.registry import RegistryError, parse_workflow

# Results of these tables are written by the engine itself, whose columns are fixed.
_ENGINE_TABLES = (None, "company_enrichment_results", "person_enrichment_results")


@dataclass(frozen=True)
class WorkflowCheck:
    row: dict[str, Any]
    plays: list[str]
    problems: list[str]

    @property
    def slug(self) -> str:
        return str(self.row["workflow_slug"])


def _problems(dbs: Databases, row: dict[str, Any]) -> list[str]:
    try:
        workflow = parse_workflow(row)
    except RegistryError as exc:
        return [str(exc)]
    if workflow.provider == "internal" or workflow.destination_table_name in _ENGINE_TABLES:
        return []
    return destination_problems(dbs, workflow)


def check_workflows(dbs: Databases) -> list[WorkflowCheck]:
    with dbs.hq.connection() as conn:
        rows = [
            dict(r)
            for r in conn.execute(
                "SELECT w.*, COALESCE(array_agg(p.play_name || ' #' || p.step_number"
                " ORDER BY p.play_name, p.step_number) FILTER (WHERE p.play_name IS NOT NULL),"
                " '{}') AS plays"
                " FROM db_driven_enrichment_workflows w"
                " LEFT JOIN play_steps p ON p.workflow_slug = w.workflow_slug"
                " GROUP BY w.id ORDER BY w.overall_step_number, w.workflow_slug"
            )
        ]
    return [WorkflowCheck(row, list(row.pop("plays")), _problems(dbs, row)) for row in rows]
