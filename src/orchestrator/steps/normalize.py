"""normalize_all_core_values: pure normalizers over a chunk of items, written back set-based."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from entities.apollo import APOLLO_FIELDS
from entities.normalize import NormalizationFailure, normalize_item, person_dedupe_key
from orchestrator.db.queries import query
from orchestrator.engine.context import StepContext
from orchestrator.engine.dispatch import StepCall
from orchestrator.state.registry import WorkflowConfig


def normalized_document(item_id: UUID, fields: dict[str, str]) -> dict[str, Any]:
    """The `batch_items.normalized` document, or a failure with its reason."""
    result = normalize_item(fields)
    if isinstance(result, NormalizationFailure):
        return {"id": str(item_id), "reason": result.reason, "detail": result.detail}
    doc = asdict(result)
    # Items without email or LinkedIn are their own person: nothing safe to dedupe them by.
    doc["person_key"] = person_dedupe_key(result) or f"item:{item_id}"
    return {"id": str(item_id), "normalized": doc}


def normalize_all_core_values(ctx: StepContext, workflow: WorkflowConfig, call: StepCall) -> None:
    with ctx.dbs.hq.connection() as conn:
        rows = conn.execute(query("items_to_normalize"), {"item_ids": list(call.item_ids)})
        docs = [
            normalized_document(UUID(str(r["id"])), {f: r[f] for f in APOLLO_FIELDS})
            for r in rows.fetchall()
        ]
        ok = [d for d in docs if "normalized" in d]
        failed = [d for d in docs if "normalized" not in d]
        params = {"step": call.step_name}
        if ok:
            stored_ids = [d["id"] for d in ok]
            conn.execute(
                query("store_normalized"), {"docs": Jsonb(ok), "item_ids": stored_ids, **params}
            )
        if failed:
            conn.execute(query("fail_unnormalizable"), {"docs": Jsonb(failed), **params})
