"""The orchestrator: generic over the registry, exactly-once under concurrency, set-based."""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

import pytest
from psycopg import sql

from orchestrator.db.pool import STATEMENTS, Databases
from orchestrator.db.queries import query
from orchestrator.engine.passes import run_pass
from orchestrator.runtimes.local import LocalRuntime
from orchestrator.settings import Settings
from orchestrator.state.registry import clear_registry_cache
from support.pipeline import (
    RecordingDispatcher,
    add_normalize_split_play,
    add_play,
    apollo_csv,
    apollo_rows,
    upload,
)


def _item_rows(dbs: Databases, batch_id: UUID) -> dict[int, dict[str, object]]:
    with dbs.hq.connection() as conn:
        rows = conn.execute(
            """SELECT bi.row_number, c.domain, n.status AS normalize_status,
                      n.meta AS normalize_meta,
                      s.status AS split_status
               FROM batch_items bi
               LEFT JOIN normalized_companies c ON c.id = bi.company_id
               LEFT JOIN workflow_states n ON n.item_id = bi.id
                    AND n.step_name = 'normalize_all_core_values'
               LEFT JOIN workflow_states s ON s.item_id = bi.id AND s.step_name = 'split'
               WHERE bi.batch_id = %s""",
            (batch_id,),
        ).fetchall()
    return {int(r["row_number"]): r for r in rows}  # type: ignore[misc]


def test_thousand_messy_rows_dedupe_to_registrable_domains(dbs: Databases) -> None:
    play = add_normalize_split_play(dbs)
    sample = apollo_rows(1000, 150, seed=7)
    result = upload(dbs, apollo_csv(1000, 150, seed=7), play)
    with LocalRuntime(Settings(), dbs) as runtime:
        progress = runtime.run_batch(result.batch_id, timeout=120)
    assert progress.done
    items = _item_rows(dbs, result.batch_id)
    expected = {i + 2: row.expected_domain for i, row in enumerate(sample)}
    derivable = {n for n, d in expected.items() if d is not None}
    assert 0 < len(expected) - len(derivable) < 100
    with dbs.hq.connection() as conn:
        companies = conn.execute(
            "SELECT count(*) AS n FROM normalized_companies WHERE batch_id = %s",
            (result.batch_id,),
        ).fetchone()
    assert companies is not None
    assert companies["n"] == len({d for d in expected.values() if d is not None})
    for number, domain in expected.items():
        item = items[number]
        if domain is None:
            assert item["normalize_status"] == "FAILED"
            assert item["normalize_meta"]["reason"]  # type: ignore[index]
            assert item["split_status"] is None
        else:
            assert item["domain"] == domain, number
            assert item["split_status"] == "COMPLETED"


def test_people_are_deduplicated_by_email_then_linkedin(dbs: Databases) -> None:
    play = add_normalize_split_play(dbs)
    text = (
        "First Name,Last Name,Company,Email,Website,Person Linkedin Url\r\n"
        "Ann,Lee,Acme,ann@acme.com,acme.com,\r\n"
        "Ann,Lee,Acme,ANN@acme.com ,https://www.acme.com,\r\n"
        "Bob,Ray,Acme,,acme.com,https://linkedin.com/in/bobray/\r\n"
        "Bob,Ray,Acme,,acme.com,http://uk.linkedin.com/in/BobRay\r\n"
        "Cy,Doe,Acme,,acme.com,\r\n"
        "Cy,Doe,Acme,,acme.com,\r\n"
    )
    result = upload(dbs, text.encode(), play)
    with LocalRuntime(Settings(), dbs) as runtime:
        runtime.run_batch(result.batch_id, timeout=60)
    with dbs.hq.connection() as conn:
        people = conn.execute(
            "SELECT dedupe_key FROM normalized_people WHERE batch_id = %s ORDER BY 1",
            (result.batch_id,),
        ).fetchall()
        linked = conn.execute(
            "SELECT count(DISTINCT person_id) AS n, count(*) FILTER (WHERE person_id IS NULL) AS"
            " missing FROM batch_items WHERE batch_id = %s",
            (result.batch_id,),
        ).fetchone()
    keys = [str(p["dedupe_key"]) for p in people]
    # Ann by email, Bob by LinkedIn; the two Cy rows carry nothing safe to dedupe by.
    assert [k.split(":")[0] for k in keys] == ["email", "item", "item", "linkedin"]
    assert keys[0] == "email:ann@acme.com"
    assert keys[3] == "linkedin:https://www.linkedin.com/in/bobray"
    assert linked == {"n": 4, "missing": 0}


def _start_together(n: int, target: object) -> None:
    barrier = threading.Barrier(n)

    def run() -> None:
        barrier.wait()
        target()  # type: ignore[operator]

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_eight_concurrent_passes_dispatch_each_item_step_exactly_once(dbs: Databases) -> None:
    play = add_normalize_split_play(dbs)
    batch = upload(dbs, apollo_csv(5000, 500), play).batch_id
    recorder = RecordingDispatcher()

    def one_pass() -> None:
        run_pass(dbs, batch, recorder, chunk_size=250)

    _start_together(8, one_pass)
    first = recorder.received("normalize_all_core_values")
    assert len(first) == 5000 and set(first.values()) == {1}

    # Every item completes its first step behind the orchestrator's back; the next eight
    # concurrent passes must advance and dispatch each of them exactly once.
    with dbs.hq.connection() as conn:
        conn.execute(
            "UPDATE workflow_states SET status = 'COMPLETED' WHERE batch_id = %s", (batch,)
        )
    _start_together(8, one_pass)
    second = recorder.received("split")
    assert len(second) == 5000 and set(second.values()) == {1}
    assert recorder.received("normalize_all_core_values") == first


def test_split_chunks_hold_each_company_side_by_side(dbs: Databases) -> None:
    """Rows of one company are scattered through the file; the split step must still receive
    them next to each other, so concurrent split chunks do not insert the same domains."""
    play = add_normalize_split_play(dbs)
    batch = upload(dbs, apollo_csv(300, 40, seed=3), play).batch_id
    with LocalRuntime(Settings(), dbs) as runtime:
        assert runtime.run_batch(batch, timeout=120).done
    with dbs.hq.connection() as conn:
        # Back to "normalized, not yet split", links and all.
        conn.execute(
            "UPDATE batch_items SET company_id = NULL, person_id = NULL WHERE batch_id = %s",
            (batch,),
        )
        conn.execute(
            "UPDATE workflow_states SET status = 'PENDING', advanced = FALSE"
            " WHERE batch_id = %s AND step_name = 'split'",
            (batch,),
        )
        domains = {
            r["id"]: r["domain"]
            for r in conn.execute(
                "SELECT id, normalized->>'company_domain' AS domain FROM batch_items"
                " WHERE batch_id = %s AND normalized IS NOT NULL",
                (batch,),
            )
        }
    recorder = RecordingDispatcher()
    run_pass(dbs, batch, recorder, chunk_size=7)
    order = [domains[i] for c in recorder.calls if c.step_name == "split" for i in c.item_ids]
    assert len(order) == len(domains)
    runs = [d for n, d in enumerate(order) if n == 0 or order[n - 1] != d]
    assert len(runs) == len(set(order)) < len(order)  # one contiguous run per company


def _statements_of_one_pass(dbs: Databases, batch: UUID) -> int:
    clear_registry_cache()  # measure the cold pass, registry reads included
    with STATEMENTS.measure() as box:
        run_pass(dbs, batch, RecordingDispatcher(), chunk_size=500)
    return box[0]


@pytest.mark.parametrize("phase", ["claim", "advance_and_claim"])
def test_statements_per_pass_do_not_grow_with_items(dbs: Databases, phase: str) -> None:
    add_play(dbs, "three-steps", ["normalize_all_core_values", "split", "consolidate"])
    counts = []
    for n in (1000, 10_000):
        batch = upload(dbs, apollo_csv(n, n // 5, seed=n), "three-steps").batch_id
        if phase == "advance_and_claim":
            with dbs.hq.connection() as conn:
                conn.execute(
                    "UPDATE workflow_states SET status = 'COMPLETED' WHERE batch_id = %s", (batch,)
                )
        counts.append(_statements_of_one_pass(dbs, batch))
    assert counts[0] == counts[1]
    assert counts[0] <= 6


def _scan_of(plan: dict[str, Any], alias: str) -> dict[str, Any] | None:
    if plan.get("Alias") == alias and "Scan" in str(plan.get("Node Type")):
        return plan
    for child in plan.get("Plans", []):
        found = _scan_of(child, alias)
        if found is not None:
            return found
    return None


def test_claim_finds_picked_rows_by_primary_key_even_with_stale_statistics(
    dbs: Databases,
) -> None:
    """Statistics taken while nothing was PENDING once made the claim scan every PENDING row
    for each picked row: minutes for a 100,000-item pass. The claim must probe by id."""
    play = add_normalize_split_play(dbs)
    batch = upload(dbs, apollo_csv(5000, 500), play).batch_id
    params = {
        "batch_id": batch,
        "slugs": ["normalize_all_core_values", "split"],
        "timeouts": [600, 600],
        "paid_slugs": ["split"],
        "limit": 100_000,
        "runner_id": None,
    }
    with dbs.hq.connection() as conn:
        conn.execute(
            "UPDATE workflow_states SET status = 'COMPLETED' WHERE batch_id = %s", (batch,)
        )
        conn.execute("ANALYZE workflow_states")
        conn.execute("UPDATE workflow_states SET status = 'PENDING' WHERE batch_id = %s", (batch,))
        row = conn.execute(
            sql.SQL("EXPLAIN (FORMAT JSON) ") + query("claim_pending_steps"), params
        ).fetchone()
        assert row is not None
        scan = _scan_of(next(iter(row.values()))[0]["Plan"], "ws")
        assert scan is not None and scan.get("Index Name") == "workflow_states_pkey", scan
        claimed = conn.execute(query("claim_pending_steps"), params).fetchall()
    assert len(claimed) == 5000


def test_the_services_statements_are_never_prepared_on_the_server(dbs: Databases) -> None:
    """A statement run often enough used to be kept prepared, and the server then reused one
    generic plan for it. Costed while workflow_states was empty (a new install, or right after
    a vacuum), that plan scanned the whole table for each row a statement looked up, as the
    next batch filled it: completing 777 person results took 6.5 s instead of 0.1 s. Unnamed
    statements are planned at each run for the tables of that moment."""
    lookup = "SELECT id FROM workflow_states WHERE item_id = %s AND step_name = 'split'"
    with dbs.hq.connection() as conn:
        for _ in range(10):
            conn.execute(lookup, (UUID(int=0),))
        prepared = conn.execute("SELECT count(*) AS n FROM pg_prepared_statements").fetchone()
        mode = conn.execute("SHOW plan_cache_mode").fetchone()
    assert prepared is not None and prepared["n"] == 0
    # Server-side plans (foreign-key checks, triggers) are planned once, not at every run.
    assert mode is not None and mode["plan_cache_mode"] == "auto"
