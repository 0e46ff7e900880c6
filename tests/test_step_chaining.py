"""An item's next step comes with the completion of its current one, in the same statement; the
statements that complete steps reach their rows by index whatever the statistics say; and the
triggers' lookups stay index probes however their tables have grown since they were planned."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from psycopg import sql

from orchestrator.db.pool import Databases
from orchestrator.db.queries import query
from orchestrator.engine.context import StepContext
from orchestrator.engine.dispatch import StepCall
from orchestrator.engine.passes import run_pass
from orchestrator.runtimes.local import LocalRuntime
from orchestrator.settings import Settings
from orchestrator.state.registry import WorkflowConfig
from orchestrator.steps.table import step_table
from support.pipeline import RecordingDispatcher, add_normalize_split_play, apollo_csv, upload

NORMALIZE = "normalize_all_core_values"


def _rows(dbs: Databases, items: list[UUID]) -> dict[tuple[UUID, str], dict[str, Any]]:
    with dbs.hq.connection() as conn:
        found = conn.execute(
            "SELECT item_id, step_name, status, advanced FROM workflow_states"
            " WHERE item_id = ANY(%s)",
            (items,),
        ).fetchall()
    return {(r["item_id"], r["step_name"]): r for r in found}


def _complete(dbs: Databases, step: str, items: list[UUID]) -> int:
    with dbs.hq.connection() as conn:
        cur = conn.execute(
            query("complete_item_steps"), {"item_ids": items, "step": step, "meta": "{}"}
        )
        return cur.rowcount


def test_completing_an_item_step_creates_its_next_step_in_the_same_statement(
    dbs: Databases,
) -> None:
    play = add_normalize_split_play(dbs)
    batch = upload(dbs, apollo_csv(20, 5, seed=3), play).batch_id
    claimed = RecordingDispatcher()
    run_pass(dbs, batch, claimed)
    items = sorted(claimed.received(NORMALIZE))
    done, waiting = items[:10], items[10:]

    assert _complete(dbs, NORMALIZE, done) == 10
    rows = _rows(dbs, items)
    for item in done:  # no pass ran: the statement itself made the next step
        assert rows[item, NORMALIZE]["status"] == "COMPLETED" and rows[item, NORMALIZE]["advanced"]
        assert rows[item, "split"]["status"] == "PENDING"
    assert all((item, "split") not in rows for item in waiting)

    # The last step has no next one: advanced, and nothing new.
    splits = RecordingDispatcher()
    run_pass(dbs, batch, splits)
    assert sorted(splits.received("split")) == done
    assert _complete(dbs, "split", done) == 10
    rows = _rows(dbs, items)
    assert all(rows[item, "split"]["advanced"] for item in done)
    assert len(rows) == 30


def test_a_step_completed_without_the_flag_is_advanced_by_the_next_pass(dbs: Databases) -> None:
    play = add_normalize_split_play(dbs)
    batch = upload(dbs, apollo_csv(6, 2, seed=4), play).batch_id
    claimed = RecordingDispatcher()
    run_pass(dbs, batch, claimed)
    items = sorted(claimed.received(NORMALIZE))
    with dbs.hq.connection() as conn:
        conn.execute(
            "UPDATE workflow_states SET status = 'COMPLETED' WHERE item_id = ANY(%s)", (items,)
        )
    assert all((item, "split") not in _rows(dbs, items) for item in items)
    result = run_pass(dbs, batch, RecordingDispatcher())
    assert result.advanced == len(items)
    rows = _rows(dbs, items)
    assert all(rows[item, NORMALIZE]["advanced"] for item in items)
    assert all((item, "split") in rows for item in items)


def _scans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan] if "Scan" in str(plan.get("Node Type")) else []
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


def _hang(ctx: StepContext, workflow: WorkflowConfig, call: StepCall) -> None:
    """Leaves its items IN_PROGRESS: split claimed, not run."""


def test_split_reaches_its_item_steps_by_id_whatever_the_statistics_say(dbs: Databases) -> None:
    """Statistics taken before split began said no split row was IN_PROGRESS; the completion,
    which joined the linked items to the IN_PROGRESS split rows, then scanned all of them once
    per item: 0.5 s per chunk of 500."""
    play = add_normalize_split_play(dbs)
    batch = upload(dbs, apollo_csv(3000, 300, seed=5), play).batch_id
    with dbs.hq.connection() as conn:
        conn.execute("ALTER TABLE workflow_states SET (autovacuum_enabled = false)")
        conn.execute("ANALYZE workflow_states")
    steps = step_table().with_internal({"split": _hang})
    with LocalRuntime(Settings(), dbs, steps=steps) as runtime:
        runtime.trigger.request(batch)
        deadline = time.monotonic() + 120
        while runtime.progress(batch).active != _split_claimed(dbs, batch):
            assert time.monotonic() < deadline, "split was never claimed"
            time.sleep(0.2)
    chunk = _split_claimed_items(dbs, batch)[:500]
    params = {"item_ids": chunk, "step": "split"}
    with dbs.hq.connection() as conn:
        conn.execute(query("split_insert_companies"), params)
        conn.execute(query("split_insert_people"), params)
        row = conn.execute(
            sql.SQL("EXPLAIN (FORMAT JSON) ") + query("split_link_and_complete"), params
        ).fetchone()
        conn.rollback()
    assert row is not None
    plan = next(iter(row.values()))[0]["Plan"]
    scans = [s for s in _scans(plan) if s.get("Relation Name") == "workflow_states"]
    assert scans and all("Index" in str(s["Node Type"]) for s in scans), scans
    updated = [s for s in scans if s.get("Alias") == "ws"]
    assert updated and updated[0].get("Index Name") == "workflow_states_pkey", updated


def _split_claimed_items(dbs: Databases, batch: UUID) -> list[UUID]:
    with dbs.hq.connection() as conn:
        found = conn.execute(
            "SELECT item_id FROM workflow_states WHERE batch_id = %s AND step_name = 'split'"
            " AND status = 'IN_PROGRESS' ORDER BY item_id",
            (batch,),
        ).fetchall()
    return [r["item_id"] for r in found]


def _split_claimed(dbs: Databases, batch: UUID) -> int:
    return len(_split_claimed_items(dbs, batch))


def test_the_triggers_lookups_are_index_probes_at_any_table_size(dbs: Databases) -> None:
    """A trigger's plan is made once per connection and kept: billing's, made while the result
    tables were empty, scanned person_enrichment_results whole once per callback."""
    with dbs.hq.connection() as conn:
        found = conn.execute(
            "SELECT proname, proconfig FROM pg_proc"
            " WHERE proname IN ('bill_dispatches', 'create_next_item_steps')"
        ).fetchall()
    settings = {r["proname"]: set(r["proconfig"] or ()) for r in found}
    assert settings == {
        "bill_dispatches": {"enable_nestloop=off", "enable_seqscan=off"},
        "create_next_item_steps": {"enable_seqscan=off"},
    }
