"""Senders: items in, one Clay call per entity out, whatever the concurrency.

For a chunk of items the sender claims their entities atomically, marks every item (completed
at once, sending, waiting, or failed with its entity) in the same transaction, then sends the
claimed entities' normalized data to Clay and records the outcomes for the chunk at once.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from database.pool import Conn
from database.queries import query
from orchestrator.clay_gateway import (
    ClayEndpoint,
    ClayGateway,
    SendOutcome,
    warn_on_submission_count,
)
from orchestrator.context import StepContext
from orchestrator.dispatch import StepCall
from orchestrator.entity_kinds import COMPANY, PERSON, EntityKind, kind_of
from orchestrator.entity_store import entity_ids_for_items, entity_query
from orchestrator.registry import WorkflowConfig, load_workflow
from orchestrator.steps import provider_step
from orchestrator.tokens import sign

log = logging.getLogger(__name__)

CONTROL_FIELDS = ("entity_type", "entity_id", "workflow_slug", "callback_url", "callback_token")


def _claim(
    conn: Conn, kind: EntityKind, workflow: WorkflowConfig, call: StepCall, endpoint: ClayEndpoint
) -> list[dict[str, Any]]:
    """Claim the chunk's unclaimed entities and mark every item; one transaction."""
    item_ids = list(call.item_ids)
    with conn.transaction():
        entity_ids = list(set(entity_ids_for_items(conn, kind, item_ids).values()))
        claims = conn.execute(
            entity_query("claim_entities", kind),
            {
                "entity_ids": entity_ids,
                "workflow_slug": workflow.workflow_slug,
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
                "entity_type": kind.name,
                "workflow_slug": workflow.workflow_slug,
                "provider": workflow.provider,
                "webhook_key": endpoint.key,
                "item_ids": item_ids,
            },
        )
        conn.execute(
            entity_query("mark_items_after_claim", kind),
            {
                "item_ids": item_ids,
                "claimed": [c["entity_id"] for c in claims],
                "workflow_slug": workflow.workflow_slug,
                "id_key": kind.id_column,
                "already": kind.already_enriched,
                "in_progress": kind.in_progress,
                "entity_type": kind.name,
            },
        )
    return [dict(c) for c in claims]


def _rows(
    conn: Conn,
    kind: EntityKind,
    workflow: WorkflowConfig,
    claims: list[dict[str, Any]],
    gateway: ClayGateway,
    signing_key: bytes,
) -> list[dict[str, Any]]:
    payloads = {
        r["id"]: r
        for r in conn.execute(
            query(f"{kind.name}_payloads"), {"entity_ids": [c["entity_id"] for c in claims]}
        )
    }
    rows = []
    for claim in claims:
        entity_id: UUID = claim["entity_id"]
        fields = {k: v for k, v in payloads[entity_id].items() if k != "id"}
        token = sign(
            signing_key, claim["dispatch_id"], entity_id, workflow.workflow_slug, claim["attempts"]
        )
        rows.append(
            {
                **fields,
                "entity_type": kind.name,
                "entity_id": str(entity_id),
                "workflow_slug": workflow.workflow_slug,
                "callback_url": gateway.callback_url(workflow),
                "callback_token": token,
                "_dispatch_id": str(claim["dispatch_id"]),
            }
        )
    return rows


def _record(
    conn: Conn,
    kind: EntityKind,
    workflow: WorkflowConfig,
    endpoint: ClayEndpoint,
    sent: list[tuple[dict[str, Any], SendOutcome]],
) -> None:
    sends = [
        {
            "id": r["_dispatch_id"],
            "entity_id": r["entity_id"],
            "ok": o.ok,
            "http_status": o.http_status,
            "error": o.error,
        }
        for r, o in sent
    ]
    failures = [
        {"entity_id": r["entity_id"], "dispatch_id": r["_dispatch_id"], "error": o.error}
        for r, o in sent
        if not o.ok
    ]
    outcomes = [o for _, o in sent]
    accepted = sum(o.ok for o in outcomes)
    with conn.transaction():
        conn.execute(
            entity_query("record_sends", kind),
            {
                "sends": Jsonb(sends),
                "credits": workflow.credits_per_call,
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
        if accepted:
            row = conn.execute(
                query("count_submissions"),
                {"webhook_key": endpoint.key, "webhook_host": endpoint.host, "count": accepted},
            ).fetchone()
            if row:
                warn_on_submission_count(endpoint.host, int(row["submissions"]), accepted)


@provider_step("clay")
def send_entities_to_clay(ctx: StepContext, workflow: WorkflowConfig, call: StepCall) -> None:
    kind = kind_of(workflow.entity_type)
    gateway: ClayGateway = ctx.providers["clay"]
    endpoint = gateway.endpoint(workflow)
    started = time.perf_counter()
    with ctx.dbs.hq.connection() as conn:
        claims = _claim(conn, kind, workflow, call, endpoint)
        rows = _rows(conn, kind, workflow, claims, gateway, ctx.signing_key)
    claimed = time.perf_counter()
    # The claims are committed before any call: a crash from here on leaves a lease that the
    # sweeper expires, never an entity sent twice by two live senders.
    outcomes = gateway.send_all(endpoint, [_wire_row(r) for r in rows])
    sent = time.perf_counter()
    with ctx.dbs.hq.connection() as conn:
        _record(conn, kind, workflow, endpoint, list(zip(rows, outcomes, strict=True)))
    log.debug(
        "%s: %d items, %d entities claimed in %.3fs, sent in %.3fs, recorded in %.3fs",
        workflow.workflow_slug,
        len(call.item_ids),
        len(rows),
        claimed - started,
        sent - claimed,
        time.perf_counter() - sent,
    )


def _wire_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _run_named(ctx: StepContext, kind: EntityKind, slug: str, item_ids: list[UUID]) -> None:
    with ctx.dbs.hq.connection() as conn:
        workflow = load_workflow(conn, slug)
        rows = conn.execute(
            "SELECT batch_id, array_agg(id) AS ids FROM batch_items WHERE id = ANY(%s)"
            " GROUP BY batch_id",
            (item_ids,),
        ).fetchall()
    if workflow.entity_type != kind.name:
        raise ValueError(f"workflow {slug!r} enriches {workflow.entity_type}, not {kind.name}")
    for row in rows:
        send_entities_to_clay(ctx, workflow, StepCall(row["batch_id"], slug, tuple(row["ids"])))


def start_enrich_company_via_waterfall_in_clay(ctx: StepContext, item_ids: list[UUID]) -> None:
    """Company enrichment sender by its seed name; item-steps must be IN_PROGRESS (claimed)."""
    _run_named(ctx, COMPANY, "enrich_company_via_waterfall_in_clay", item_ids)


def start_enrich_person_via_waterfall_in_clay(ctx: StepContext, item_ids: list[UUID]) -> None:
    """Person enrichment sender by its seed name; item-steps must be IN_PROGRESS (claimed)."""
    _run_named(ctx, PERSON, "enrich_person_via_waterfall_in_clay", item_ids)
