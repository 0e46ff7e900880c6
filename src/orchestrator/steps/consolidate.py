"""Consolidation: project the immutable JSON results into `final_leads` and
`person_work_history`. Idempotent, so it runs as the last pipeline step and can be replayed
for a whole batch at any time (`enrich consolidate BATCH`)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from orchestrator.db.pool import Conn, Databases
from orchestrator.db.queries import query
from orchestrator.engine.calls import complete_items
from orchestrator.engine.context import StepContext
from orchestrator.engine.dispatch import StepCall
from orchestrator.state.registry import WorkflowConfig


@dataclass(frozen=True)
class Consolidated:
    leads: int
    jobs: int


def _project(conn: Conn, item_ids: list[UUID]) -> Consolidated:
    params = {"item_ids": item_ids}
    leads = conn.execute(query("consolidate_final_leads"), params).rowcount
    jobs = conn.execute(query("consolidate_work_history"), params).rowcount
    return Consolidated(leads, jobs)


def consolidate(ctx: StepContext, workflow: WorkflowConfig, call: StepCall) -> None:
    with ctx.dbs.hq.connection() as conn:
        _project(conn, list(call.item_ids))
    complete_items(ctx, call.step_name, list(call.item_ids))


def consolidate_batch(dbs: Databases, batch_id: UUID) -> Consolidated:
    """Replay consolidation for every item of a batch, in one transaction."""
    with dbs.hq.connection() as conn:
        row = conn.execute(query("batch_item_ids"), {"batch_id": batch_id}).fetchone()
        ids = list(row["ids"] or []) if row else []
        return _project(conn, ids)
