"""Lifetime submissions of Clay webhooks: which webhook each row goes to, and holds.

A Clay webhook source accepts a limited number of submissions in its life (50,000); the one
after is lost. Rows are counted against their webhook in the claim's transaction, before they
are sent, filling each webhook of the workflow's list before the next. When the list cannot
take a chunk, nothing of it is claimed: the workflow is put on hold with a message naming the
variable to extend, and passes leave its item-steps PENDING until a process configured with a
webhook that has room lifts the hold.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from uuid import UUID

from orchestrator.db.pool import Conn, Databases
from orchestrator.db.queries import query
from orchestrator.state.registry import WorkflowConfig
from orchestrator.steps.webhook_config import ClayEndpoint, token_variable

log = logging.getLogger(__name__)

# Warn once the workflow's webhooks have less than this share of one webhook's life left.
LOW_SHARE = 0.1


class WebhooksSpentError(Exception):
    """The workflow's webhooks cannot take the rows of a chunk."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def spent_reason(workflow: WorkflowConfig, endpoints: Sequence[ClayEndpoint], limit: int) -> str:
    """What the user reads wherever the hold shows (run, status, API): true for as long as
    the hold lasts, so it states the limit, not a count of the moment."""
    variable = workflow.webhook_url_secret_name or "the workflow's webhook URL variable"
    count = len(endpoints)
    hooks = f"{count} Clay webhooks" if count != 1 else "Clay webhook"
    return (
        f"the {hooks} of {workflow.workflow_slug} {'have' if count != 1 else 'has'} used"
        f" {'their' if count != 1 else 'its'} {limit:,} lifetime submissions"
        f"{' each' if count != 1 else ''}; its remaining rows wait, unsent: add a new webhook"
        f" source's URL to {variable} (after the others, comma separated) and its token to"
        f" {token_variable(variable)}, then `enrich resume <batch>` (or redeploy)"
    )


def lock_room(conn: Conn, endpoints: Sequence[ClayEndpoint], limit: int) -> dict[str, int]:
    """Submissions used per webhook, with their rows locked until the transaction ends: senders
    of one workflow take them one after another, so what one counts another cannot take."""
    keys = [e.key for e in endpoints]
    hosts = [e.host for e in endpoints]
    conn.execute(query("ensure_webhook_counts"), {"keys": keys, "hosts": hosts})
    rows = conn.execute(query("lock_webhook_counts"), {"keys": keys})
    return {r["webhook_key"]: int(r["submissions"]) for r in rows}


def room_left(used: Mapping[str, int], endpoints: Sequence[ClayEndpoint], limit: int) -> int:
    return sum(max(0, limit - used.get(e.key, 0)) for e in endpoints)


def assign_webhooks(
    conn: Conn,
    workflow: WorkflowConfig,
    endpoints: Sequence[ClayEndpoint],
    rows: int,
    limit: int,
    used: Mapping[str, int] | None = None,
) -> list[ClayEndpoint]:
    """The webhook of each of `rows` rows, filling each webhook before the next, counted as
    submitted (`used`: from `lock_room` in this transaction); raises WebhooksSpentError."""
    if rows == 0:
        return []
    if used is None:
        used = lock_room(conn, endpoints, limit)
    plan: list[ClayEndpoint] = []
    counts: dict[str, int] = {}
    for endpoint in endpoints:
        take = min(max(0, limit - used.get(endpoint.key, 0)), rows - len(plan))
        plan.extend([endpoint] * take)
        counts[endpoint.key] = take
    if len(plan) < rows:
        raise WebhooksSpentError(spent_reason(workflow, endpoints, limit))
    conn.execute(
        query("add_webhook_submissions"),
        {"keys": list(counts), "counts": list(counts.values())},
    )
    _warn_when_low(workflow, endpoints, used, counts, limit)
    return plan


def reserve(
    conn: Conn,
    workflow: WorkflowConfig,
    endpoints: Sequence[ClayEndpoint],
    rows: int,
    limit: int,
) -> list[ClayEndpoint] | None:
    """Count `rows` submissions (the most a chunk can send) against the webhooks in a short
    transaction of its own, so that senders of one workflow hold the counts' locks for that
    instant, not for a whole claim; the webhook of each reserved row, or None when the webhooks
    may not have room for them all (the sender then claims under the lock, as a chunk must
    when the room decides what it claims). What a chunk does not send is given back; a crash
    before then leaves it counted, which errs on Clay's side of its limit."""
    with conn.transaction():
        used = lock_room(conn, endpoints, limit)
        if room_left(used, endpoints, limit) < rows:
            return None
        return assign_webhooks(conn, workflow, endpoints, rows, limit, used)


def give_back(conn: Conn, endpoints: Sequence[ClayEndpoint]) -> None:
    """Submissions counted for rows that were not sent, in a transaction of its own."""
    counts = Counter(e.key for e in endpoints)
    if not counts:
        return
    with conn.transaction():
        conn.execute(
            query("return_webhook_submissions"),
            {"keys": list(counts), "counts": list(counts.values())},
        )


def _warn_when_low(
    workflow: WorkflowConfig,
    endpoints: Sequence[ClayEndpoint],
    used: Mapping[str, int],
    added: Mapping[str, int],
    limit: int,
) -> None:
    before = sum(max(0, limit - used.get(e.key, 0)) for e in endpoints)
    after = before - sum(added.values())
    threshold = int(limit * LOW_SHARE)
    if after < threshold <= before:
        log.warning(
            "the Clay webhooks of %s have %d submissions left: add a new webhook source's URL"
            " to %s before they run out",
            workflow.workflow_slug,
            after,
            workflow.webhook_url_secret_name,
        )


def free_submissions(dbs: Databases, endpoints: Sequence[ClayEndpoint], limit: int) -> int:
    """Submissions the webhooks can still take."""
    with dbs.hq.connection() as conn:
        rows = conn.execute(
            query("webhook_submissions"), {"keys": [e.key for e in endpoints]}
        ).fetchall()
    used = {r["webhook_key"]: int(r["submissions"]) for r in rows}
    return room_left(used, endpoints, limit)


def hold(conn: Conn, workflow: WorkflowConfig, reason: str) -> None:
    conn.execute(
        query("hold_workflow"), {"workflow_slug": workflow.workflow_slug, "reason": reason}
    )


def held_workflows(dbs: Databases) -> dict[str, str]:
    with dbs.hq.connection() as conn:
        return {
            str(r["workflow_slug"]): str(r["reason"]) for r in conn.execute(query("held_workflows"))
        }


def lift_hold(dbs: Databases, workflow_slug: str) -> list[UUID]:
    """Lift the hold; the running batches with item-steps it kept waiting."""
    with dbs.hq.connection() as conn:
        lifted = conn.execute(query("lift_hold"), {"workflow_slug": workflow_slug}).fetchone()
        if lifted is None:
            return []
        rows = conn.execute(query("batches_waiting_on"), {"workflow_slug": workflow_slug})
        return [UUID(str(r["batch_id"])) for r in rows]
