"""Manual play steps ("user clicks Run Step 1"): run one step of a play for chosen companies,
or every company of a batch, through the same dispatcher as the pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import Any
from uuid import UUID

from orchestrator.db.pool import Databases
from orchestrator.db.queries import query
from orchestrator.engine.dispatch import Dispatcher, StepCall
from orchestrator.state.destinations import destination_problems
from orchestrator.state.registry import RegistryError, WorkflowConfig, parse_workflow

CHUNK = 100


@dataclass(frozen=True)
class PlayRun:
    workflow: WorkflowConfig
    company_ids: tuple[UUID, ...]
    calls: int


def play_step_workflow(dbs: Databases, play_name: str, step_number: int) -> WorkflowConfig:
    with dbs.hq.connection() as conn:
        row = conn.execute(
            query("play_step_workflow"), {"play_name": play_name, "step_number": step_number}
        ).fetchone()
    if row is None:
        raise RegistryError(f"play {play_name!r} has no step {step_number}")
    workflow = parse_workflow(row)
    if workflow.entity_type != "company":
        raise RegistryError(
            f"step {step_number} of {play_name!r} ({workflow.workflow_slug}) works on"
            f" {workflow.entity_type}s; manual runs take companies"
        )
    if workflow.destination_table_name not in (None, "company_enrichment_results"):
        problems = destination_problems(dbs, workflow)
        if problems:
            raise RegistryError("; ".join(problems))
    return workflow


def _companies(dbs: Databases, company_ids: list[UUID] | None, batch_id: UUID | None) -> list[UUID]:
    if company_ids:
        return company_ids
    with dbs.hq.connection() as conn:
        row = conn.execute(query("batch_company_ids"), {"batch_id": batch_id}).fetchone()
    return list(row["ids"] or []) if row else []


def run_play_step(
    dbs: Databases,
    dispatcher: Dispatcher,
    play_name: str,
    step_number: int,
    *,
    company_ids: list[UUID] | None = None,
    batch_id: UUID | None = None,
    force: bool = False,
) -> PlayRun:
    if not company_ids and batch_id is None:
        raise ValueError("name the companies or a batch to run the step for")
    workflow = play_step_workflow(dbs, play_name, step_number)
    ids = _companies(dbs, company_ids, batch_id)
    if force:
        with dbs.hq.connection() as conn:
            conn.execute(
                query("reset_entities_for_rerun"),
                {"company_ids": ids, "workflow_slug": workflow.workflow_slug},
            )
    it = iter(ids)
    calls = [
        StepCall(None, workflow.workflow_slug, (), chunk, play_name, step_number)
        for chunk in iter(lambda: tuple(islice(it, CHUNK)), ())
    ]
    dispatcher.dispatch(calls)
    return PlayRun(workflow, tuple(ids), len(calls))


def step_states(dbs: Databases, run: PlayRun) -> list[dict[str, Any]]:
    with dbs.hq.connection() as conn:
        rows = conn.execute(
            query("company_step_states"),
            {"company_ids": list(run.company_ids), "workflow_slug": run.workflow.workflow_slug},
        )
        return [dict(r) for r in rows]
