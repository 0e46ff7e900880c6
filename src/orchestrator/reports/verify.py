"""`enrich verify`: the entity-level tracking plan's verification queries, as pass/fail checks,
plus the integrity rule that no completion exists without its stored data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from orchestrator.db.pool import Conn, Databases
from orchestrator.engine.passes import UnknownBatchError
from orchestrator.state.entity_kinds import EntityKind, kind_of
from orchestrator.state.entity_store import entity_query
from orchestrator.state.progress import read_progress
from orchestrator.state.registry import WorkflowConfig, load_play

UNFINISHED = {"PENDING", "IN_PROGRESS"}


@dataclass
class Check:
    name: str
    passed: bool
    detail: str
    rows: list[dict[str, Any]] = field(default_factory=list)


def _rows(conn: Conn, name: str, kind: EntityKind, params: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(entity_query(name, kind), params)]


def _entity_checks(conn: Conn, kind: EntityKind, params: dict[str, Any]) -> list[Check]:
    slug = params["workflow_slug"]
    states = _rows(conn, "verify_entity_states", kind, params)
    at_step = _rows(conn, "verify_entities_at_step", kind, params)[0]["entities"]
    unfinished = sum(r["n"] for r in states if r["status"] in UNFINISHED)
    total = sum(r["n"] for r in states)
    results = _rows(conn, "verify_entity_results", kind, params)[0]
    items = _rows(conn, "verify_item_states", kind, params)
    skips = _rows(conn, "verify_skips", kind, params)
    calls = _rows(conn, "verify_calls", kind, params)[0]["n"]
    unexplained = _rows(conn, "verify_unexplained_items", kind, params)[0]["n"]
    reached = sum(r["n"] for r in items)
    return [
        Check(
            f"{kind.state_table} ({slug})",
            unfinished == 0 and total == at_step,
            f"{total} state rows for {at_step} {kind.name} entities, {unfinished} unfinished",
            states,
        ),
        Check(
            f"{kind.result_table} ({slug})",
            results["completed_without_result"] == 0,
            f"{results['results']} results for {results['completed']} COMPLETED entities;"
            f" {results['completed_without_result']} completed without a result",
            [results],
        ),
        Check(
            f"workflow_states for {slug}",
            not any(r["status"] in UNFINISHED for r in items),
            ", ".join(f"{r['status']} {r['n']}" for r in items) or "no items reached the step",
            items,
        ),
        Check(
            # Each call serves the item that made it; every other item says it reused a result.
            f"skip behaviour for {slug}",
            unexplained == 0,
            f"{calls} calls for {reached} items, {unexplained} unexplained; "
            + (", ".join(f"{r['skip_reason'] or 'sent'}: {r['n']}" for r in skips) or "none"),
            skips,
        ),
    ]


def _integrity_checks(conn: Conn, kind: EntityKind, params: dict[str, Any]) -> list[Check]:
    slug = params["workflow_slug"]
    items = _rows(conn, "verify_items_without_data", kind, params)[0]["n"]
    checks = [
        Check(
            f"integrity: items completed with data ({slug})",
            items == 0,
            f"{items} item(s) COMPLETED without their {kind.name}'s stored result",
        )
    ]
    if kind.name == "company":
        orphans = _rows(conn, "verify_completions_without_data", kind, params)[0]["n"]
        checks.append(
            Check(
                f"integrity: step completions have data ({slug})",
                orphans == 0,
                f"{orphans} company_play_step_completions without stored data",
            )
        )
    return checks


def _entity_workflows(conn: Conn, batch_id: UUID) -> list[WorkflowConfig]:
    row = conn.execute("SELECT play_name FROM upload_batches WHERE id = %s", (batch_id,)).fetchone()
    if row is None:
        raise UnknownBatchError(f"no upload batch {batch_id}")
    play = load_play(conn, str(row["play_name"]))
    return [s.workflow for s in play.steps if s.workflow.entity_type in ("company", "person")]


def verify_batch(dbs: Databases, batch_id: UUID) -> list[Check]:
    checks: list[Check] = []
    with dbs.hq.connection() as conn:
        progress = read_progress(conn, batch_id)
        checks.append(
            Check("batch finished", progress.done, f"{progress.active} item-steps still active")
        )
        for workflow in _entity_workflows(conn, batch_id):
            kind = kind_of(workflow.entity_type)
            params = {"batch_id": batch_id, "workflow_slug": workflow.workflow_slug}
            checks += _entity_checks(conn, kind, params)
            checks += _integrity_checks(conn, kind, params)
    return checks
