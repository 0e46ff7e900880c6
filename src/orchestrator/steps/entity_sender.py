"""Senders: items (or, for manual runs, entities) in; one provider call per entity out,
whatever the concurrency. The parts every provider shares, and synchronous providers
(Zenrows); webhook providers are sent to by `webhook_sender`.

For a chunk the sender claims its entities atomically and marks every item (completed at once,
sending, waiting, or failed with its entity) in one transaction. Then the claimed entities'
normalized data goes to the provider: to a webhook whose answer comes back through a receiver
(Clay, n8n), or to a synchronous API whose answer is stored at once (Zenrows).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from psycopg.types.json import Jsonb

from orchestrator.callbacks.answers import Answer, accept_answer
from orchestrator.callbacks.tokens import sign
from orchestrator.db.pool import Conn
from orchestrator.db.queries import query
from orchestrator.engine.context import StepContext
from orchestrator.engine.dispatch import StepCall
from orchestrator.state.credit_caps import credit_room, hold_for_budget
from orchestrator.state.enrichment_log import PlayPosition
from orchestrator.state.entity_kinds import EntityKind, kind_of
from orchestrator.state.entity_store import entity_ids_for_items, entity_query
from orchestrator.state.registry import WorkflowConfig
from orchestrator.steps.clay_gateway import ClayGateway, SendOutcome
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


def reuse_fresh_results(
    conn: Conn, kind: EntityKind, workflow: WorkflowConfig, call: StepCall
) -> int:
    """Complete the chunk's entities that a fresh result of the same client covers, before any
    is claimed for a call; how many. Only a batch's items: a manual run asks for fresh calls.

    Its own transaction, committed before the claim's: the claim locks the webhooks' counts
    before entity rows, and this, locking entity rows, must not hold them meanwhile. What it
    completes stays complete; the chunk's items follow at the claim (or, after a crash, at the
    sweeper), saying where the result came from."""
    if workflow.reuse_days is None or call.batch_id is None or call.entity_ids:
        return 0
    with conn.transaction():
        row = conn.execute(
            entity_query("reuse_fresh_results", kind, "fresh_result"),
            {
                "batch_id": call.batch_id,
                "item_ids": list(call.item_ids),
                "workflow_slug": workflow.workflow_slug,
                "window_days": workflow.reuse_days,
                "id_key": kind.id_column,
                "entity_type": kind.name,
                "result_table": workflow.destination_table_name or kind.result_table,
            },
        ).fetchone()
    return int(row["entities"]) if row else 0


def claimable_entities(
    conn: Conn, kind: EntityKind, workflow: WorkflowConfig, call: StepCall
) -> tuple[dict[UUID, UUID], list[UUID]]:
    """The call's items with their entities, and the entities a claim would take now (no
    other sender has them, none is done), in the order it would claim them."""
    items = entity_ids_for_items(conn, kind, list(call.item_ids)) if call.item_ids else {}
    entity_ids = list(call.entity_ids) or list(set(items.values()))
    rows = conn.execute(
        entity_query("claimable_entities", kind),
        {"entity_ids": entity_ids, "workflow_slug": workflow.workflow_slug},
    ).fetchall()
    return items, [r["entity_id"] for r in rows]


def fit_to_room(
    conn: Conn, kind: EntityKind, workflow: WorkflowConfig, call: StepCall, room: int
) -> tuple[StepCall, list[UUID]] | None:
    """The part of the call whose entities fit in `room` calls (the first `room` of those it
    would claim, with every item waiting on another sender's claim), and the items left out,
    which go back to PENDING with a hold. A manual run over entities is all or nothing: None
    when it does not fit."""
    items, claimable = claimable_entities(conn, kind, workflow, call)
    if len(claimable) <= room:
        return call, []
    if call.entity_ids:
        return None
    left_out = set(claimable[room:])
    left = {item for item, entity in items.items() if entity in left_out}
    kept = tuple(i for i in call.item_ids if i not in left)
    return dataclasses.replace(call, item_ids=kept), sorted(left)


def within_budget(
    conn: Conn, kind: EntityKind, workflow: WorkflowConfig, call: StepCall
) -> tuple[StepCall, str | None]:
    """The call cut to what the batch's credit caps still allow, at the most a call can cost;
    the items left out wait behind a hold on the batch, whose reason is returned. Manual runs
    of a step are confirmed with their cost and not capped."""
    if call.batch_id is None or call.entity_ids or not workflow.priced:
        return call, None
    room = credit_room(conn, call.batch_id, workflow.call_ceiling)
    if room.calls is None or room.calls >= len(call.item_ids):
        return call, None
    fit = fit_to_room(conn, kind, workflow, call, room.calls)
    assert fit is not None, "only manual runs are all or nothing"
    fitted, left = fit
    if not left:
        return fitted, None
    reason = room.reason or "the batch reached its credit cap"
    hold_for_budget(conn, call.batch_id, reason)
    put_back(conn, workflow, left)
    return fitted, reason


def put_back(conn: Conn, workflow: WorkflowConfig, item_ids: list[UUID]) -> None:
    """Item-steps of the workflow claimed but not sent go back to PENDING, the claim not
    counted as an attempt."""
    conn.execute(
        query("release_unstarted_item_steps"),
        {"item_ids": item_ids, "steps": [workflow.workflow_slug] * len(item_ids)},
    )


def claim_chunk(
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
                "reused": kind.reused,
                "in_progress": kind.in_progress,
                "entity_type": kind.name,
            },
        )
    return [dict(c) for c in claims]


def payloads_of(
    conn: Conn, kind: EntityKind, claims: list[dict[str, Any]]
) -> dict[UUID, dict[str, Any]]:
    ids = [c["entity_id"] for c in claims]
    rows = conn.execute(query(f"{kind.name}_payloads"), {"entity_ids": ids})
    return {r["id"]: {k: v for k, v in r.items() if k != "id"} for r in rows}


def record_outcomes(
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


def webhook_rows(
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


def fetch_and_store(ctx: StepContext, workflow: WorkflowConfig, call: StepCall) -> None:
    kind = kind_of(workflow.entity_type)
    fetcher: Fetcher = ctx.providers[workflow.provider]
    with ctx.dbs.hq.connection() as conn:
        reuse_fresh_results(conn, kind, workflow, call)
        with conn.transaction():
            call, held = within_budget(conn, kind, workflow, call)
            claims = claim_chunk(conn, kind, workflow, call, Origin(None, ctx.runner_id, False))
        payloads = payloads_of(conn, kind, claims)
    if held is not None:
        # Expected, and said where the batch shows (run, status, dashboard, API).
        log.info("%s: sending stopped: %s", workflow.workflow_slug, held)
    outcomes = []
    for claim in claims:
        outcomes.append(
            _fetch_one(ctx, call, kind, workflow, fetcher, claim, payloads[claim["entity_id"]])
        )
    with ctx.dbs.hq.connection() as conn:
        record_outcomes(conn, kind, workflow, claims, outcomes)


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
