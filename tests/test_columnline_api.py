"""The V2 dossier API over real HTTP, called the way Make.com does, checked in Postgres."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from fastapi import FastAPI
from pydantic import SecretStr

from orchestrator.callbacks.receive import ReceiverConfig
from orchestrator.db.pool import Databases
from orchestrator.engine.context import NoTrigger
from orchestrator.runtimes.service import ReceiverServer
from orchestrator.settings import Settings
from orchestrator.web.app import create_app
from orchestrator.web.columnline_routes import PREFIX

API_KEY = "columnline-test-key"
V2_TABLES = (
    "v2_clients",
    "v2_prompts",
    "v2_section_definitions",
    "v2_runs",
    "v2_pipeline_logs",
    "v2_contacts",
    "dossier_batches",
    "dossiers",
    "contacts",
    "v2_idempotency_keys",
)
STAGES = ("research", "claims", "sections")
SECTIONS = {  # section_key -> (title, position)
    "overview": ("Company overview", 1),
    "signals": ("Buying signals", 2),
    "people": ("Key people", 3),
    "next_steps": ("Next steps", 4),
    "appendix": ("Appendix", 5),  # no step writes it: published as missing
}


@dataclass
class ApiRuntime:
    """What create_app needs; the columnline routes only use dbs and the API key."""

    dbs: Databases
    settings: Settings
    api_key: str
    trigger: NoTrigger
    receiver_config: ReceiverConfig


def columnline_app(dbs: Databases) -> FastAPI:
    runtime = ApiRuntime(
        dbs=dbs,
        settings=Settings(api_key=SecretStr(API_KEY)),
        api_key=API_KEY,
        trigger=NoTrigger(),
        receiver_config=ReceiverConfig(b"k" * 32, "secret"),
    )
    app = create_app(lambda: runtime)
    app.state.runtime = runtime
    return app


class Api:
    """A Make.com scenario's HTTP modules: JSON in, JSON out, status checked."""

    def __init__(self, base_url: str, api_key: str | None = API_KEY) -> None:
        self.base_url = base_url + PREFIX
        self.session = requests.Session()
        if api_key is not None:
            self.session.headers["x-api-key"] = api_key

    def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.base_url + path, json=body, timeout=30, **kwargs)

    def call(self, method: str, path: str, body: Any = None, *, expect: int = 200) -> Any:
        response = self.request(method, path, body)
        assert response.status_code == expect, f"{method} {path}: {response.text}"
        return response.json()

    def error(self, method: str, path: str, body: Any = None, *, expect: int) -> dict[str, Any]:
        detail: dict[str, Any] = self.call(method, path, body, expect=expect)["detail"]
        return detail


def wait_until_serving(url: str, timeout: float = 15) -> None:
    # ReceiverServer binds at once but uvicorn listens a moment later, in its thread.
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(url + "/openapi.json", timeout=5)
            return
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@pytest.fixture
def server(dbs: Databases) -> Iterator[str]:
    server = ReceiverServer().serve(columnline_app(dbs))
    try:
        wait_until_serving(server.url)
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def api(server: str) -> Api:
    return Api(server)


def fetch(dbs: Databases, sql: str, *params: Any) -> list[dict[str, Any]]:
    with dbs.hq.connection() as conn:
        return [dict(r) for r in conn.execute(sql, params).fetchall()]


def table_counts(dbs: Databases) -> dict[str, int]:
    union = " UNION ALL ".join(f"SELECT '{t}' AS t, count(*) AS n FROM {t}" for t in V2_TABLES)
    return {r["t"]: r["n"] for r in fetch(dbs, union)}


def set_up_config(api: Api) -> None:
    api.call("PUT", "/clients/acme", {"name": "Acme Robotics", "icp": {"employees": "200+"}})
    for stage in STAGES:
        prompt = {"stage": stage, "step_name": f"{stage}_step", "template": f"Do {stage}"}
        api.call("PUT", f"/prompts/{stage}.main", prompt)
    for key, (title, position) in SECTIONS.items():
        api.call(
            "PUT",
            f"/section-definitions/{key}",
            {"title": title, "position": position, "stage": "sections"},
        )


def start_run(api: Api, company: str = "Globex") -> str:
    body = {"client_slug": "acme", "target_company": company, "target_domain": "globex.com"}
    run_id: str = api.call("POST", "/runs", body, expect=201)["run_id"]
    return run_id


def step(run_id: str, stage: str, step_name: str, output: Any, **extra: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "stage": stage,
        "step_name": step_name,
        "prompt_key": f"{stage}.main",
        "prompt": f"Prompt for {step_name}",
        "input": {"company": "Globex"},
        "output": output,
        "model": "gpt-4.1",
        "tokens_in": 100,
        "tokens_out": 10,
        "duration_ms": 1500,
        **extra,
    }


def contact(name: str) -> dict[str, Any]:
    slug = name.lower().replace(" ", "-")
    return {
        "full_name": name,
        "title": "VP",
        "email": f"{slug}@globex.com",
        "linkedin_url": f"https://www.linkedin.com/in/{slug}",
        "data": {"seniority": "vp"},
    }


def run_stage(api: Api, run_id: str, stage: str, steps: list[dict[str, Any]], output: Any) -> None:
    api.call("POST", "/stages/start", {"run_id": run_id, "stage": stage}, expect=201)
    for body in steps:
        api.call("POST", "/steps", body, expect=201)
    complete = {"run_id": run_id, "stage": stage, "output": output}
    api.call("POST", "/stages/complete", complete, expect=201)


def finished_run(api: Api, company: str = "Globex", contacts: int = 3) -> str:
    """A run with one completed stage, two steps and some contacts: ready to publish."""
    run_id = start_run(api, company)
    steps = [step(run_id, "research", "overview", {"text": f"{company} overview"})]
    steps.append(step(run_id, "research", "extract_claims", {"claims": ["a"]}))
    run_stage(api, run_id, "research", steps, {"claims": ["a"]})
    people = [contact(f"Person {i}") for i in range(contacts)]
    api.call("POST", "/contacts", {"run_id": run_id, "contacts": people}, expect=201)
    return run_id


# --- the full scenario ---------------------------------------------------------------------


def scenario_steps(run_id: str) -> dict[str, list[dict[str, Any]]]:
    """30 steps: 10 claim extractions, 8 merges, 12 section writers and reviews."""
    research = [
        step(
            run_id, "research", f"extract_claims_{i}", {"claims": [f"claim {i}.a", f"claim {i}.b"]}
        )
        for i in range(10)
    ]
    claims = [
        step(run_id, "claims", f"merge_claims_{i}", {"merged_claims": [f"merged {i}"]})
        for i in range(8)
    ]
    sections = [
        step(run_id, "sections", "overview", None, status="error", error="model timed out"),
        step(run_id, "sections", "overview", {"text": "draft overview"}),
        step(run_id, "sections", "overview", {"text": "final overview"}),
        step(run_id, "sections", "signals", {"signals": ["hiring ops leads"]}),
        step(run_id, "sections", "people", {"people": ["Ada Lovelace"]}),
        step(run_id, "sections", "next_steps", {"text": "Call Ada"}),
        *(step(run_id, "sections", f"review_{i}", {"ok": True}) for i in range(6)),
    ]
    return {"research": research, "claims": claims, "sections": sections}


STAGE_OUTPUTS: dict[str, Any] = {
    "research": {"claims": [f"claim {i}.{x}" for i in range(10) for x in "ab"]},
    "claims": {
        "merged_claims": [f"merged {i}" for i in range(8)],
        "context_pack": {"company": "Globex", "themes": ["automation"]},
    },
    "sections": {"sections_written": ["overview", "signals", "people", "next_steps"]},
}


def test_full_run_over_http_is_stored_and_published(api: Api, dbs: Databases) -> None:
    set_up_config(api)
    assert api.call("GET", "/clients/acme")["icp"] == {"employees": "200+"}
    assert [p["prompt_key"] for p in api.call("GET", "/prompts?stage=claims")] == ["claims.main"]
    listed = api.call("GET", "/section-definitions")
    assert [s["section_key"] for s in listed] == list(SECTIONS)

    run_id = start_run(api)
    for stage, steps in scenario_steps(run_id).items():
        run_stage(api, run_id, stage, steps, STAGE_OUTPUTS[stage])
    people = [contact(n) for n in ("Ada Lovelace", "Grace Hopper", "Alan Turing")]
    added = api.call("POST", "/contacts", {"run_id": run_id, "contacts": people[:2]}, expect=201)
    api.call("POST", "/contacts", {"run_id": run_id, "contacts": people[2:]}, expect=201)
    assert len(added["contact_ids"]) == 2

    before = api.call("GET", f"/runs/{run_id}")
    assert before["status"] == "running" and before["current_stage"] == "sections"
    assert [log["id"] for log in before["logs"]] == sorted(log["id"] for log in before["logs"])
    assert before["logs"][0]["event_type"] == "stage_start"
    assert before["logs"][-1]["event_type"] == "stage_complete"
    assert len(before["contacts"]) == 3 and before["dossier_id"] is None

    published = api.call(
        "POST", "/publish", {"run_id": run_id, "dossier_batch": "2026-W03"}, expect=201
    )
    assert published["already_published"] is False
    assert published["sections"] == ["overview", "signals", "people", "next_steps"]
    assert published["missing_sections"] == ["appendix"]
    assert published["stages"] == list(STAGES)
    assert published["contacts"] == 3

    again = api.call("POST", "/publish", {"run_id": run_id, "dossier_batch": "other"}, expect=200)
    assert again["already_published"] is True
    assert again["dossier_id"] == published["dossier_id"]
    assert again["dossier_batch_id"] == published["dossier_batch_id"]
    assert api.call("GET", f"/runs/{run_id}")["dossier_id"] == published["dossier_id"]

    check_execution_tables(dbs, run_id)
    check_production_tables(dbs, run_id, published["dossier_id"])


def check_execution_tables(dbs: Databases, run_id: str) -> None:
    (run,) = fetch(dbs, "SELECT * FROM v2_runs WHERE id = %s", run_id)
    assert run["status"] == "published" and run["target_domain"] == "globex.com"
    assert run["started_at"] <= run["completed_at"] <= run["published_at"]

    counts = fetch(
        dbs,
        "SELECT event_type, count(*) AS n, sum(tokens_in) AS tin FROM v2_pipeline_logs"
        " WHERE run_id = %s GROUP BY event_type",
        run_id,
    )
    by_type = {r["event_type"]: (r["n"], r["tin"]) for r in counts}
    assert by_type == {"step": (30, 3000), "stage_start": (3, None), "stage_complete": (3, None)}

    # The consolidated design: claims, merged claims, context packs and sections are outputs of
    # v2_pipeline_logs rows, with no table of their own.
    stage_outputs = fetch(
        dbs,
        "SELECT stage, output FROM v2_pipeline_logs WHERE run_id = %s"
        " AND event_type = 'stage_complete' ORDER BY id",
        run_id,
    )
    assert {r["stage"]: r["output"] for r in stage_outputs} == STAGE_OUTPUTS
    claims = fetch(
        dbs,
        "SELECT output->'claims' AS claims FROM v2_pipeline_logs WHERE run_id = %s"
        " AND event_type = 'step' AND step_name LIKE 'extract_claims_%%' ORDER BY id",
        run_id,
    )
    assert [r["claims"] for r in claims] == [[f"claim {i}.a", f"claim {i}.b"] for i in range(10)]
    errors = fetch(dbs, "SELECT step_name, error FROM v2_pipeline_logs WHERE status = 'error'")
    assert errors == [{"step_name": "overview", "error": "model timed out"}]
    retired = fetch(
        dbs,
        "SELECT table_name FROM information_schema.tables WHERE table_name = ANY(%s)",
        ["v2_claims", "v2_merged_claims", "v2_context_packs", "v2_sections", "v2_dossiers"],
    )
    assert retired == []

    names = fetch(dbs, "SELECT full_name FROM v2_contacts WHERE run_id = %s", run_id)
    assert sorted(r["full_name"] for r in names) == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]


def check_production_tables(dbs: Databases, run_id: str, dossier_id: str) -> None:
    (dossier,) = fetch(dbs, "SELECT * FROM dossiers")
    assert str(dossier["id"]) == dossier_id and str(dossier["run_id"]) == run_id
    assert dossier["target_company"] == "Globex"
    sections = dossier["sections"]
    assert sections["sections"]["overview"]["content"] == {"text": "final overview"}
    assert sections["sections"]["people"] == {
        "title": "Key people",
        "position": 3,
        "content": {"people": ["Ada Lovelace"]},
        "log_id": sections["sections"]["people"]["log_id"],
    }
    assert sections["missing_sections"] == ["appendix"]
    assert {k: v["output"] for k, v in sections["stages"].items()} == STAGE_OUTPUTS

    (batch,) = fetch(
        dbs, "SELECT b.*, c.slug FROM dossier_batches b JOIN v2_clients c ON c.id = b.client_id"
    )
    assert batch["name"] == "2026-W03" and batch["slug"] == "acme"
    assert batch["id"] == dossier["dossier_batch_id"]

    published = fetch(
        dbs,
        "SELECT c.full_name, c.email, c.data, c.dossier_id, v.run_id FROM contacts c"
        " JOIN v2_contacts v ON v.id = c.source_contact_id ORDER BY c.full_name",
    )
    assert [r["full_name"] for r in published] == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    assert all(str(r["dossier_id"]) == dossier_id and str(r["run_id"]) == run_id for r in published)
    assert published[0]["email"] == "ada-lovelace@globex.com"
    assert published[0]["data"] == {"seniority": "vp"}


def test_prompt_version_counts_template_changes(api: Api) -> None:
    body = {"stage": "research", "step_name": "extract", "template": "v1", "model": "gpt-4.1"}
    assert api.call("PUT", "/prompts/research.extract", body)["version"] == 1
    assert api.call("PUT", "/prompts/research.extract", {**body, "model": "o3"})["version"] == 1
    changed = api.call("PUT", "/prompts/research.extract", {**body, "template": "v2"})
    assert changed["version"] == 2 and changed["model"] == "gpt-4.1"
    assert api.call("GET", "/prompts/research.extract") == changed


# --- concurrency ---------------------------------------------------------------------------


def race(
    n: int, send: Callable[[Api], requests.Response], base_url: str
) -> list[requests.Response]:
    """n clients send at once (a barrier releases them together)."""
    barrier = threading.Barrier(n)
    responses: list[requests.Response] = []
    lock = threading.Lock()

    def client() -> None:
        api = Api(base_url)
        barrier.wait()
        response = send(api)
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=client) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(responses) == n
    return responses


def test_concurrent_publishes_make_one_dossier(api: Api, server: str, dbs: Databases) -> None:
    set_up_config(api)
    run_id = finished_run(api, contacts=5)
    body = {"run_id": run_id, "dossier_batch": "race"}
    responses = race(8, lambda client: client.request("POST", "/publish", body), server)

    assert sorted(r.status_code for r in responses) == [200] * 7 + [201], [
        r.text for r in responses
    ]
    assert len({r.json()["dossier_id"] for r in responses}) == 1
    assert sum(not r.json()["already_published"] for r in responses) == 1
    counts = table_counts(dbs)
    assert (counts["dossiers"], counts["contacts"], counts["dossier_batches"]) == (1, 5, 1)


def test_concurrent_publishes_into_a_new_batch_share_it(
    api: Api, server: str, dbs: Databases
) -> None:
    set_up_config(api)
    runs = iter([finished_run(api, f"Company {i}", contacts=1) for i in range(4)])
    lock = threading.Lock()

    def publish(client: Api) -> requests.Response:
        with lock:
            run_id = next(runs)
        return client.request("POST", "/publish", {"run_id": run_id, "dossier_batch": "new"})

    responses = race(4, publish, server)
    assert [r.status_code for r in responses] == [201] * 4
    assert len({r.json()["dossier_batch_id"] for r in responses}) == 1
    assert table_counts(dbs)["dossier_batches"] == 1


def test_concurrent_stage_starts_log_one(api: Api, server: str, dbs: Databases) -> None:
    set_up_config(api)
    run_id = start_run(api)
    body = {"run_id": run_id, "stage": "research"}
    responses = race(6, lambda client: client.request("POST", "/stages/start", body), server)
    assert [r.status_code for r in responses] == [201] * 6
    assert len({r.content for r in responses}) == 1
    assert table_counts(dbs)["v2_pipeline_logs"] == 1


# --- errors ---------------------------------------------------------------------------------


@pytest.fixture
def run_id(api: Api) -> str:
    set_up_config(api)
    return start_run(api)


@pytest.fixture
def unchanged(dbs: Databases) -> Iterator[None]:
    """The test's requests are all refused: no table may change."""
    before = table_counts(dbs)
    yield
    assert table_counts(dbs) == before


MISSING = str(uuid.UUID(int=1))


UNKNOWN_RUN_CALLS = [
    ("GET", f"/runs/{MISSING}", None),
    ("POST", "/stages/start", {"run_id": MISSING, "stage": "research"}),
    ("POST", "/stages/complete", {"run_id": MISSING, "stage": "research"}),
    ("POST", "/steps", {"run_id": MISSING, "stage": "research", "step_name": "x"}),
    ("POST", "/contacts", {"run_id": MISSING, "contacts": [{"full_name": "Ada"}]}),
    ("POST", "/publish", {"run_id": MISSING}),
]


def test_unknown_run_is_404(api: Api, unchanged: None) -> None:
    for method, path, body in UNKNOWN_RUN_CALLS:
        detail = api.error(method, path, body, expect=404)
        assert detail["error"] == "run_not_found", path
        assert MISSING in detail["message"] and detail["context"] == {"run_id": MISSING}, path


def test_unknown_client_or_prompt_is_404(api: Api, unchanged: None) -> None:
    assert api.error("GET", "/clients/nobody", expect=404)["context"] == {"client_slug": "nobody"}
    body = {"client_slug": "nobody", "target_company": "Globex"}
    detail = api.error("POST", "/runs", body, expect=404)
    assert detail["error"] == "client_not_found" and "'nobody'" in detail["message"]
    assert api.error("GET", "/prompts/none.such", expect=404)["error"] == "prompt_not_found"


def test_a_stage_started_twice_answers_the_first_start(
    api: Api, run_id: str, dbs: Databases
) -> None:
    body = {"run_id": run_id, "stage": "research"}
    first = api.call("POST", "/stages/start", body, expect=201)
    assert api.call("POST", "/stages/start", body, expect=201) == first
    assert table_counts(dbs)["v2_pipeline_logs"] == 1


def test_stage_completed_without_start_is_409(api: Api, run_id: str, unchanged: None) -> None:
    body = {"run_id": run_id, "stage": "claims", "output": {"merged_claims": []}}
    detail = api.error("POST", "/stages/complete", body, expect=409)
    assert detail["error"] == "stage_not_started" and "'claims'" in detail["message"]


def test_stage_completed_twice_is_409(api: Api, run_id: str, dbs: Databases) -> None:
    run_stage(api, run_id, "research", [], {"claims": ["first"]})
    body = {"run_id": run_id, "stage": "research", "output": {"claims": ["second"]}}
    detail = api.error("POST", "/stages/complete", body, expect=409)
    assert detail["error"] == "stage_already_completed"
    outputs = fetch(dbs, "SELECT output FROM v2_pipeline_logs WHERE event_type = 'stage_complete'")
    assert outputs == [{"output": {"claims": ["first"]}}]


def test_published_run_takes_no_more_logs(api: Api) -> None:
    set_up_config(api)
    run_id = finished_run(api)
    api.call("POST", "/publish", {"run_id": run_id}, expect=201)
    for path, body in [
        ("/steps", step(run_id, "research", "late", {"x": 1})),
        ("/contacts", {"run_id": run_id, "contacts": [contact("Late Comer")]}),
        ("/stages/start", {"run_id": run_id, "stage": "late"}),
        ("/stages/complete", {"run_id": run_id, "stage": "research"}),
    ]:
        detail = api.error("POST", path, body, expect=409)
        assert detail["error"] == "run_published" and run_id in detail["message"], path


def test_publishing_without_a_completed_stage_is_409(api: Api, run_id: str, dbs: Databases) -> None:
    detail = api.error("POST", "/publish", {"run_id": run_id}, expect=409)
    assert detail["error"] == "no_completed_stage"
    api.call("POST", "/stages/start", {"run_id": run_id, "stage": "research"}, expect=201)
    detail = api.error("POST", "/publish", {"run_id": run_id, "dossier_batch": "b"}, expect=409)
    assert detail["error"] == "stages_not_completed" and "research" in detail["message"]
    counts = table_counts(dbs)
    assert (counts["dossiers"], counts["dossier_batches"]) == (0, 0)
    assert fetch(dbs, "SELECT status FROM v2_runs") == [{"status": "running"}]


def field_errors(response: requests.Response) -> list[tuple[Any, ...]]:
    assert response.status_code == 422, response.text
    return [tuple(e["loc"]) for e in response.json()["detail"]]


BAD_STEP_FIELDS: list[tuple[dict[str, Any], tuple[str, str]]] = [
    ({"run_id": "not-a-uuid"}, ("body", "run_id")),
    ({"tokens_in": 2**31}, ("body", "tokens_in")),
    ({"duration_ms": -1}, ("body", "duration_ms")),
    ({"step_name": "nul\x00byte"}, ("body", "step_name")),
    ({"prompt": "lone \ud800 surrogate"}, ("body", "prompt")),
    ({"output": {"deep": [{"text": "nul\x00"}]}}, ("body", "output")),
    ({"input": {"bad\x00key": 1}}, ("body", "input")),
    ({"status": "maybe"}, ("body", "status")),
    ({"tokens_input": 5}, ("body", "tokens_input")),
    ({"stage": ""}, ("body", "stage")),
]


def test_malformed_step_is_422_naming_the_field(api: Api, run_id: str, unchanged: None) -> None:
    for change, location in BAD_STEP_FIELDS:
        body = {**step(run_id, "research", "extract", {"ok": True}), **change}
        locations = field_errors(api.request("POST", "/steps", body))
        assert location in [loc[:2] for loc in locations], change


def test_non_json_values_are_422(api: Api, run_id: str, unchanged: None) -> None:
    nan = f'{{"run_id": "{run_id}", "stage": "s", "step_name": "x", "output": {{"score": NaN}}}}'
    headers = {"content-type": "application/json"}
    response = api.request("POST", "/steps", data=nan, headers=headers)
    assert [loc[:2] for loc in field_errors(response)] == [("body", "output")]
    assert "NaN" in response.text

    deep: Any = "bottom"
    for _ in range(100):
        deep = [deep]
    response = api.request("POST", "/steps", step(run_id, "research", "x", deep))
    assert [loc[:2] for loc in field_errors(response)] == [("body", "output")]
    assert "deeper" in response.text

    broken = api.request("POST", "/runs", data="{not json", headers=headers)
    assert broken.status_code == 422 and broken.json()["detail"][0]["type"] == "json_invalid"


def test_malformed_config_and_paths_are_422(api: Api, unchanged: None) -> None:
    assert ("path", "slug") in field_errors(api.request("PUT", "/clients/bad slug!", {"name": "x"}))
    assert ("body", "name") in field_errors(api.request("PUT", "/clients/acme", {}))
    big = {"title": "t", "position": 2**31}
    assert ("body", "position") in field_errors(api.request("PUT", "/section-definitions/a", big))
    assert ("path", "run_id") in field_errors(api.request("GET", "/runs/42"))
    assert ("query", "stage") in field_errors(
        api.request("GET", "/prompts", params={"stage": "a\x00"})
    )
    empty = {"run_id": MISSING, "contacts": []}
    assert ("body", "contacts") in field_errors(api.request("POST", "/contacts", empty))


def test_api_key_is_required(server: str, unchanged: None) -> None:
    for key in (None, "wrong"):
        response = Api(server, api_key=key).request("GET", "/section-definitions")
        assert response.status_code == 401, response.text
        assert "x-api-key" in response.json()["detail"]
