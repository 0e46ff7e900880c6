"""Which function runs a workflow, and running one call with its failure handling.

Internal steps are code; provider steps are generic over the registry row, so adding a Clay
(or Zenrows, n8n) workflow is adding a row, not code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from uuid import UUID

from orchestrator.db.queries import query
from orchestrator.engine.context import StepContext
from orchestrator.engine.dispatch import StepCall
from orchestrator.state.registry import RegistryError, WorkflowConfig, cached_workflow

log = logging.getLogger(__name__)

StepFunction = Callable[[StepContext, WorkflowConfig, StepCall], None]

INTERNAL_STEPS: dict[str, StepFunction] = {}
PROVIDER_STEPS: dict[str, StepFunction] = {}


def internal_step(slug: str) -> Callable[[StepFunction], StepFunction]:
    def register(fn: StepFunction) -> StepFunction:
        INTERNAL_STEPS[slug] = fn
        return fn

    return register


def provider_step(provider: str) -> Callable[[StepFunction], StepFunction]:
    def register(fn: StepFunction) -> StepFunction:
        PROVIDER_STEPS[provider] = fn
        return fn

    return register


def resolve_step(workflow: WorkflowConfig) -> StepFunction:
    _load_step_modules()
    table, key = (
        (INTERNAL_STEPS, workflow.workflow_slug)
        if workflow.provider == "internal"
        else (PROVIDER_STEPS, workflow.provider)
    )
    try:
        return table[key]
    except KeyError:
        raise RegistryError(
            f"workflow {workflow.workflow_slug!r}: no implementation for provider"
            f" {workflow.provider!r}"
            + (f" step {key!r}" if workflow.provider == "internal" else "")
        ) from None


def _load_step_modules() -> None:
    # Importing registers the step functions through the decorators above.
    import orchestrator.steps.consolidate
    import orchestrator.steps.entity_sender
    import orchestrator.steps.normalize
    import orchestrator.steps.split  # noqa: F401


def complete_items(ctx: StepContext, step: str, item_ids: list[UUID], meta: str = "{}") -> int:
    with ctx.dbs.hq.connection() as conn:
        cur = conn.execute(
            query("complete_item_steps"), {"item_ids": item_ids, "step": step, "meta": meta}
        )
        return cur.rowcount


def _release_failed(ctx: StepContext, workflow: WorkflowConfig, call: StepCall, error: str) -> None:
    with ctx.dbs.hq.connection() as conn:
        conn.execute(
            query("release_failed_item_steps"),
            {
                "item_ids": list(call.item_ids),
                "step": call.step_name,
                "max_attempts": workflow.max_attempts,
                "error": error[:1000],
            },
        )


def execute_call(ctx: StepContext, call: StepCall) -> None:
    """Run one chunk; if the step raises, its items are retried on a later pass or FAILED."""
    try:
        workflow = cached_workflow(ctx.dbs, call.step_name)
        step = resolve_step(workflow)
    except Exception as exc:
        log.exception("cannot start step %s", call.step_name)
        _release_failed_safely(ctx, None, call, f"{type(exc).__name__}: {exc}")
        raise
    try:
        step(ctx, workflow, call)
    except Exception as exc:
        log.exception("step %s failed for %d item(s)", call.step_name, len(call.item_ids))
        _release_failed_safely(ctx, workflow, call, f"{type(exc).__name__}: {exc}")
    finally:
        if call.batch_id is not None:
            ctx.trigger.request(call.batch_id)


def _release_failed_safely(
    ctx: StepContext, workflow: WorkflowConfig | None, call: StepCall, error: str
) -> None:
    try:
        if workflow is None:
            # Without configuration there is nothing to retry against: fail the items now.
            with ctx.dbs.hq.connection() as conn:
                conn.execute(
                    query("release_failed_item_steps"),
                    {
                        "item_ids": list(call.item_ids),
                        "step": call.step_name,
                        "max_attempts": 0,
                        "error": error[:1000],
                    },
                )
            return
        _release_failed(ctx, workflow, call, error)
    except Exception:
        # The database itself is failing; the lease expires and the sweeper takes over.
        log.exception("could not record the failure of step %s", call.step_name)
