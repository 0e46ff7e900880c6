"""Sending a chunk's entities to a webhook provider (Clay, n8n): claim what the webhooks can
take, count each row against its webhook, reserve its send slot, then send at the slots.

Clay's limits shape it: a webhook accepts 50,000 submissions in its life (rows fill each of a
workflow's webhooks before the next, and what finds no room waits, PENDING, behind a hold that
names what to configure) and a workspace accepts about 10 rows a second (slots are reserved for
the whole chunk in one statement, and the rows' leases last until their slots have come).
"""

from __future__ import annotations

import logging
import time
from typing import Any, NamedTuple
from uuid import UUID

import psycopg
from psycopg_pool import PoolTimeout

from orchestrator.db.pool import Conn
from orchestrator.db.queries import query
from orchestrator.engine.calls import release_unstarted
from orchestrator.engine.context import StepContext
from orchestrator.engine.dispatch import StepCall
from orchestrator.state.entity_kinds import EntityKind, kind_of
from orchestrator.state.entity_store import entity_ids_for_items, entity_query
from orchestrator.state.registry import WorkflowConfig
from orchestrator.steps.clay_gateway import NOT_SENT, SPENT_STATUS, ClayGateway, Send, SendOutcome
from orchestrator.steps.entity_sender import (
    Origin,
    claim_chunk,
    claimable_entities,
    fit_to_room,
    payloads_of,
    put_back,
    record_outcomes,
    reuse_fresh_results,
    webhook_rows,
    within_budget,
)
from orchestrator.steps.submissions import (
    WebhooksSpentError,
    assign_webhooks,
    give_back,
    hold,
    lock_room,
    reserve,
    room_left,
    spent_reason,
)
from orchestrator.steps.webhook_config import ClayEndpoint

log = logging.getLogger(__name__)

# A sender never waits long for a connection to mark its row SENT: the chunk's record does too.
MARK_TIMEOUT_SECONDS = 5.0


class _Chunk(NamedTuple):
    """A chunk's claimed entities; for each its body (or why it is not sent), its webhook,
    and when it may go (seconds from now)."""

    claims: list[dict[str, Any]]
    bodies: list[bytes | str]
    targets: list[ClayEndpoint | None]
    waits: list[float]


def _within_room(
    conn: Conn,
    kind: EntityKind,
    workflow: WorkflowConfig,
    call: StepCall,
    endpoints: list[ClayEndpoint],
    used: dict[str, int],
    limit: int,
) -> tuple[StepCall, str | None]:
    """The call cut to what the webhooks can still take; the hold's reason if it was cut."""
    room = room_left(used, endpoints, limit)
    if room >= len(call.item_ids) + len(call.entity_ids):
        return call, None  # one entity per item at most: it fits, no need to look

    reason = spent_reason(workflow, endpoints, limit)
    fit = fit_to_room(conn, kind, workflow, call, room)
    if fit is None:
        raise WebhooksSpentError(reason)
    fitted, left = fit
    if not left:
        return fitted, None
    _put_back(conn, workflow, left, reason)
    return fitted, reason


def _prepare(
    ctx: StepContext,
    conn: Conn,
    kind: EntityKind,
    workflow: WorkflowConfig,
    gateway: ClayGateway,
    call: StepCall,
) -> _Chunk:
    """Claim what the webhooks can take, build the rows, count them against their webhooks and
    reserve their send slots. Items whose entities find no room go back to PENDING and the
    workflow is put on hold, which is logged after the commit."""
    endpoints = gateway.endpoints(workflow)
    limit = gateway.submission_limit
    reserved = None
    if limit is not None:
        # As many as the chunk's claimable entities, not its items: rows counted for
        # nothing, though given back soon, would make a concurrent chunk find no room.
        with conn.transaction():
            _, entities = claimable_entities(conn, kind, workflow, call)
            reserved = reserve(conn, workflow, endpoints, len(entities), limit)
    try:
        chunk, held, over_budget = _claim_and_build(
            ctx, conn, kind, workflow, gateway, call, endpoints, reserved
        )
    except BaseException:
        if reserved:
            _give_back_after_failure(conn, workflow, reserved)
        raise
    if reserved:
        give_back(conn, reserved[sum(t is not None for t in chunk.targets) :])
    if held is not None:
        log.error("%s: sending stopped: %s", workflow.workflow_slug, held)
    if over_budget is not None:
        # Expected, and said where the batch shows (run, status, dashboard, API).
        log.info("%s: sending stopped: %s", workflow.workflow_slug, over_budget)
    return chunk


def _give_back_after_failure(
    conn: Conn, workflow: WorkflowConfig, reserved: list[ClayEndpoint]
) -> None:
    """The chunk failed: none of its counted rows went. If the database failed too, they stay
    counted (on Clay's side of its limit) and the original error is the one raised."""
    try:
        give_back(conn, reserved)
    except psycopg.Error:
        log.warning(
            "%s: could not give back %d counted submissions of a failed chunk",
            workflow.workflow_slug,
            len(reserved),
        )


def _claim_and_build(
    ctx: StepContext,
    conn: Conn,
    kind: EntityKind,
    workflow: WorkflowConfig,
    gateway: ClayGateway,
    call: StepCall,
    endpoints: list[ClayEndpoint],
    reserved: list[ClayEndpoint] | None,
) -> tuple[_Chunk, str | None, str | None]:
    """The chunk, in one transaction: its rows take the `reserved` webhooks, or, without a
    reservation, are counted under the webhooks' lock held from the start, which decides what
    fits; the hold's reason if the webhooks cut the chunk; the credit cap's if it did."""
    limit = gateway.submission_limit
    held: str | None = None
    with conn.transaction():
        used: dict[str, int] | None = None
        if limit is not None and reserved is None:
            used = lock_room(conn, endpoints, limit)
            call, held = _within_room(conn, kind, workflow, call, endpoints, used, limit)
        call, over_budget = within_budget(conn, kind, workflow, call)
        origin = Origin(endpoints[0].key, ctx.runner_id, gateway.simulated)
        claims = (
            claim_chunk(conn, kind, workflow, call, origin)
            if call.item_ids or call.entity_ids
            else []
        )
        payloads = payloads_of(conn, kind, claims)
        rows = webhook_rows(ctx, kind, workflow, gateway, claims, payloads)
        bodies = [gateway.encode(row) for row in rows]
        sendable = sum(isinstance(b, bytes) for b in bodies)
        if limit is None:
            webhooks = iter([endpoints[0]] * sendable)
        elif reserved is not None:
            # An entity whose lease expired since may have joined the chunk: counted now.
            more = sendable - len(reserved)
            extra = assign_webhooks(conn, workflow, endpoints, more, limit) if more > 0 else []
            webhooks = iter(reserved[:sendable] + extra)
        else:
            webhooks = iter(assign_webhooks(conn, workflow, endpoints, sendable, limit, used))
        slots = iter(gateway.schedule(conn, sendable))
        targets = [next(webhooks) if isinstance(b, bytes) else None for b in bodies]
        waits = [next(slots) if isinstance(b, bytes) else 0.0 for b in bodies]
        _extend_leases(conn, kind, workflow, call, claims, max(waits, default=0.0))
    return _Chunk(claims, bodies, targets, waits), held, over_budget


def _put_back(conn: Conn, workflow: WorkflowConfig, item_ids: list[UUID], reason: str) -> None:
    hold(conn, workflow, reason)
    put_back(conn, workflow, item_ids)


def _extend_leases(
    conn: Conn,
    kind: EntityKind,
    workflow: WorkflowConfig,
    call: StepCall,
    claims: list[dict[str, Any]],
    seconds: float,
) -> None:
    if seconds <= 0 or not claims:
        return
    conn.execute(
        entity_query("extend_claim_leases", kind),
        {
            "seconds": seconds,
            "entity_ids": [c["entity_id"] for c in claims],
            "item_ids": list(call.item_ids),
            "workflow_slug": workflow.workflow_slug,
        },
    )


def send_to_webhook(ctx: StepContext, workflow: WorkflowConfig, call: StepCall) -> None:
    kind = kind_of(workflow.entity_type)
    gateway: ClayGateway = ctx.providers[workflow.provider]
    started = time.perf_counter()
    with ctx.dbs.hq.connection() as conn:
        reuse_fresh_results(conn, kind, workflow, call)
        try:
            chunk = _prepare(ctx, conn, kind, workflow, gateway, call)
        except WebhooksSpentError as spent:
            _hold(ctx, conn, workflow, call, spent.reason)
            return
    # Claims are committed before any call: a crash from here on leaves a lease that the
    # sweeper expires, never an entity sent twice by two live senders.
    outcomes = _send(ctx, gateway, chunk)
    if chunk.claims:
        with ctx.dbs.hq.connection() as conn:
            _settle_refused(conn, kind, workflow, gateway, call, chunk, outcomes)
            record_outcomes(conn, kind, workflow, chunk.claims, outcomes, chunk.targets)
    log.debug(
        "%s: %d items, %d entities sent in %.3fs",
        workflow.workflow_slug,
        len(call.item_ids),
        len(chunk.claims),
        time.perf_counter() - started,
    )


def _send(ctx: StepContext, gateway: ClayGateway, chunk: _Chunk) -> list[SendOutcome]:
    """Every row of the chunk sent (or refused before sending), outcomes in claim order. A
    paced row is marked SENT as it is accepted: a crash meanwhile leaves SENDING only what the
    provider never took, which recovery may send again at once."""
    rows: list[int] = []
    sends: list[Send] = []
    for index, (target, body, wait) in enumerate(
        zip(chunk.targets, chunk.bodies, chunk.waits, strict=True)
    ):
        if target is not None and isinstance(body, bytes):
            rows.append(index)
            sends.append(Send(target, body, wait))

    def accepted(index: int) -> None:
        dispatch_id = chunk.claims[rows[index]]["dispatch_id"]
        try:
            with ctx.dbs.hq.connection(timeout=MARK_TIMEOUT_SECONDS) as conn:
                conn.execute(query("mark_dispatch_sent"), {"id": dispatch_id})
        except (PoolTimeout, psycopg.Error):
            # The chunk's record marks it anyway; only a crash before then would send it again.
            log.warning("could not mark dispatch %s SENT as it was accepted", dispatch_id)

    on_accepted = accepted if gateway.shared_rate is not None else None
    sent = iter(gateway.send_all(sends, on_accepted))
    return [
        next(sent) if isinstance(body, bytes) else SendOutcome(False, None, body)
        for body in chunk.bodies
    ]


def _settle_refused(
    conn: Conn,
    kind: EntityKind,
    workflow: WorkflowConfig,
    gateway: ClayGateway,
    call: StepCall,
    chunk: _Chunk,
    outcomes: list[SendOutcome],
) -> None:
    """Rows not sent give their counted submissions back; rows a spent webhook refused (410)
    count it as used up and go back to PENDING for the next webhook. Their outcomes become
    `NOT_SENT`, which the record leaves alone."""
    limit = gateway.submission_limit
    if limit is None:
        return
    unsent: list[ClayEndpoint] = []
    refused: list[int] = []
    for index, (target, outcome) in enumerate(zip(chunk.targets, outcomes, strict=True)):
        if target is not None and outcome.skipped:
            unsent.append(target)
        elif target is not None and outcome.http_status == SPENT_STATUS:
            refused.append(index)
    if not unsent and not refused:
        return  # the usual chunk: no transaction of its own for nothing
    with conn.transaction():
        give_back(conn, unsent)
        if refused:
            _requeue_refused(conn, kind, workflow, call, chunk, outcomes, refused, limit)


def _requeue_refused(
    conn: Conn,
    kind: EntityKind,
    workflow: WorkflowConfig,
    call: StepCall,
    chunk: _Chunk,
    outcomes: list[SendOutcome],
    refused: list[int],
    limit: int,
) -> None:
    spent = sorted({t.key for i in refused if (t := chunk.targets[i]) is not None})
    conn.execute(query("webhooks_spent"), {"keys": spent, "limit": limit})
    rows = conn.execute(
        entity_query("give_back_refused", kind),
        {
            "dispatch_ids": [chunk.claims[i]["dispatch_id"] for i in refused],
            "error": outcomes[refused[0]].error,
        },
    ).fetchall()
    back = {r["entity_id"] for r in rows}
    items = entity_ids_for_items(conn, kind, list(call.item_ids))
    waiting = [item for item, entity in items.items() if entity in back]
    if waiting:
        put_back(conn, workflow, waiting)
    for i in refused:
        outcomes[i] = NOT_SENT
    log.warning(
        "%s: %d webhook(s) refused rows as spent (HTTP 410); %d entities go out again through"
        " the next webhook of %s",
        workflow.workflow_slug,
        len(spent),
        len(back),
        workflow.webhook_url_secret_name,
    )


def _hold(
    ctx: StepContext, conn: Conn, workflow: WorkflowConfig, call: StepCall, reason: str
) -> None:
    """Stop sending the workflow: the hold first, so the pass the released items ask for
    leaves them PENDING."""
    hold(conn, workflow, reason)
    conn.commit()
    release_unstarted(ctx, [call])
    log.error("%s: sending stopped: %s", workflow.workflow_slug, reason)
