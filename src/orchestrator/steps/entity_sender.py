"""Senders: items (or, for manual runs, entities) in; one provider call per entity out,
whatever the concurrency.

For a chunk the sender claims its entities atomically and marks every item (completed at once,
sending, waiting, or failed with its entity) in one transaction. Then the claimed entities'
normalized data goes to the provider: to a webhook whose answer comes back through a receiver
(Clay, n8n), or to a synchronous API whose answer is stored at once (Zenrows).
"""

from __future__ import annotations

import logging
import time
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from psycopg.types.json import Jsonb

from orchestrator.callbacks.answers import Answer, accept_answer
from orchestrator.callbacks.tokens import sign
from orchestrator.db.pool import Conn
from orchestrator.db.queries import query
from orchestrator.engine.calls import release_unstarted
from orchestrator.engine.context import StepContext
from orchestrator.engine.dispatch import StepCall
from orchestrator.state.enrichment_log import PlayPosition
from orchestrator.state.entity_kinds import EntityKind, kind_of
from orchestrator.state.entity_store import entity_ids_for_items, entity_query
from orchestrator.state.registry import WorkflowConfig
from orchestrator.steps.clay_gateway import ClayGateway, SendOutcome
from orchestrator.steps.submissions import WebhooksSpentError, assign_webhooks, hold
from orchestrator.steps.webhook_config import ClayEndpoint

log = logging.getLogger(__name__)


class Fetcher(Protocol):
    """A synchronous provider: entity payload and workflow parameters in, result data out."""

    def fetch(self, workflow: WorkflowConfig, payload: dict[str, Any]) -> dict[str, Any]: ...


def _entity_ids(conn: Conn, kind: EntityKind, call: StepCall) -> list[UUID]:
    if call.entity_ids:
        return list(call.entity_ids)
    return list(set(entity_ids_for_items(conn, kind, list(call.item_ids)).values()))


class Origin(NamedTuple):
    """Where a dispatch goes and who makes it: recovery tells answerable calls apart by it."""

    webhook_key: str | None
    runner_id: UUID | None
    # The provider is this runner's own built-in simulator, which dies with it.
    simulated: bool


def _claim(
    conn: Conn, kind: EntityKind, workflow: WorkflowConfig, call: StepCall, origin: Origin
) -> list[dict[str, Any]]:
    """Claim the chunk's unclaimed entities and mark every item; one transaction."""
    item_ids = list(call.item_ids)
    slug = workflow.workflow_slug
    with conn.transaction():
        claims = conn.execute(
            entity_query("claim_entities", kind),
            {
                "entity_ids": _entity_ids(conn, kind, call),
                "workflow_slug": slug,
                "timeout": workflow.timeout_seconds,
            },
        ).fetchall()
        dispatches = [
            {
                "id": str(c["dispatch_id"]),
                "entity_id": str(c["entity_id"]),
                "attempt": c["attempts"],
            }
            for c in claims
        ]
        conn.execute(
            entity_query("insert_dispatches", kind),
            {
                "dispatches": Jsonb(dispatches),
                "entity_ids": [c["entity_id"] for c in claims],
                "entity_type": kind.name,
                "workflow_slug": slug,
                "provider": workflow.provider,
                "webhook_key": origin.webhook_key,
                "runner_id": origin.runner_id,
                "simulated": origin.simulated,
                "item_ids": item_ids,
                "play_name": call.play_name,
                "step_number": call.step_number,
            },
        )
        conn.execute(
            entity_query("mark_items_after_claim", kind),
            {
                "item_ids": item_ids,
                "claimed": [c["entity_id"] for c in claims],
                "workflow_slug": slug,
                "id_key": kind.id_column,
                "already": kind.already_enriched,
                "in_progress": kind.in_progress,
                "entity_type": kind.name,
            },
        )
    return [dict(c) for c in claims]


def _payloads(
    conn: Conn, kind: EntityKind, claims: list[dict[str, Any]]
) -> dict[UUID, dict[str, Any]]:
    ids = [c["entity_id"] for c in claims]
    rows = conn.execute(query(f"{kind.name}_payloads"), {"entity_ids": ids})
    return {r["id"]: {k: v for k, v in r.items() if k != "id"} for r in rows}


def _record(
    conn: Conn,
    kind: EntityKind,
    workflow: WorkflowConfig,
    claims: list[dict[str, Any]],
    outcomes: list[SendOutcome],
    targets: list[ClayEndpoint | None] | None = None,
) -> None:
    """Write the chunk's call outcomes at once: dispatch status, cost, lease, failures."""
    # A row not sent (the runner was stopping) keeps its dispatch SENDING for recovery.
    keys = [t.key if t else None for t in targets] if targets else [None] * len(claims)
    sent = [(c, o, k) for c, o, k in zip(claims, outcomes, keys, strict=True) if not o.skipped]
    sends = [
        {
            "id": str(c["dispatch_id"]),
            "entity_id": str(c["entity_id"]),
            "ok": o.ok,
            "http_status": o.http_status,
            "error": o.error,
            "webhook_key": k,
        }
        for c, o, k in sent
    ]
    failures = [s | {"dispatch_id": s["id"]} for s in sends if not s["ok"]]
    with conn.transaction():
        # Dispatch rows before entity rows, as the passes that complete stored results lock
        # them: a fast provider's callback may be completing while the send is recorded.
        conn.execute(
            query("record_sends"),
            {
                "sends": Jsonb(sends),
                "credits": workflow.credits_per_call,
                "timeout": workflow.timeout_seconds,
                "workflow_slug": workflow.workflow_slug,
            },
        )
        accepted_sends = [s for s in sends if s["ok"]]
        conn.execute(
            entity_query("lease_sent_entities", kind),
            {
                "entity_ids": [s["entity_id"] for s in accepted_sends],
                "dispatch_ids": [s["id"] for s in accepted_sends],
                "timeout": workflow.timeout_seconds,
                "workflow_slug": workflow.workflow_slug,
            },
        )
        if failures:
            conn.execute(
                entity_query("fail_entities", kind),
                {
                    "failures": Jsonb(failures),
                    "workflow_slug": workflow.workflow_slug,
                    "entity_type": kind.name,
                },
            )


def _webhook_rows(
    ctx: StepContext,
    kind: EntityKind,
    workflow: WorkflowConfig,
    gateway: ClayGateway,
    claims: list[dict[str, Any]],
    payloads: dict[UUID, dict[str, Any]],
) -> list[dict[str, Any]]:
    slug = workflow.workflow_slug
    return [
        payloads[c["entity_id"]]
        | {
            "entity_type": kind.name,
            "entity_id": str(c["entity_id"]),
            "workflow_slug": slug,
            "callback_url": gateway.callback_url(workflow),
            "callback_token": sign(
                ctx.signing_key, c["dispatch_id"], c["entity_id"], slug, c["attempts"]
            ),
        }
        for c in claims
    ]


class _Chunk(NamedTuple):
    """A chunk's claimed entities, and for each its body and webhook, or why it is not sent."""

    claims: list[dict[str, Any]]
    bodies: list[bytes | str]
    targets: list[ClayEndpoint | None]


def _prepare(
    ctx: StepContext,
    conn: Conn,
    kind: EntityKind,
    workflow: WorkflowConfig,
    gateway: ClayGateway,
    call: StepCall,
) -> _Chunk:
    """Claim, build the rows, and count them against their webhooks, in one transaction:
    when the webhooks cannot take them, nothing is claimed (WebhooksSpentError)."""
    endpoints = gateway.endpoints(workflow)
    with conn.transaction():
        origin = Origin(endpoints[0].key, ctx.runner_id, gateway.simulated)
        claims = _claim(conn, kind, workflow, call, origin)
        payloads = _payloads(conn, kind, claims)
        rows = _webhook_rows(ctx, kind, workflow, gateway, claims, payloads)
        bodies = [gateway.encode(row) for row in rows]
        sendable = sum(isinstance(b, bytes) for b in bodies)
        limit = gateway.submission_limit
        if limit is None:
            webhooks = iter([endpoints[0]] * sendable)
        else:
            webhooks = iter(assign_webhooks(conn, workflow, endpoints, sendable, limit))
    targets = [next(webhooks) if isinstance(b, bytes) else None for b in bodies]
    return _Chunk(claims, bodies, targets)


def send_to_webhook(ctx: StepContext, workflow: WorkflowConfig, call: StepCall) -> None:
    kind = kind_of(workflow.entity_type)
    gateway: ClayGateway = ctx.providers[workflow.provider]
    started = time.perf_counter()
    with ctx.dbs.hq.connection() as conn:
        try:
            chunk = _prepare(ctx, conn, kind, workflow, gateway, call)
        except WebhooksSpentError as spent:
            _hold(ctx, conn, workflow, call, spent.reason)
            return
    # Claims are committed before any call: a crash from here on leaves a lease that the
    # sweeper expires, never an entity sent twice by two live senders.
    sends = [
        (t, b)
        for t, b in zip(chunk.targets, chunk.bodies, strict=True)
        if t and isinstance(b, bytes)
    ]
    sent = iter(gateway.send_all(sends))
    outcomes = [
        next(sent) if isinstance(body, bytes) else SendOutcome(False, None, body)
        for body in chunk.bodies
    ]
    with ctx.dbs.hq.connection() as conn:
        _record(conn, kind, workflow, chunk.claims, outcomes, chunk.targets)
    log.debug(
        "%s: %d items, %d entities sent in %.3fs",
        workflow.workflow_slug,
        len(call.item_ids),
        len(chunk.claims),
        time.perf_counter() - started,
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


def fetch_and_store(ctx: StepContext, workflow: WorkflowConfig, call: StepCall) -> None:
    kind = kind_of(workflow.entity_type)
    fetcher: Fetcher = ctx.providers[workflow.provider]
    with ctx.dbs.hq.connection() as conn:
        claims = _claim(conn, kind, workflow, call, Origin(None, ctx.runner_id, False))
        payloads = _payloads(conn, kind, claims)
    outcomes = []
    for claim in claims:
        outcomes.append(
            _fetch_one(ctx, call, kind, workflow, fetcher, claim, payloads[claim["entity_id"]])
        )
    with ctx.dbs.hq.connection() as conn:
        _record(conn, kind, workflow, claims, outcomes)


def _fetch_one(
    ctx: StepContext,
    call: StepCall,
    kind: EntityKind,
    workflow: WorkflowConfig,
    fetcher: Fetcher,
    claim: dict[str, Any],
    payload: dict[str, Any],
) -> SendOutcome:
    try:
        data, error = fetcher.fetch(workflow, payload), None
    except Exception as exc:  # a provider failure is this entity's failure, not the chunk's
        data, error = None, f"{type(exc).__name__}: {exc}"
    position = PlayPosition(call.play_name, call.step_number, call.batch_id)
    answer = Answer(
        kind,
        workflow,
        claim["entity_id"],
        claim["dispatch_id"],
        claim["attempts"],
        data,
        error,
        position,
    )
    accept_answer(ctx.dbs, answer)
    return SendOutcome(error is None, None, error)
