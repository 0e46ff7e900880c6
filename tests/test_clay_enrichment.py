"""Entity-level Clay enrichment over real HTTP: the Clay simulator calls our receivers back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from typer.testing import CliRunner

from conftest import DatabasePair
from orchestrator.callbacks.tokens import sign
from orchestrator.cli.main import app
from orchestrator.db.pool import Databases
from orchestrator.engine.context import StepContext
from orchestrator.engine.dispatch import StepCall
from orchestrator.providers.simulators.clay import SimulatorConfig
from orchestrator.runtimes.service import LocalService
from orchestrator.settings import Settings, get_settings
from orchestrator.state.registry import load_workflow
from orchestrator.steps.webhook_sender import send_to_webhook
from support.pipeline import add_normalize_split_play, apollo_csv, upload

COMPANY_STEP = "enrich_company_via_waterfall_in_clay"
PERSON_STEP = "enrich_person_via_waterfall_in_clay"
SEED_SCENARIO = (
    b"First Name,Last Name,Title,Company,Email,Website\r\n"
    b"Ada,One,CEO,Acme,ada@acme.com,https://www.acme.com\r\n"
    b"Bo,Two,CTO,Acme,bo@acme.com,acme.com\r\n"
    b"Cy,Three,VP Sales,Globex,cy@globex.com,globex.com\r\n"
    b"Di,Four,Engineer,Globex,di@globex.com,http://globex.com/about\r\n"
    b"Ed,Five,Founder,Initech,ed@initech.io,initech.io\r\n"
    b"Fa,Six,Designer,Initech,fa@initech.io,WWW.INITECH.IO\r\n"
)


def _one(dbs: Databases, sql: str, *params: object) -> Any:
    with dbs.hq.connection() as conn:
        row = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return next(iter(row.values()))


def _all(dbs: Databases, sql: str, *params: object) -> list[dict[str, Any]]:
    with dbs.hq.connection() as conn:
        return [dict(r) for r in conn.execute(sql, params)]  # type: ignore[arg-type]


def test_seed_stage_7_scenario_over_real_http(
    dbs: Databases, db_urls: DatabasePair, local_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LocalService(local_settings, dbs) as service:
        batch = upload(dbs, SEED_SCENARIO, "apollo-lead-enrichment").batch_id
        service.runtime.run_batch(batch, timeout=60)
        assert service.simulator is not None
        assert service.simulator.submission_count("company") == 3
        assert service.simulator.submission_count("person") == 6

    assert _all(dbs, "SELECT status, count(*) AS n FROM company_workflow_states GROUP BY 1") == [
        {"status": "COMPLETED", "n": 3}
    ]
    assert _one(dbs, "SELECT count(*) FROM company_enrichment_results") == 3
    assert _all(
        dbs,
        "SELECT step_name, status, COUNT(*) AS n FROM workflow_states WHERE step_name = %s"
        " GROUP BY step_name, status",
        COMPANY_STEP,
    ) == [{"step_name": COMPANY_STEP, "status": "COMPLETED", "n": 6}]
    skips = _all(
        dbs,
        "SELECT meta->>'skipped' AS skip_reason, COUNT(*) AS n FROM workflow_states"
        " WHERE step_name = %s GROUP BY meta->>'skipped' ORDER BY 1 NULLS FIRST",
        COMPANY_STEP,
    )
    assert skips[0] == {"skip_reason": None, "n": 3}
    assert sum(s["n"] for s in skips[1:]) == 3
    assert {s["skip_reason"] for s in skips[1:]} <= {
        "company_enrichment_in_progress",
        "company_already_enriched",
    }

    monkeypatch.setenv("DATABASE_URL", db_urls.urls.hq)
    monkeypatch.setenv("WORKSPACE_DATABASE_URL", db_urls.urls.workspace)
    get_settings.cache_clear()
    try:
        verified = CliRunner().invoke(app, ["verify", str(batch)])
    finally:
        get_settings.cache_clear()
    assert verified.exit_code == 0, verified.output
    assert "0 failed" in verified.output


@pytest.mark.slow
def test_enrich_run_on_a_fresh_machine_with_no_configuration(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if "DATABASE_URL" not in k and "CLAY" not in k}
    env["ENRICH_HOME"] = str(tmp_path / "home")
    sample = tmp_path / "leads.csv"
    subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", "sample", str(sample), "--rows", "1000"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", "run", str(sample), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["items"] == 1000 and summary["status"] == "COMPLETED"
    assert summary["clay_calls"] == {"company": summary["companies"], "person": summary["people"]}
    assert summary["completed"] + summary["failed"] == summary["items"]
    assert summary["credits_saved"] > 0
    assert set(summary) >= {
        "batch_id",
        "items",
        "companies",
        "people",
        "completed",
        "failed",
        "seconds",
    }


def _prepare_company_step(dbs: Databases, items_per_company: int, companies: int) -> uuid.UUID:
    """A batch split into entities, every item claimed (IN_PROGRESS) at the company step."""
    play = add_normalize_split_play(dbs)
    data = apollo_csv(
        items_per_company * companies,
        companies,
        seed=3,
        email_only_fraction=0,
        underivable_fraction=0,
        duplicate_fraction=0,
    )
    batch = upload(dbs, data, play).batch_id
    from orchestrator.runtimes.local import LocalRuntime

    with LocalRuntime(Settings(), dbs) as runtime:
        runtime.run_batch(batch, timeout=60)
    with dbs.hq.connection() as conn:
        conn.execute(
            "INSERT INTO workflow_states (batch_id, item_id, step_name, step_number, status)"
            " SELECT batch_id, id, %s, 3, 'IN_PROGRESS' FROM batch_items WHERE batch_id = %s",
            (COMPANY_STEP, batch),
        )
    return batch


def test_sixteen_concurrent_senders_call_clay_once_per_company(
    dbs: Databases, local_settings: Settings
) -> None:
    batch = _prepare_company_step(dbs, items_per_company=8, companies=10)
    item_ids = [
        r["id"]
        for r in _all(
            dbs, "SELECT id FROM batch_items WHERE batch_id = %s ORDER BY row_number", batch
        )
    ]
    assert _one(dbs, "SELECT count(*) FROM normalized_companies") == 10
    chunks = [tuple(item_ids[i::16]) for i in range(16)]
    violations: list[int] = []
    stop = threading.Event()

    def watch_integrity() -> None:
        while not stop.is_set():
            violations.append(
                _one(
                    dbs,
                    """
                SELECT count(*) FROM workflow_states ws JOIN batch_items bi ON bi.id = ws.item_id
                WHERE ws.step_name = %s AND ws.status = 'COMPLETED' AND NOT EXISTS (
                    SELECT 1 FROM company_enrichment_results r WHERE r.company_id = bi.company_id)
            """,
                    COMPANY_STEP,
                )
            )

    simulator = SimulatorConfig(callback_delay_seconds=0.05, callback_jitter_seconds=0.1)
    with LocalService(local_settings, dbs, simulator=simulator) as service:
        ctx: StepContext = service.runtime.ctx
        with dbs.hq.connection() as conn:
            workflow = load_workflow(conn, COMPANY_STEP)
        barrier = threading.Barrier(16)

        def sender(chunk: tuple[uuid.UUID, ...]) -> None:
            barrier.wait()
            send_to_webhook(ctx, workflow, StepCall(batch, COMPANY_STEP, chunk))

        watcher = threading.Thread(target=watch_integrity)
        watcher.start()
        threads = [threading.Thread(target=sender, args=(c,)) for c in chunks]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert service.simulator is not None and service.simulator.wait_idle(30)
        # The receivers stored the results; the batch's next pass completes them.
        assert service.runtime.trigger.wait_settled(30)
        stop.set()
        watcher.join()
        assert service.simulator.submission_count("company") == 10
        assert len(service.simulator.submissions_by_entity) == 10

    assert violations and max(violations) == 0
    states = _all(
        dbs,
        "SELECT status, count(*) AS n FROM workflow_states WHERE step_name = %s GROUP BY 1",
        COMPANY_STEP,
    )
    assert states == [{"status": "COMPLETED", "n": 80}]
    assert _one(dbs, "SELECT count(*) FROM company_enrichment_results") == 10
    assert _one(dbs, "SELECT count(*) FROM entity_dispatches") == 10


def _callback(base: str, slug: str, secret: str, body: Any) -> requests.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(
        f"{base}/receivers/{slug}",
        data=raw,
        timeout=10,
        headers={"x-callback-secret": secret, "content-type": "application/json"},
    )


def test_duplicate_forged_unknown_and_malformed_callbacks(
    dbs: Databases, local_settings: Settings
) -> None:
    with LocalService(
        local_settings, dbs, simulator=SimulatorConfig(duplicate_rate=1.0)
    ) as service:
        batch = upload(dbs, SEED_SCENARIO, "apollo-lead-enrichment").batch_id
        service.runtime.run_batch(batch, timeout=60)
        assert service.simulator is not None and service.simulator.wait_idle(30)
        sim_statuses = service.simulator.callback_statuses
        base, secret = service.server.url, service.runtime.receiver_config.callback_secret
        assert secret is not None
        dispatch = _all(
            dbs,
            "SELECT id, entity_id, attempt FROM entity_dispatches"
            " WHERE entity_type = 'company' LIMIT 1",
        )[0]
        token = sign(
            service.runtime.signing_key,
            dispatch["id"],
            dispatch["entity_id"],
            COMPANY_STEP,
            dispatch["attempt"],
        )
        valid = {
            "entity_id": str(dispatch["entity_id"]),
            "callback_token": token,
            "data": {"name": "Replayed"},
        }
        before = _one(dbs, "SELECT count(*) FROM company_enrichment_results")
        replays = [_callback(base, COMPANY_STEP, secret, valid).status_code for _ in range(3)]
        forged = _callback(
            base, COMPANY_STEP, secret, {**valid, "callback_token": token[:-4] + "beef"}
        )
        unknown = _callback(base, COMPANY_STEP, secret, {**valid, "entity_id": str(uuid.uuid4())})
        malformed = _callback(base, COMPANY_STEP, secret, b"{not json")
        no_secret = _callback(base, COMPANY_STEP, "wrong", valid)

    # The simulator sent every callback two or three times: all answered 200, stored once.
    assert set(sim_statuses) == {200} and sum(sim_statuses.values()) >= 2 * 9
    assert _one(dbs, "SELECT count(*) FROM company_enrichment_results") == before == 3
    assert _one(dbs, "SELECT count(*) FROM person_enrichment_results") == 6
    assert replays == [200, 200, 200]
    assert (forged.status_code, unknown.status_code, malformed.status_code) == (401, 404, 422)
    assert no_secret.status_code == 401
    letters = _all(
        dbs, "SELECT http_status, reason, headers FROM receiver_dead_letters ORDER BY id"
    )
    assert [d["http_status"] for d in letters] == [401, 404, 422, 401]
    assert all("x-callback-secret" not in d["headers"] for d in letters)
    assert secret not in json.dumps(letters)


def test_work_history_is_projected_and_answers_the_dashboard_question(
    dbs: Databases, local_settings: Settings
) -> None:
    with LocalService(local_settings, dbs) as service:
        batch = upload(dbs, apollo_csv(300, 40, seed=11), "apollo-lead-enrichment").batch_id
        service.runtime.run_batch(batch, timeout=120)

    stored = _all(dbs, "SELECT person_id, data FROM person_enrichment_results")
    expected_jobs = {
        (r["person_id"], i + 1, job["company"], job["title"])
        for r in stored
        for i, job in enumerate(r["data"]["work_history"])
    }
    projected = {
        (r["person_id"], r["position"], r["company_name"], r["title"])
        for r in _all(
            dbs, "SELECT person_id, position, company_name, title FROM person_work_history"
        )
    }
    assert expected_jobs and projected == expected_jobs

    customers = sorted({job[2] for job in expected_jobs})[:5]
    with dbs.hq.connection() as conn:
        # The seed's query reads client_customers.name, as the table the migrations make has it.
        conn.cursor().executemany(
            "INSERT INTO client_customers (client_name, name, name_key)"
            " VALUES ('default', %s, company_name_key(%s))",
            [(c, c) for c in customers],
        )
    answer = _all(
        dbs,
        """
        SELECT DISTINCT fl.full_name, pwh.company_name
        FROM batch_items bi
        JOIN person_work_history pwh ON pwh.person_id = bi.person_id
        JOIN final_leads fl ON fl.person_id = bi.person_id
        WHERE pwh.company_name IN (SELECT name FROM client_customers)
          AND NOT pwh.is_current
    """,
    )
    names = {r["person_id"]: r["data"]["full_name"] for r in stored}
    expected = {
        (names[r["person_id"]], job["company"])
        for r in stored
        for job in r["data"]["work_history"]
        if job["company"] in customers and not job["is_current"]
    }
    assert expected and {(a["full_name"], a["company_name"]) for a in answer} == expected


def test_consolidation_replay_gives_the_same_rows(
    dbs: Databases, db_urls: DatabasePair, local_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LocalService(local_settings, dbs) as service:
        batch = upload(dbs, apollo_csv(120, 20, seed=5), "apollo-lead-enrichment").batch_id
        service.runtime.run_batch(batch, timeout=120)
    query = (
        "SELECT * FROM final_leads ORDER BY person_id",
        "SELECT * FROM person_work_history ORDER BY id",
    )
    strip = lambda rows: [{k: v for k, v in r.items() if k != "consolidated_at"} for r in rows]  # noqa: E731
    before = [strip(_all(dbs, q)) for q in query]
    monkeypatch.setenv("DATABASE_URL", db_urls.urls.hq)
    monkeypatch.setenv("WORKSPACE_DATABASE_URL", db_urls.urls.workspace)
    get_settings.cache_clear()
    try:
        replay = CliRunner().invoke(app, ["consolidate", str(batch)])
        out = Path(local_settings.enrich_home) / "leads.csv"
        exported = CliRunner().invoke(app, ["export", str(batch), "-o", str(out)])
    finally:
        get_settings.cache_clear()
    assert replay.exit_code == 0 and exported.exit_code == 0
    assert [strip(_all(dbs, q)) for q in query] == before
    assert len(out.read_text().splitlines()) == len(before[0]) + 1
