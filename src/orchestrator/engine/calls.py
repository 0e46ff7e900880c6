"""Running one step call: the function its workflow names, with its failure handling.

The engine does not know the step functions: a runtime hands it a `StepTable` (built in
`orchestrator.steps.table`), so nothing registers itself at import time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from orchestrator.db.queries import query
from orchestrator.engine.context import StepContext
from orchestrator.engine.dispatch import StepCall
from orchestrator.state.registry import RegistryError, WorkflowConfig, cached_workflow

log = logging.getLogger(__name__)

StepFunction = Callable[[StepContext, WorkflowConfig, StepCall], None]


@dataclass(frozen=True)
class StepTable:
    """Internal steps by workflow slug; provider steps by provider name, generic over the
    registry row, so a new Clay (n8n, Zenrows) workflow is a row, not code."""

    internal: Mapping[str, StepFunction] = field(default_factory=dict)
    providers: Mapping[str, StepFunction] = field(default_factory=dict)

    def with_internal(self, steps: Mapping[str, StepFunction]) -> StepTable:
        """This table plus more internal steps (a benchmark's no-op steps, say)."""
        return StepTable({**self.internal, **steps}, self.providers)

    def resolve(self, workflow: WorkflowConfig) -> StepFunction:
        internal = workflow.provider == "internal"
        table = self.internal if internal else self.providers
        key = workflow.workflow_slug if internal else workflow.provider
        try:
            return table[key]
        except KeyError:
            raise RegistryError(
                f"workflow {workflow.workflow_slug!r}: no implementation for provider"
                f" {workflow.provider!r}" + (f" step {key!r}" if internal else "")
            ) from None


def complete_items(ctx: StepContext, step: str, item_ids: list[UUID], meta: str = "{}") -> int:
    with ctx.dbs.hq.connection() as conn:
        cur = conn.execute(
            query("complete_item_steps"), {"item_ids": item_ids, "step": step, "meta": meta}
        )
        return cur.rowcount


def release_unstarted(ctx: StepContext, calls: Sequence[StepCall]) -> int:
    """Item-steps of calls that never ran go back to PENDING, their claim not counted as an
    attempt."""
    pairs = [(item_id, call.step_name) for call in calls for item_id in call.item_ids]
    if not pairs:
        return 0
    params = {"item_ids": [p[0] for p in pairs], "steps": [p[1] for p in pairs]}
    with ctx.dbs.hq.connection() as conn:
        return conn.execute(query("release_unstarted_item_steps"), params).rowcount


def execute_call(ctx: StepContext, steps: StepTable, call: StepCall) -> None:
    """Run one chunk; if the step raises, its items are retried on a later pass or FAILED."""
    try:
        workflow = cached_workflow(ctx.dbs, call.step_name)
        step = steps.resolve(workflow)
    except Exception as exc:
        log.exception("cannot start step %s", call.step_name)
        # Without a runnable configuration there is nothing to retry against: fail them now.
        _release_failed(ctx, call, f"{type(exc).__name__}: {exc}", max_attempts=0)
        raise
    try:
        step(ctx, workflow, call)
    except Exception as exc:
        log.exception("step %s failed for %d item(s)", call.step_name, len(call.item_ids))
        _release_failed(ctx, call, f"{type(exc).__name__}: {exc}", workflow.max_attempts)
    finally:
        if call.batch_id is not None:
            ctx.trigger.request(call.batch_id)


def _release_failed(ctx: StepContext, call: StepCall, error: str, max_attempts: int) -> None:
    try:
        with ctx.dbs.hq.connection() as conn:
            conn.execute(
                query("release_failed_item_steps"),
                {
                    "item_ids": list(call.item_ids),
                    "step": call.step_name,
                    "max_attempts": max_attempts,
                    "error": error[:1000],
                },
            )
    except Exception:
        # The database itself is failing; the lease expires and the sweeper takes over.
        log.exception("could not record the failure of step %s", call.step_name)
