"""Forged, replayed and unauthenticated callbacks change nothing; the API needs its key;
no secret reaches a log line, an error or a dead letter; hostile registry rows are refused."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
import requests

from orchestrator.callbacks.tokens import sign
from orchestrator.db.pool import Databases
from orchestrator.engine.sweeper import sweep
from orchestrator.providers.simulators.clay import SimulatorConfig
from orchestrator.runtimes.service import LocalService
from orchestrator.settings import Settings
from orchestrator.state.registry import RegistryError, parse_workflow
from support.faults import rows, scalar, set_leases, wait_until
from support.pipeline import add_play, apollo_csv, table_counts, upload
from test_clay_enrichment import SEED_SCENARIO

COMPANY_STEP = "enrich_company_via_waterfall_in_clay"


def _post(url: str, headers: dict[str, str], body: dict[str, Any]) -> requests.Response:
    return requests.post(url, data=json.dumps(body), headers=headers, timeout=10)


def test_forged_replayed_and_unauthenticated_callbacks_get_401_and_change_nothing(
    dbs: Databases, local_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    set_leases(dbs, seconds=1)
    # Clay never answers: every company stays in flight until its lease expires.
    with LocalService(local_settings, dbs, simulator=SimulatorConfig(drop_rate=1.0)) as service:
        batch = upload(dbs, SEED_SCENARIO, "apollo-lead-enrichment").batch_id
        service.runtime.trigger.request(batch)
        wait_until(lambda: scalar(dbs, "SELECT count(*) FROM entity_dispatches") == 3)
        first = rows(dbs, "SELECT id, entity_id, attempt FROM entity_dispatches LIMIT 1")[0]
        key, config = service.runtime.signing_key, service.runtime.receiver_config
        old_token = sign(key, first["id"], first["entity_id"], COMPANY_STEP, first["attempt"])
        # The lease expires, the sweeper re-sends: attempt 2 gets a new dispatch and token.
        wait_until(lambda: sweep(dbs, service.runtime.trigger).changed, timeout=30)
        wait_until(
            lambda: (
                scalar(
                    dbs,
                    "SELECT count(*) FROM entity_dispatches WHERE entity_id = %s AND attempt = 2",
                    first["entity_id"],
                )
                == 1
            ),
            timeout=30,
        )
        second = rows(
            dbs,
            "SELECT id, attempt FROM entity_dispatches WHERE entity_id = %s AND attempt = 2",
            first["entity_id"],
        )[0]
        new_token = sign(key, second["id"], first["entity_id"], COMPANY_STEP, 2)
        url = f"{service.server.url}/receivers/{COMPANY_STEP}"
        assert config.callback_secret is not None
        good = {config.secret_header: config.callback_secret, "content-type": "application/json"}
        body = {"entity_id": str(first["entity_id"]), "data": {"name": "Forged Inc"}}
        before = table_counts(dbs)
        answers = {
            "replayed from attempt 1": _post(url, good, {**body, "callback_token": old_token}),
            "forged signature": _post(
                url, good, {**body, "callback_token": new_token[:-6] + "abcdef"}
            ),
            "token of another entity": _post(
                url,
                good,
                {
                    **body,
                    "entity_id": str(
                        rows(
                            dbs,
                            "SELECT id FROM normalized_companies WHERE id <> %s LIMIT 1",
                            first["entity_id"],
                        )[0]["id"]
                    ),
                    "callback_token": new_token,
                },
            ),
            "no secret header": _post(
                url, {"content-type": "application/json"}, {**body, "callback_token": new_token}
            ),
            "wrong secret header": _post(
                url, {**good, config.secret_header: "guess"}, {**body, "callback_token": new_token}
            ),
            "malformed token": _post(url, good, {**body, "callback_token": f"{second['id']}.2"}),
        }
        after = table_counts(dbs)
        accepted = _post(url, good, {**body, "callback_token": new_token})
        secrets_in_play = [
            config.callback_secret,
            key.hex(),
            service.runtime.api_key,
            "simulator-webhook-token",
        ]

    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 401)
    changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
    assert changed == {
        "receiver_dead_letters": (
            before["receiver_dead_letters"],
            before["receiver_dead_letters"] + 6,
        )
    }
    assert accepted.status_code == 200 and accepted.json()["status"] == "stored"
    assert "malformed" in answers["malformed token"].json()["error"]
    letters = json.dumps(rows(dbs, "SELECT * FROM receiver_dead_letters"), default=str)
    responses = " ".join(r.text for r in answers.values())
    for secret in secrets_in_play:
        assert secret not in caplog.text and secret not in letters and secret not in responses


def test_upload_and_status_need_the_api_key(dbs: Databases, local_settings: Settings) -> None:
    with LocalService(local_settings, dbs, simulator=SimulatorConfig()) as service:
        base, key = service.server.url, service.runtime.api_key
        files = {"file": ("leads.csv", apollo_csv(20, 5), "text/csv")}
        refused = requests.post(f"{base}/batches", files=files, timeout=30)
        wrong = requests.post(
            f"{base}/batches", files=files, headers={"x-api-key": "x"}, timeout=30
        )
        created = requests.post(
            f"{base}/batches", files=files, headers={"x-api-key": key}, timeout=30
        )
        batch = created.json()["batch_id"]
        status_refused = requests.get(f"{base}/batches/{batch}", timeout=10)
        status_ok = requests.get(f"{base}/batches/{batch}", headers={"x-api-key": key}, timeout=10)
    assert (refused.status_code, wrong.status_code, created.status_code) == (401, 401, 201)
    assert (status_refused.status_code, status_ok.status_code) == (401, 200)
    body = status_ok.json()
    assert list(body)[:7] == ["batch_id", "status", "items", "companies", "people", "completed",
                              "failed"]  # fmt: skip
    assert {"steps", "top_failure_reasons"} <= set(body) and body["batch_id"] == batch
    assert key not in refused.text + wrong.text
    assert scalar(dbs, "SELECT count(*) FROM upload_batches") == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("destination_table_name", "x; DROP TABLE batch_items"),
        ("destination_table_name", 'leads"; DELETE FROM final_leads; --'),
        ("destination_field_mappings", {"html": "homepage_html; DROP TABLE batch_items"}),
        ("destination_field_mappings", {"html": "Robert'); --"}),
        ("workflow_slug", "../../etc/passwd"),
    ],
)
def test_hostile_registry_configuration_is_refused_with_a_clear_error(
    dbs: Databases, field: str, value: object
) -> None:
    with dbs.hq.connection() as conn:
        row = dict(
            conn.execute(
                "SELECT * FROM db_driven_enrichment_workflows WHERE workflow_slug = 'split'"
            ).fetchone()
            or {}
        )
    row[field] = value
    with pytest.raises(RegistryError, match=f"invalid configuration: {field}"):
        parse_workflow(row)
    assert scalar(dbs, "SELECT to_regclass('batch_items') IS NOT NULL")


# What a replay must leave exactly as it was: the entity, its result, the log, the play step
# completions, the items and the dispatches.
REPLAY_TABLES = (
    "company_workflow_states",
    "company_enrichment_results",
    "enrichment_results_log",
    "company_play_step_completions",
    "workflow_states",
    "entity_dispatches",
)


def _contents(dbs: Databases) -> dict[str, Any]:
    tables = {t: rows(dbs, f"SELECT * FROM {t} ORDER BY id") for t in REPLAY_TABLES}
    return {"counts": table_counts(dbs), **tables}


def _settled(dbs: Databases) -> dict[str, Any]:
    """The tables once background passes stopped changing them (a replay's pass included)."""
    last = _contents(dbs)
    for _ in range(50):
        time.sleep(0.2)
        now = _contents(dbs)
        if now == last:
            return now
        last = now
    raise TimeoutError("the tables kept changing")


def test_a_replayed_callback_of_a_finished_dispatch_is_a_duplicate_and_changes_nothing(
    dbs: Databases, local_settings: Settings
) -> None:
    add_play(dbs, "companies", ["normalize_all_core_values", "split", COMPANY_STEP])
    # Clay never answers: the test answers each dispatch itself.
    with LocalService(local_settings, dbs, simulator=SimulatorConfig(drop_rate=1.0)) as service:
        batch = upload(dbs, SEED_SCENARIO, "companies").batch_id
        service.runtime.trigger.request(batch)
        wait_until(lambda: scalar(dbs, "SELECT count(*) FROM entity_dispatches") == 3)
        dispatches = rows(dbs, "SELECT id, entity_id, attempt FROM entity_dispatches ORDER BY id")
        key, config = service.runtime.signing_key, service.runtime.receiver_config
        assert config.callback_secret is not None
        url = f"{service.server.url}/receivers/{COMPANY_STEP}"
        headers = {config.secret_header: config.callback_secret}

        def answer(dispatch: dict[str, Any], outcome: dict[str, Any]) -> requests.Response:
            token = sign(key, dispatch["id"], dispatch["entity_id"], COMPANY_STEP, 1)
            body = {"entity_id": str(dispatch["entity_id"]), "callback_token": token}
            return _post(url, headers, {**body, **outcome})

        success, error = {"data": {"name": "Acme"}}, {"error": "Clay: no match"}
        completed, failed = dispatches[0], dispatches[1]
        assert answer(completed, success).json() == {"status": "stored"}
        assert answer(failed, error).json()["status"] == "failed"
        wait_until(
            lambda: (
                scalar(
                    dbs,
                    "SELECT status FROM company_workflow_states WHERE company_id = %s",
                    completed["entity_id"],
                )
                == "COMPLETED"
            )
        )
        replays = {
            "success of COMPLETED": (completed, success),
            "error of COMPLETED": (completed, error),
            "success of FAILED": (failed, success),
            "error of FAILED": (failed, error),
        }
        answers, changed = {}, {}
        for name, (dispatch, outcome) in replays.items():
            before = _settled(dbs)
            reply = answer(dispatch, outcome)
            after = _settled(dbs)
            answers[name] = (reply.status_code, reply.json())
            changed[name] = sorted(t for t in before if before[t] != after[t])

    assert answers == dict.fromkeys(replays, (200, {"status": "duplicate"}))
    assert changed == {name: [] for name in replays}
    states = rows(dbs, "SELECT company_id, status FROM company_workflow_states")
    assert {s["company_id"]: s["status"] for s in states} == {
        completed["entity_id"]: "COMPLETED",
        failed["entity_id"]: "FAILED",
        dispatches[2]["entity_id"]: "IN_PROGRESS",
    }
