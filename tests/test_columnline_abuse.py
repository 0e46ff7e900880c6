"""The V2 dossier API against what a careless or hostile caller sends: numbers Python cannot
read, bodies that are cheap to send and dear to store, dropped connections, huge reasons.
Over real HTTP, checked in Postgres."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from orchestrator.columnline import fields
from orchestrator.db.pool import Databases
from orchestrator.web import columnline_http
from test_columnline_api import Api, api, contact, fetch, server, set_up_config, start_run, step
from test_columnline_retries import raw

__all__ = ["api", "server"]  # fixtures


def test_numbers_python_cannot_read_are_422_not_500(api: Api) -> None:
    set_up_config(api)
    run_id = start_run(api)
    bodies = {
        "a 5,000-digit integer": '{"client_slug": "acme", "target_company": "X", "input": {"n": '
        + "9" * 5000
        + "}}",
        "a number out of range": (
            f'{{"run_id": "{run_id}", "stage": "s", "step_name": "x", "output": 1e400}}'
        ),
        "NaN": f'{{"run_id": "{run_id}", "stage": "s", "step_name": "x", "output": NaN}}',
    }
    for what, body in bodies.items():
        path = "/runs" if "client_slug" in body else "/steps"
        response = raw(api, path, body)
        assert response.status_code == 422, (what, response.text[:300])
        message = response.json()["detail"][0]["msg"]
        assert (
            ("digits" in message) if "integer" in what else ("range" in message or "NaN" in message)
        )
    duplicated = f'{{"run_id": "{run_id}", "stage": "s", "step_name": "a", "step_name": "b"}}'
    response = raw(api, "/steps", duplicated)
    assert response.status_code == 422 and "'step_name' appears twice" in response.text


def test_everything_a_run_stores_counts_toward_its_budget(api: Api, dbs: Databases) -> None:
    set_up_config(api)
    run_id = start_run(api)
    long = {"stage": "s" * 200, "step_name": "n" * 500, "model": "m" * 2000, "prompt_key": "k"}
    api.call("POST", "/steps", {"run_id": run_id, **long}, expect=201)
    api.call("POST", "/stages/start", {"run_id": run_id, "stage": "t" * 200}, expect=201)
    stored = fetch(dbs, "SELECT stored_bytes FROM v2_runs WHERE id = %s", run_id)[0]
    assert stored["stored_bytes"] >= 200 + 500 + 2000 + 200


def test_contacts_keep_the_order_they_were_sent_in(api: Api, dbs: Databases) -> None:
    set_up_config(api)
    run_id = start_run(api)
    names = [f"Person {i:02}" for i in range(50)]
    people = {"run_id": run_id, "contacts": [contact(n) for n in names]}
    api.call("POST", "/contacts", people, expect=201)
    run = api.call("GET", f"/runs/{run_id}")
    assert [c["full_name"] for c in run["contacts"]] == names
    api.call("POST", "/stages/start", {"run_id": run_id, "stage": "research"}, expect=201)
    api.call("POST", "/stages/complete", {"run_id": run_id, "stage": "research"}, expect=201)
    dossier = api.call("POST", "/publish", {"run_id": run_id}, expect=201)["dossier_id"]
    published = fetch(
        dbs, "SELECT full_name FROM contacts WHERE dossier_id = %s ORDER BY position", dossier
    )
    assert [c["full_name"] for c in published] == names


def test_long_reasons_and_errors_stay_out_of_lists_and_light_reads(api: Api) -> None:
    set_up_config(api)
    reason = "r" * 1_000_000
    for _ in range(3):
        run_id = start_run(api)
        api.call(
            "POST", "/steps", step(run_id, "research", "x", None, error="e" * 500_000), expect=201
        )
        api.call("POST", "/runs/end", {"run_id": run_id, "status": "failed", "reason": reason})
    listed = api.request("GET", "/runs")
    assert listed.status_code == 200 and len(listed.content) < 20_000
    light = api.request("GET", f"/runs/{run_id}?outputs=false")
    assert len(light.content) < 20_000
    assert api.call("GET", f"/runs/{run_id}")["end_reason"] == reason  # the full read keeps it
    refused = api.request("POST", "/steps", step(run_id, "research", "late", {"x": 1}))
    assert refused.status_code == 409 and len(refused.content) < 5_000


def test_a_refusal_does_not_echo_a_huge_input(api: Api) -> None:
    set_up_config(api)
    run_id = start_run(api)
    body = {"run_id": run_id, "stage": "s", "output": ["x" * 100] * 50_000}  # no step_name
    response = api.request("POST", "/steps", body)
    assert response.status_code == 422 and len(response.content) < 20_000
    assert response.json()["detail"][0]["loc"] == ["body", "step_name"]
    response = api.request("POST", "/steps", {**body, "step_name": "x", "typo": "y" * 5_000_000})
    assert response.status_code == 422 and len(response.content) < 20_000


def test_a_client_that_drops_mid_body_leaves_no_error(api: Api, server: str, caplog: Any) -> None:
    address = urlsplit(server)
    for _ in range(3):
        with socket.create_connection((address.hostname, address.port)) as sock:
            sock.sendall(
                b"POST /api/columnline/steps HTTP/1.1\r\nhost: x\r\nx-api-key: "
                + api.session.headers["x-api-key"].encode()
                + b'\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"run_id":'
            )
    time.sleep(0.5)
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text[:2000]


def test_a_body_is_parsed_and_checked_once_off_the_event_loop(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parsing and checking a 10 MiB body takes seconds: on the event loop it held up every
    other request, and the models walked each JSON document a second time there."""
    set_up_config(api)
    run_id = start_run(api)
    seen: list[bool] = []
    parse, check = columnline_http._parse, columnline_http.json_problem

    def watched_parse(raw: bytes) -> Any:
        try:
            asyncio.get_running_loop()
            seen.append(True)
        except RuntimeError:
            seen.append(False)
        return parse(raw)

    def counted_check(value: Any, max_depth: int = 64) -> Any:
        checks.append(value)
        return check(value, max_depth)

    checks: list[Any] = []
    monkeypatch.setattr(columnline_http, "_parse", watched_parse)
    monkeypatch.setattr(columnline_http, "json_problem", counted_check)
    monkeypatch.setattr(fields, "json_problem", counted_check)
    api.call("POST", "/steps", step(run_id, "s", "x", [[0]] * 1000), expect=201)
    assert seen == [False], "the body was parsed on the event loop"
    assert len(checks) == 1, f"the body's JSON was checked {len(checks)} times"


def test_query_parameters_follow_the_empty_value_rule(api: Api) -> None:
    set_up_config(api)
    run_id = start_run(api)
    assert api.call("GET", "/runs?limit=") == api.call("GET", "/runs")
    assert api.call("GET", f"/runs/{run_id}?outputs=")["outputs_included"] is True
    for flag in ("yes", "1"):
        assert api.request("GET", f"/runs?stale={flag}").status_code == 422
    response = api.request("GET", "/runs", params={"client_slug": "a\x00b"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"][0] == "query"


def test_a_failed_end_without_a_reason_names_the_field(api: Api) -> None:
    set_up_config(api)
    run_id = start_run(api)
    response = api.request("POST", "/runs/end", {"run_id": run_id, "status": "failed"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "reason"]


def test_compressed_bodies_are_415_naming_the_header(api: Api) -> None:
    set_up_config(api)
    response = raw(api, "/runs", b"\x1f\x8b\x08\x00", **{"content-encoding": "gzip"})
    assert response.status_code == 415 and "Content-Encoding" in response.text


def test_counters_are_whole_numbers(api: Api) -> None:
    set_up_config(api)
    run_id = start_run(api)
    base = {"run_id": run_id, "stage": "s", "step_name": "x"}
    for bad in ("120", "1_000", "12.0", "12,5", 1.5):
        response = api.request("POST", "/steps", {**base, "tokens_in": bad})
        assert response.status_code == 422, bad
    for good in (120, 120.0):
        api.call("POST", "/steps", {**base, "tokens_in": good}, expect=201)


def test_numbers_postgres_would_write_out_digit_by_digit_are_refused(api: Api) -> None:
    """Postgres keeps JSON numbers as decimals: 1e308 is 16 bytes stored and 309 digits read."""
    set_up_config(api)
    run_id = start_run(api)
    base = {"run_id": run_id, "stage": "s", "step_name": "x"}
    for number in ("1e308", "-1e40", "1e-300", "[1, 2.5e-45]"):
        response = raw(
            api,
            "/steps",
            f'{{"run_id": "{run_id}", "stage": "s", "step_name": "x", "output": {number}}}',
        )
        assert response.status_code == 422, (number, response.text[:300])
        assert "digit" in response.json()["detail"][0]["msg"], number
    for fine in (6.02e23, -1.5e-12, 0.0, 1e29):
        api.call("POST", "/steps", {**base, "output": fine}, expect=201)


def test_the_budget_counts_text_as_postgres_writes_it(api: Api, dbs: Databases) -> None:
    set_up_config(api)
    run_id = start_run(api)
    controls = "\u0001" * 100_000  # one byte each stored, six (\u0001) each when read as JSON
    api.call("POST", "/steps", step(run_id, "s", "x", {"t": controls}), expect=201)
    stored = fetch(dbs, "SELECT stored_bytes FROM v2_runs WHERE id = %s", run_id)[0]
    assert stored["stored_bytes"] >= 600_000


def test_a_run_at_its_budget_can_still_close_its_stages_and_publish(
    api: Api, dbs: Databases
) -> None:
    set_up_config(api)
    run_id = start_run(api)
    api.call("POST", "/stages/start", {"run_id": run_id, "stage": "sections"}, expect=201)
    api.call("POST", "/steps", step(run_id, "sections", "overview", {"text": "t"}), expect=201)
    with dbs.hq.connection() as conn:
        conn.execute(
            "UPDATE v2_runs SET stored_bytes = 100 * 1024 * 1024 - 50 WHERE id = %s", (run_id,)
        )
    refused = api.request("POST", "/steps", step(run_id, "sections", "more", {"text": "t"}))
    assert refused.status_code == 413
    too_big = api.request(
        "POST", "/stages/complete", {"run_id": run_id, "stage": "sections", "output": {"a": 1}}
    )
    assert too_big.status_code == 413 and "stage output" in too_big.text
    api.call("POST", "/stages/complete", {"run_id": run_id, "stage": "sections"}, expect=201)
    assert api.call("POST", "/publish", {"run_id": run_id}, expect=201)["sections"] == ["overview"]


def test_a_light_read_leaves_the_run_input_out_and_the_input_counts(
    api: Api, dbs: Databases
) -> None:
    set_up_config(api)
    body = {"client_slug": "acme", "target_company": "X", "input": {"doc": "d" * 300_000}}
    run_id = api.call("POST", "/runs", body, expect=201)["run_id"]
    light = api.request("GET", f"/runs/{run_id}?outputs=false")
    assert len(light.content) < 5_000 and light.json()["input"] == {}
    stored = fetch(dbs, "SELECT stored_bytes FROM v2_runs WHERE id = %s", run_id)[0]
    assert stored["stored_bytes"] >= 300_000


def test_ending_again_with_the_same_status_answers_the_first_end(api: Api) -> None:
    set_up_config(api)
    run_id = start_run(api)
    first = api.call("POST", "/runs/end", {"run_id": run_id, "status": "failed", "reason": "429"})
    again = {"run_id": run_id, "status": "failed", "reason": "timeout on retry"}
    assert api.call("POST", "/runs/end", again) == first
    other = api.error("POST", "/runs/end", {"run_id": run_id, "status": "completed"}, expect=409)
    assert other["error"] == "run_ended"
    assert "was ended as failed (429)" in other["message"] and "completed" in other["message"]
    done = start_run(api, "Done Co")
    ended = api.call("POST", "/runs/end", {"run_id": done, "status": "completed", "reason": "x"})
    assert api.call("POST", "/runs/end", {"run_id": done, "status": "completed"}) == ended


def test_refusals_read_well(api: Api) -> None:
    set_up_config(api)
    detail = api.error("DELETE", "/clients/acme/section-definitions/nothing", expect=404)
    assert detail["message"] == "client 'acme' has no section definition 'nothing'"
    detail = api.error("DELETE", "/section-definitions/nothing", expect=404)
    assert detail["message"] == "there is no shared section definition 'nothing'"


def test_query_counters_and_choices_follow_the_body_rules(api: Api) -> None:
    set_up_config(api)
    start_run(api)
    for bad in ("1_000", "10.0", "true"):
        assert api.request("GET", f"/runs?limit={bad}").status_code == 422, bad
    assert api.call("GET", "/runs?status=%20running%20") == api.call("GET", "/runs?status=running")


def test_names_are_trimmed_so_a_stray_space_is_the_same_stage(api: Api, dbs: Databases) -> None:
    set_up_config(api)
    run_id = start_run(api)
    api.call("POST", "/stages/start", {"run_id": run_id, "stage": " research "}, expect=201)
    api.call("POST", "/stages/complete", {"run_id": run_id, "stage": "research"}, expect=201)
    stages = fetch(dbs, "SELECT DISTINCT stage FROM v2_pipeline_logs WHERE run_id = %s", run_id)
    assert stages == [{"stage": "research"}]


def test_the_schema_says_what_counters_and_flags_take(api: Api) -> None:
    schema = requests.get(api.base_url.rsplit("/api/", 1)[0] + "/openapi.json", timeout=30).json()
    step_log = schema["components"]["schemas"]["StepLog"]["properties"]["tokens_in"]
    assert {"type": "integer", "minimum": 0, "maximum": 2**31 - 1} in step_log["anyOf"][0]["anyOf"]
    flag = schema["components"]["schemas"]["PromptIn"]["properties"]["is_active"]
    assert {"enum": ["true", "false"]} in flag["anyOf"][0]["anyOf"]
