"""Forged, replayed and unauthenticated callbacks change nothing; the API needs its key;
no secret reaches a log line, an error or a dead letter; hostile registry rows are refused."""

from __future__ import annotations

import json
import logging
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
from support.pipeline import apollo_csv, table_counts, upload
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
            before["receiver_dead_letters"] + 5,
        )
    }
    assert accepted.status_code == 200 and accepted.json()["status"] == "stored"
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
