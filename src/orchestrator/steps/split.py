"""split: deduplicate companies by domain and people by email/LinkedIn, within the batch."""

from __future__ import annotations

from orchestrator.db.queries import query
from orchestrator.engine.context import StepContext
from orchestrator.engine.dispatch import StepCall
from orchestrator.state.registry import WorkflowConfig


def split(ctx: StepContext, workflow: WorkflowConfig, call: StepCall) -> None:
    params = {"item_ids": list(call.item_ids), "step": call.step_name}
    with ctx.dbs.hq.connection() as conn:
        conn.execute(query("split_insert_companies"), params)
        # Companies commit on their own: a concurrent chunk inserting the same domain then waits
        # for this statement, not for this whole chunk. A company whose items are not linked
        # yet is inert (steps reach companies through their items), and a retry links them.
        conn.commit()
        conn.execute(query("split_insert_people"), params)
        conn.execute(query("split_link_and_complete"), params)
