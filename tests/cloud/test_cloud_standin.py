"""The deployment's multi-process behaviour, proven on one machine: container processes with a
CloudRuntime each, all through PgBouncer in transaction mode (Supabase's pooler), and the Clay
simulator enforcing a workspace limit (faster than Clay's 10 rows/s, so a run takes a minute).

The slow tests run a ~300-row batch (about 50 companies) end to end: through several
containers, with one killed mid send, and with too few Clay webhooks until a redeploy adds
some; the quick ones check that the pooler refuses a client over its limit loudly
(test_standin_parts.py checks the rest of the stand-in's own parts).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from cloud.figures import RunFigures
from cloud.harness import StandIn
from cloud.processes import Process
from support.pgbouncer import PgBouncer, find_pgbouncer, missing_reason, running_pgbouncer
from support.postgres import PostgresServer

if find_pgbouncer() is None:
    # One line for the whole module (a skip per test would say it three times).
    pytest.skip(missing_reason(), allow_module_level=True)

StandInFactory = Callable[..., StandIn]
FAST_WORKSPACE = {"clay_rate": 40.0, "clay_burst": 20, "rows": 300, "companies": 50}
COMPANY = "enrich_company_via_waterfall_in_clay"
PERSON = "enrich_person_via_waterfall_in_clay"


def _logged(process: Process, text: str) -> bool:
    return text in process.log_path.read_text(encoding="utf-8", errors="replace")


def _report(figures: RunFigures) -> str:
    text = "\n".join(figures.lines())
    print(text)
    return text


@pytest.mark.slow
def test_a_batch_completes_through_pgbouncer_with_several_containers(
    standin: StandInFactory,
) -> None:
    run = standin(containers=4, **FAST_WORKSPACE)
    batch = run.upload()
    run.wait_done(batch, timeout=240)
    figures = run.figures(batch)
    report = _report(figures)

    assert figures.batch_status == "COMPLETED", report
    assert figures.verified, figures.verify_output
    # One Clay call per unique company and person, whichever container sent it.
    assert figures.clay_accepted == figures.unique_entities, report
    assert figures.dispatched_entities == figures.unique_entities, report
    # The workspace limit is shared by every container: Clay (almost) never says 429.
    assert figures.share_429 <= 0.01, report
    assert figures.refusals == [], report
    assert figures.tracebacks == 0 and figures.statement_errors == 0, report
    assert figures.gave_up == [], report


@pytest.mark.slow
def test_a_steps_container_killed_mid_send_loses_nothing_and_sends_nothing_twice_early(
    standin: StandInFactory,
) -> None:
    run = standin(containers=4, clay_timeout_seconds=20, sweep_interval=3.0, **FAST_WORKSPACE)
    batch = run.upload()
    kill = run.kill_during_clay_send(min_running=0.5)
    run.wait_done(batch, timeout=240)
    figures = run.figures(batch)
    report = _report(figures)

    assert figures.batch_status == "COMPLETED", report
    assert figures.verified, figures.verify_output
    assert any(kill.container in e and "unasked" in e for e in figures.events), report
    # The killed input ran again elsewhere (Modal retries an input of a crashed container).
    assert figures.retried_inputs >= 1, report
    # No entity went to Clay a second time while its first dispatch's lease held; a re-send
    # after the lease expired is recovery, and only those may reach Clay twice.
    assert figures.early_redispatches == [], report
    assert figures.duplicates <= figures.late_redispatches, report
    assert figures.refusals == [], report
    assert figures.statement_errors == 0, report


@pytest.mark.slow
def test_a_batch_held_for_want_of_a_webhook_goes_on_by_itself_after_a_redeploy_with_more(
    standin: StandInFactory,
) -> None:
    limit = 120  # lifetime submissions per webhook, at Clay (the simulator) and in our config
    run = standin(
        containers=4, lifetime_limit=limit, company_webhooks=1, person_webhooks=1, **FAST_WORKSPACE
    )
    batch = run.upload()

    # ~290 people, one webhook of 120: the person workflow is held once its webhook is used up.
    deadline = time.monotonic() + 180
    while PERSON not in run.held() or any(
        n
        for (step, status), n in run.step_counts(batch).items()
        if step != PERSON and status in ("PENDING", "IN_PROGRESS")
    ):
        assert run.batch_status(batch)[0] == "RUNNING", run.batch_status(batch)
        assert time.monotonic() < deadline, (run.step_counts(batch), run.held())
        time.sleep(0.5)
    quiet = run.wait_quiet(quiet=5.0)
    reason = run.held()[PERSON]
    steps = run.step_counts(batch)
    assert "CLAY_PERSON_WEBHOOK_URL" in reason, reason
    assert run.batch_status(batch)[0] == "RUNNING"
    assert steps.get((PERSON, "PENDING"), 0) > 0, steps
    # The rows that fit were sent: the webhook is used to its limit, not less, not more.
    assert quiet["accepted_by_webhook"].get("person-1") == limit, quiet
    assert quiet.get("rejected", {}).get("410", 0) == 0, quiet
    time.sleep(5)
    later = run.clay_stats()
    assert later["received"] == quiet["received"], "sent while held"
    assert run.held() == {PERSON: reason}

    # A user adds two webhook URLs to the secret and redeploys; the batch goes on by itself.
    new = run.redeploy(person_webhooks=3)
    assert run.wait_done(batch, timeout=240) == "COMPLETED"
    figures = run.figures(batch)
    report = _report(figures)

    assert figures.batch_status == "COMPLETED", report
    assert figures.verified, figures.verify_output
    assert set(figures.accepted_by_webhook) == {"company-1", "person-1", "person-2", "person-3"}
    assert all(n <= limit for n in figures.accepted_by_webhook.values()), report
    assert figures.accepted_by_webhook["person-1"] == limit, report
    # Every company and person accepted exactly once; never a send past a webhook's limit.
    assert figures.clay_accepted == figures.unique_entities, report
    assert figures.duplicates == 0, report
    assert figures.rejected_410 == 0, report
    assert figures.holds == {}, report
    assert figures.tracebacks == 0 and figures.statement_errors == 0, report
    assert figures.gave_up == [], report
    # The new containers lifted the hold (nothing else touched it).
    lifted = [p.name for p in run.processes.all if p.name in new and _logged(p, "sends again")]
    assert lifted, report


def test_pgbouncer_refuses_a_client_over_max_client_conn_and_says_so(
    pg_server: PostgresServer, pgbouncer_binary: str, tmp_path: Path
) -> None:
    dbname = str(psycopg.conninfo.conninfo_to_dict(pg_server.admin_conninfo).get("dbname"))
    with running_pgbouncer(
        pg_server.admin_conninfo,
        [dbname],
        binary=pgbouncer_binary,
        max_client_conn=3,
        run_dir=tmp_path / "bouncer",
    ) as bouncer:
        held = [psycopg.connect(bouncer.url(dbname), connect_timeout=5) for _ in range(3)]
        try:
            with pytest.raises(psycopg.OperationalError, match="max_client_conn"):
                psycopg.connect(bouncer.url(dbname), connect_timeout=5)
            deadline = time.monotonic() + 5
            while not bouncer.refusals() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert any("no more connections allowed" in r for r in bouncer.refusals())
        finally:
            for conn in held:
                conn.close()
        pools = bouncer.pools()
        assert [p["pool_mode"] for p in pools] == ["transaction"]


def test_a_transaction_goes_through_the_transaction_pool_and_shows_in_its_stats(
    pgbouncer: PgBouncer,
) -> None:
    dbname = pgbouncer.databases[0]
    with psycopg.connect(pgbouncer.url(dbname), connect_timeout=5, prepare_threshold=None) as conn:
        assert conn.execute("SELECT 41 + 1").fetchone() == (42,)
    (pool,) = pgbouncer.pools()
    assert (pool["database"], pool["pool_mode"]) == (dbname, "transaction")
    assert [s["total_xact_count"] >= 1 for s in pgbouncer.stats()] == [True]
    assert pgbouncer.refusals() == []
