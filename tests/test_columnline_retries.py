"""The V2 dossier API under Make.com's retries: every write safe to repeat with an
Idempotency-Key, stage events answered again, runs that end, and refusals made before the
database is touched. Over real HTTP, checked in Postgres."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from orchestrator.columnline import inputs
from orchestrator.columnline.fields import MAX_BODY_BYTES
from orchestrator.db.pool import Databases
from test_columnline_api import (
    Api,
    api,
    contact,
    fetch,
    finished_run,
    race,
    run_stage,
    server,
    set_up_config,
    start_run,
    step,
    table_counts,
)

__all__ = ["api", "server"]  # fixtures


@dataclass
class Context:
    api: Api
    run_id: str = ""


Body = Callable[[Context], Any]


@dataclass
class Write:
    """One write route, sent as Make.com would: what to send, another request for the same
    key, and how many rows it makes (once; and twice without a key)."""

    method: str
    path: str
    body: Body
    other_path: str
    other_body: Body
    count: str  # SQL: the rows the write makes
    made: int = 1
    twice_without_key: int = 1
    prepare: Callable[[Context], None] = field(default=lambda ctx: None)

    def send(self, ctx: Context, key: str | None, *, other: bool = False) -> requests.Response:
        path = (self.other_path if other else self.path).format(run_id=ctx.run_id)
        body = (self.other_body if other else self.body)(ctx)
        headers = {} if key is None else {"Idempotency-Key": key}
        return ctx.api.request(self.method, path, body, headers=headers)


def _started(ctx: Context, stage: str = "research") -> None:
    ctx.api.call("POST", "/stages/start", {"run_id": ctx.run_id, "stage": stage}, expect=201)


def _section(title: str) -> Body:
    return lambda ctx: {"title": title, "position": 9, "stage": "sections"}


def _put_section(path: str) -> Callable[[Context], None]:
    return lambda ctx: ctx.api.call("PUT", path, {"title": "Gone", "position": 8, "stage": "s"})


def _count_rows(table: str, where: str) -> str:
    return f"SELECT count(*) AS n FROM {table} WHERE {where}"


WRITES: dict[str, Write] = {
    "PUT client": Write(
        "PUT",
        "/clients/keyed",
        lambda ctx: {"name": "Keyed Co", "icp": {"size": "large"}},
        "/clients/keyed",
        lambda ctx: {"name": "Another Co"},
        _count_rows("v2_clients", "slug = 'keyed' AND name = 'Keyed Co'"),
    ),
    "PUT prompt": Write(
        "PUT",
        "/prompts/keyed.prompt",
        lambda ctx: {"stage": "research", "step_name": "s", "template": "T1"},
        "/prompts/keyed.prompt",
        lambda ctx: {"stage": "research", "step_name": "s", "template": "T2"},
        _count_rows("v2_prompts", "prompt_key = 'keyed.prompt' AND version = 1"),
    ),
    "PUT shared section": Write(
        "PUT",
        "/section-definitions/keyed",
        _section("Keyed"),
        "/section-definitions/other",
        _section("Keyed"),
        _count_rows("v2_section_definitions", "section_key = 'keyed' AND client_id IS NULL"),
    ),
    "PUT client section": Write(
        "PUT",
        "/clients/acme/section-definitions/keyed",
        _section("Keyed"),
        "/clients/acme/section-definitions/keyed",
        _section("Another title"),
        _count_rows("v2_section_definitions", "section_key = 'keyed' AND client_id IS NOT NULL"),
    ),
    "DELETE shared section": Write(
        "DELETE",
        "/section-definitions/gone",
        lambda ctx: None,
        "/section-definitions/overview",
        lambda ctx: None,
        _count_rows("v2_section_definitions", "section_key = 'gone'"),
        made=0,
        twice_without_key=0,
        prepare=_put_section("/section-definitions/gone"),
    ),
    "DELETE client section": Write(
        "DELETE",
        "/clients/acme/section-definitions/gone",
        lambda ctx: None,
        "/clients/acme/section-definitions/overview",
        lambda ctx: None,
        _count_rows("v2_section_definitions", "section_key = 'gone'"),
        made=0,
        twice_without_key=0,
        prepare=_put_section("/clients/acme/section-definitions/gone"),
    ),
    "POST run": Write(
        "POST",
        "/runs",
        lambda ctx: {"client_slug": "acme", "target_company": "Keyed Co"},
        "/runs",
        lambda ctx: {"client_slug": "acme", "target_company": "Another Co"},
        _count_rows("v2_runs", "target_company = 'Keyed Co'"),
        twice_without_key=2,
    ),
    "POST stage start": Write(
        "POST",
        "/stages/start",
        lambda ctx: {"run_id": ctx.run_id, "stage": "claims"},
        "/stages/start",
        lambda ctx: {"run_id": ctx.run_id, "stage": "other"},
        _count_rows("v2_pipeline_logs", "event_type = 'stage_start' AND stage = 'claims'"),
    ),
    "POST stage complete": Write(
        "POST",
        "/stages/complete",
        lambda ctx: {"run_id": ctx.run_id, "stage": "research", "output": {"claims": [1]}},
        "/stages/complete",
        lambda ctx: {"run_id": ctx.run_id, "stage": "research", "output": {"claims": [2]}},
        _count_rows("v2_pipeline_logs", "event_type = 'stage_complete'"),
        prepare=_started,
    ),
    "POST step": Write(
        "POST",
        "/steps",
        lambda ctx: step(ctx.run_id, "research", "keyed", {"text": "first"}),
        "/steps",
        lambda ctx: step(ctx.run_id, "research", "keyed", {"text": "changed"}),
        _count_rows("v2_pipeline_logs", "step_name = 'keyed'"),
        twice_without_key=2,
    ),
    "POST contacts": Write(
        "POST",
        "/contacts",
        lambda ctx: {"run_id": ctx.run_id, "contacts": [contact("Ada One"), contact("Bo Two")]},
        "/contacts",
        lambda ctx: {"run_id": ctx.run_id, "contacts": [contact("Ada One")]},
        _count_rows("v2_contacts", "TRUE"),
        made=2,
        twice_without_key=4,
    ),
    "POST run end": Write(
        "POST",
        "/runs/end",
        lambda ctx: {"run_id": ctx.run_id, "status": "failed", "reason": "OpenAI timed out"},
        "/runs/end",
        lambda ctx: {"run_id": ctx.run_id, "status": "completed"},
        _count_rows("v2_runs", "status = 'failed' AND end_reason = 'OpenAI timed out'"),
    ),
    "POST publish": Write(
        "POST",
        "/publish",
        lambda ctx: {"run_id": ctx.run_id, "dossier_batch": "2026-W49"},
        "/publish",
        lambda ctx: {"run_id": ctx.run_id, "dossier_batch": "2026-W50"},
        _count_rows("dossiers", "TRUE"),
        prepare=lambda ctx: run_stage(ctx.api, ctx.run_id, "research", [], {"claims": []}),
    ),
}


@pytest.fixture
def ready(api: Api) -> Context:
    """Configuration in place and a running run, as a scenario has them mid-way."""
    set_up_config(api)
    ctx = Context(api, run_id=start_run(api))
    return ctx


def count(dbs: Databases, write: Write) -> int:
    n: int = fetch(dbs, write.count)[0]["n"]
    return n


@pytest.mark.parametrize("name", list(WRITES))
def test_a_write_sent_again_with_its_key_answers_the_first_answer_and_changes_nothing(
    name: str, ready: Context, dbs: Databases
) -> None:
    write = WRITES[name]
    write.prepare(ready)
    first = write.send(ready, "key-1")
    assert first.status_code < 300, first.text
    again = write.send(ready, "key-1")
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(dbs, write) == write.made

    before = table_counts(dbs)
    refused = write.send(ready, "key-1", other=True)
    assert refused.status_code == 422, refused.text
    [problem] = refused.json()["detail"]
    assert problem["loc"] == ["header", "Idempotency-Key"]
    assert problem["type"] == "idempotency_key_reused" and "new key" in problem["msg"]
    assert table_counts(dbs) == before


@pytest.mark.parametrize("name", list(WRITES))
def test_ten_copies_sent_at_once_with_one_key_make_one_write(
    name: str, ready: Context, server: str, dbs: Databases
) -> None:
    write = WRITES[name]
    write.prepare(ready)
    responses = race(
        10, lambda client: write.send(Context(client, ready.run_id), "same-key"), server
    )
    assert len({(r.status_code, r.content) for r in responses}) == 1, responses[0].text
    assert responses[0].status_code < 300
    assert count(dbs, write) == write.made


@pytest.mark.parametrize("name", list(WRITES))
def test_without_a_key_each_copy_is_a_new_request(
    name: str, ready: Context, dbs: Databases
) -> None:
    write = WRITES[name]
    write.prepare(ready)
    statuses = [write.send(ready, None).status_code for _ in range(2)]
    assert statuses[0] < 300
    assert count(dbs, write) == write.twice_without_key
    if name.startswith("DELETE"):
        assert statuses[1] == 404  # the second found nothing left to delete


def test_keys_are_kept_per_route_and_run(ready: Context, dbs: Databases) -> None:
    """One key used on two routes, or on two runs, is two requests."""
    api, run_id = ready.api, ready.run_id
    other_run = start_run(api, "Initech")
    headers = {"Idempotency-Key": "step-1"}
    for target in (run_id, other_run):
        body = step(target, "research", "keyed", {"text": "x"})
        assert api.request("POST", "/steps", body, headers=headers).status_code == 201
    people = {"run_id": run_id, "contacts": [contact("Ada One")]}
    assert api.request("POST", "/contacts", people, headers=headers).status_code == 201
    assert count(dbs, WRITES["POST step"]) == 2
    assert table_counts(dbs)["v2_contacts"] == 1


def test_a_refused_write_keeps_no_key(ready: Context, dbs: Databases) -> None:
    """A 409 is not an answer to keep: the same key runs the write again once it can succeed."""
    api, run_id = ready.api, ready.run_id
    complete = {"run_id": run_id, "stage": "research", "output": {"x": 1}}
    headers = {"Idempotency-Key": "complete-research"}
    assert api.request("POST", "/stages/complete", complete, headers=headers).status_code == 409
    _started(ready)
    assert api.request("POST", "/stages/complete", complete, headers=headers).status_code == 201


def test_a_key_that_is_not_a_key_is_400(ready: Context, dbs: Databases) -> None:
    before = table_counts(dbs)
    body = step(ready.run_id, "research", "keyed", {"text": "x"})
    for bad in ("x" * 256, "tab\there", "é"):
        response = ready.api.request("POST", "/steps", body, headers={"Idempotency-Key": bad})
        assert response.status_code == 400, bad
        assert response.json()["detail"]["error"] == "idempotency_key_invalid"
    assert table_counts(dbs) == before
    quoted = {"Idempotency-Key": '"8e03978e-40d5-43e8-bc93-6894a57f9324"'}
    first = ready.api.request("POST", "/steps", body, headers=quoted)
    bare = {"Idempotency-Key": "8e03978e-40d5-43e8-bc93-6894a57f9324"}
    assert ready.api.request("POST", "/steps", body, headers=bare).content == first.content


def test_an_expired_key_is_a_new_request(ready: Context, dbs: Databases) -> None:
    body = step(ready.run_id, "research", "keyed", {"text": "x"})
    headers = {"Idempotency-Key": "old"}
    first = ready.api.request("POST", "/steps", body, headers=headers)
    with dbs.hq.connection() as conn:
        conn.execute("UPDATE v2_idempotency_keys SET expires_at = NOW() - interval '1 second'")
    second = ready.api.request("POST", "/steps", body, headers=headers)
    assert second.json()["log_id"] != first.json()["log_id"]
    assert fetch(dbs, "SELECT count(*) AS n FROM v2_idempotency_keys")[0]["n"] == 1


# --- stages and runs ------------------------------------------------------------------------


def test_stage_start_and_complete_sent_again_answer_the_first_201(
    ready: Context, dbs: Databases
) -> None:
    api, run_id = ready.api, ready.run_id
    start = {"run_id": run_id, "stage": "research"}
    complete = {**start, "output": {"merged_claims": ["a", "b"]}}
    for path, body in (("/stages/start", start), ("/stages/complete", complete)):
        first = api.request("POST", path, body)
        again = api.request("POST", path, body)
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.content == first.content
    events = fetch(dbs, "SELECT event_type FROM v2_pipeline_logs ORDER BY id")
    assert [e["event_type"] for e in events] == ["stage_start", "stage_complete"]
    other = {**start, "output": {"merged_claims": ["c"]}}
    detail = api.error("POST", "/stages/complete", other, expect=409)
    assert detail["error"] == "stage_already_completed" and "another output" in detail["message"]


def test_a_run_ended_as_failed_shows_its_reason_and_takes_no_more_writes(
    ready: Context, dbs: Databases
) -> None:
    api, run_id = ready.api, ready.run_id
    _started(ready)
    ended = api.call("POST", "/runs/end", failed_end(run_id))
    assert (ended["status"], ended["reason"]) == ("failed", "OpenAI module: 429 after 3 retries")
    run = api.call("GET", f"/runs/{run_id}")
    assert (run["status"], run["end_reason"]) == ("failed", "OpenAI module: 429 after 3 retries")
    assert run["completed_at"] == ended["ended_at"] and not run["stale"]
    before = table_counts(dbs)
    for path, body in [
        ("/steps", step(run_id, "research", "late", {"x": 1})),
        ("/contacts", {"run_id": run_id, "contacts": [contact("Late Comer")]}),
        ("/stages/start", {"run_id": run_id, "stage": "late"}),
        ("/stages/complete", {"run_id": run_id, "stage": "research"}),
        ("/publish", {"run_id": run_id}),
        ("/runs/end", {"run_id": run_id, "status": "completed"}),
    ]:
        detail = api.error("POST", path, body, expect=409)
        assert detail["error"] in ("run_failed", "run_ended"), path
        assert "429 after 3 retries" in detail["message"], path
    assert table_counts(dbs) == before
    # The same end sent again (a retry) answers the first.
    assert api.call("POST", "/runs/end", failed_end(run_id)) == ended


def failed_end(run_id: str) -> dict[str, Any]:
    return {"run_id": run_id, "status": "failed", "reason": "OpenAI module: 429 after 3 retries"}


def test_ending_a_run_as_failed_needs_a_reason_and_completed_does_not(ready: Context) -> None:
    api, run_id = ready.api, ready.run_id
    for reason in (None, "", "  "):
        body = {"run_id": run_id, "status": "failed", "reason": reason}
        response = api.request("POST", "/runs/end", body)
        assert response.status_code == 422 and "reason is required" in response.text
    ended = api.call("POST", "/runs/end", {"run_id": run_id, "status": "completed"})
    assert (ended["status"], ended["reason"]) == ("completed", None)
    # Completed without publishing: it may still be published, but takes no more logs.
    assert api.error("POST", "/publish", {"run_id": run_id}, expect=409)["error"] == (
        "no_completed_stage"
    )
    published = finished_run(api, "Hooli")
    api.call("POST", "/publish", {"run_id": published}, expect=201)
    detail = api.error("POST", "/runs/end", failed_end(published), expect=409)
    assert detail["error"] == "run_published"


def test_an_idle_run_is_shown_as_stale(ready: Context, dbs: Databases) -> None:
    api, run_id = ready.api, ready.run_id
    fresh = start_run(api, "Initech")
    with dbs.hq.connection() as conn:
        conn.execute(
            "UPDATE v2_runs SET last_activity_at = NOW() - interval '2 hours' WHERE id = %s",
            (run_id,),
        )
    assert api.call("GET", f"/runs/{run_id}")["stale"] is True
    assert api.call("GET", f"/runs/{fresh}")["stale"] is False
    stale = api.call("GET", "/runs?stale=true")
    assert [r["id"] for r in stale] == [run_id]
    assert {r["id"] for r in api.call("GET", "/runs?stale=false&client_slug=acme")} == {fresh}
    # A write is activity: the run is no longer stale.
    api.call("POST", "/steps", step(run_id, "research", "x", {"ok": True}), expect=201)
    assert api.call("GET", f"/runs/{run_id}")["stale"] is False
    api.call("POST", "/runs/end", failed_end(fresh))
    assert api.call("GET", "/runs?status=failed&stale=") == api.call("GET", "/runs?status=failed")


def test_a_light_read_leaves_the_outputs_out(ready: Context) -> None:
    api, run_id = ready.api, ready.run_id
    big = {"text": "x" * 100_000}
    api.call("POST", "/steps", step(run_id, "research", "x", big), expect=201)
    api.call("POST", "/contacts", {"run_id": run_id, "contacts": [contact("Ada One")]}, expect=201)
    full = api.request("GET", f"/runs/{run_id}")
    light = api.request("GET", f"/runs/{run_id}", params={"outputs": "false"})
    assert len(light.content) < 2_000 < 100_000 < len(full.content)
    [entry] = light.json()["logs"]
    assert (entry["output"], entry["input"], entry["prompt"]) == (None, None, None)
    assert entry["tokens_in"] == 100 and light.json()["outputs_included"] is False
    assert light.json()["contacts"][0]["email"] == "ada-one@globex.com"


# --- section definitions per client and stage -----------------------------------------------


def test_sections_are_per_client_and_filled_only_from_their_stage(
    ready: Context, dbs: Databases
) -> None:
    api = ready.api
    api.call("PUT", "/clients/zeta", {"name": "Zeta"})
    override = {"title": "Why now", "position": 1, "stage": "claims"}
    api.call("PUT", "/clients/acme/section-definitions/overview", override)
    hidden = {**override, "position": 5, "included": False}
    api.call("PUT", "/clients/acme/section-definitions/appendix", hidden)
    acme = api.call("GET", "/clients/acme/section-definitions")
    assert [(d["section_key"], d["client_slug"], d["stage"]) for d in acme][:2] == [
        ("overview", "acme", "claims"),
        ("signals", None, "sections"),
    ]
    zeta = api.call("GET", "/clients/zeta/section-definitions")
    assert all(d["client_slug"] is None for d in zeta) and len(zeta) == 5

    def dossier(client: str) -> dict[str, Any]:
        run_id = start_run(api) if client == "acme" else zeta_run(api)
        # An `overview` step in the research stage fills no section: definitions name theirs.
        research = [step(run_id, "research", "overview", {"text": "from research"})]
        run_stage(api, run_id, "research", research, {"ok": 1})
        claims = [step(run_id, "claims", "overview", {"text": "from claims"})]
        run_stage(api, run_id, "claims", claims, {"ok": 2})
        api.call("POST", "/publish", {"run_id": run_id}, expect=201)
        sections: dict[str, Any] = fetch(
            dbs, "SELECT sections FROM dossiers WHERE run_id = %s", run_id
        )[0]["sections"]
        return sections

    acme_dossier = dossier("acme")
    assert acme_dossier["sections"]["overview"]["content"] == {"text": "from claims"}
    assert acme_dossier["sections"]["overview"]["title"] == "Why now"
    assert "appendix" not in acme_dossier["missing_sections"]
    zeta_dossier = dossier("zeta")
    assert "overview" in zeta_dossier["missing_sections"]  # its overview is the sections stage's
    assert "appendix" in zeta_dossier["missing_sections"]

    api.request("DELETE", "/clients/acme/section-definitions/overview")
    assert api.call("GET", "/clients/acme/section-definitions")[0]["client_slug"] is None
    assert api.request("DELETE", "/section-definitions/appendix").status_code == 204
    detail = api.error("DELETE", "/section-definitions/appendix", expect=404)
    assert detail["error"] == "section_definition_not_found" and "'appendix'" in detail["message"]
    assert api.error("GET", "/clients/nobody/section-definitions", expect=404)["error"] == (
        "client_not_found"
    )


def zeta_run(api: Api) -> str:
    body = {"client_slug": "zeta", "target_company": "Globex"}
    run_id: str = api.call("POST", "/runs", body, expect=201)["run_id"]
    return run_id


# --- reading the body -----------------------------------------------------------------------


class NoDatabase:
    """Stands in for the HQ pool: any use of it fails the test."""

    def connection(self) -> Any:
        raise AssertionError("the request reached the database")


def raw(api: Api, path: str, data: bytes | str, **headers: str) -> requests.Response:
    return api.session.post(
        api.base_url + path,
        data=data,
        headers={"content-type": "application/json", **headers},
        timeout=60,
    )


def test_oversized_and_over_deep_bodies_are_refused_before_the_database(
    api: Api, dbs: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dbs, "hq", NoDatabase())
    run_id = "0b9c4c8e-4d2a-4a53-9d0c-2f0a3a4f5b6c"
    huge = json.dumps({"run_id": run_id, "stage": "s", "output": "x" * MAX_BODY_BYTES})
    response = raw(api, "/stages/complete", huge)
    assert response.status_code == 413 and response.json()["detail"]["error"] == "body_too_large"
    assert "10 MiB" in response.json()["detail"]["message"]

    for levels in (65, 5_000, 200_000):
        deep = "[" * levels + "]" * levels
        body = f'{{"run_id": "{run_id}", "stage": "s", "step_name": "x", "output": {deep}}}'
        response = raw(api, "/steps", body)
        assert response.status_code == 422, (levels, response.text[:300])
        assert "nested deeper than 64 levels" in response.text

    for content_type in ("text/plain", "application/x-www-form-urlencoded", ""):
        response = raw(api, "/runs", '{"client_slug": "acme"}', **{"content-type": content_type})
        assert response.status_code == 415, content_type
        assert "Content-Type" in response.json()["detail"]["message"]

    response = raw(api, "/runs", b"\xff\xfe{bad")
    assert response.status_code == 400 and "UTF-8" in response.text


def test_a_caller_without_the_key_gets_401_whatever_the_body(server: str) -> None:
    for key in (None, "wrong"):
        stranger = Api(server, api_key=key)
        for data in ("{not json", "[" * 10_000, "x" * (MAX_BODY_BYTES + 10)):
            response = raw(stranger, "/steps", data)
            assert response.status_code == 401, (key, data[:10], response.text[:200])


def test_a_run_stops_taking_writes_before_it_could_not_be_published(
    ready: Context, dbs: Databases
) -> None:
    """Each step within the body limit, together past what a dossier may hold: the write that
    would pass the run's budget is refused with 413 and the run still publishes."""
    api, run_id = ready.api, ready.run_id
    _started(ready, "sections")
    # Small numbers cost Postgres far more than their text: ~9.5 MB of JSON is ~57 MB of JSONB.
    numbers = "[" + ",".join(["0"] * 4_700_000) + "]"
    accepted = 0
    for i in range(4):
        body = (
            f'{{"run_id": "{run_id}", "stage": "sections", "step_name": "overview",'
            f' "output": {{"n": {numbers}, "i": {i}}}}}'
        )
        response = raw(api, "/steps", body)
        if response.status_code == 413:
            break
        assert response.status_code == 201, response.text[:300]
        accepted += 1
    assert 0 < accepted < 4
    detail = response.json()["detail"]
    assert detail["error"] == "run_too_large" and "100 MiB" in detail["message"]
    api.call("POST", "/stages/complete", {"run_id": run_id, "stage": "sections"}, expect=201)
    published = api.call("POST", "/publish", {"run_id": run_id}, expect=201)
    assert published["sections"] == ["overview"]
    light = api.call("GET", f"/runs/{run_id}?outputs=false")
    assert light["stored_bytes"] <= 100 * 2**20


# --- one rule for empty values --------------------------------------------------------------


VOLATILE = {
    "id",
    "seq",
    "log_id",
    "created_at",
    "updated_at",
    "started_at",
    "run_id",
    "last_activity_at",
}


def _stable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in VOLATILE}


def _stored(dbs: Databases, sql: str, key: Any) -> dict[str, Any]:
    return _stable(fetch(dbs, sql, key)[0])


@dataclass
class Route:
    """A route with optional fields: a body that is valid without them, and what it stored."""

    method: str
    path: str
    model: type[Any]
    base: Callable[[Context, int], dict[str, Any]]  # the n-th distinct valid body
    stored: Callable[[Context, Databases, Any], dict[str, Any]]  # from the response's JSON
    nested: str | None = None  # the list field whose first item holds the optional fields


def _contact_stored(ctx: Context, dbs: Databases, answer: Any) -> dict[str, Any]:
    return _stored(dbs, "SELECT * FROM v2_contacts WHERE id = %s", answer["contact_ids"][0])


def _published(ctx: Context, n: int) -> dict[str, Any]:
    return {"run_id": finished_run(ctx.api, f"Publish {n}", contacts=1)}


ROUTES = [
    Route(
        "PUT",
        "/clients/c{n}",
        inputs.ClientIn,
        lambda ctx, n: {"name": "C"},
        lambda ctx, dbs, answer: _stable(answer) | {"slug": None},
    ),
    Route(
        "PUT",
        "/prompts/p{n}",
        inputs.PromptIn,
        lambda ctx, n: {"stage": "research", "step_name": "s", "template": "T"},
        lambda ctx, dbs, answer: _stable(answer) | {"prompt_key": None},
    ),
    Route(
        "PUT",
        "/section-definitions/s{n}",
        inputs.SectionDefinitionIn,
        lambda ctx, n: {"title": "T", "position": 1, "stage": "sections"},
        lambda ctx, dbs, answer: _stable(answer) | {"section_key": None},
    ),
    Route(
        "PUT",
        "/clients/acme/section-definitions/s{n}",
        inputs.SectionDefinitionIn,
        lambda ctx, n: {"title": "T", "position": 1, "stage": "sections"},
        lambda ctx, dbs, answer: _stable(answer) | {"section_key": None},
    ),
    Route(
        "POST",
        "/runs",
        inputs.RunStart,
        lambda ctx, n: {"client_slug": "acme", "target_company": "Globex"},
        lambda ctx, dbs, answer: _stored(
            dbs, "SELECT * FROM v2_runs WHERE id = %s", answer["run_id"]
        ),
    ),
    Route(
        "POST",
        "/stages/complete",
        inputs.StageComplete,
        lambda ctx, n: (_started(ctx, f"stage{n}"), {"run_id": ctx.run_id, "stage": f"stage{n}"})[
            1
        ],
        lambda ctx, dbs, answer: (
            _stored(dbs, "SELECT * FROM v2_pipeline_logs WHERE id = %s", answer["log_id"])
            | {"stage": None}
        ),
    ),
    Route(
        "POST",
        "/steps",
        inputs.StepLog,
        lambda ctx, n: {"run_id": ctx.run_id, "stage": "research", "step_name": "s"},
        lambda ctx, dbs, answer: _stored(
            dbs, "SELECT * FROM v2_pipeline_logs WHERE id = %s", answer["log_id"]
        ),
    ),
    Route(
        "POST",
        "/contacts",
        inputs.ContactIn,
        lambda ctx, n: {"run_id": ctx.run_id, "contacts": [{"full_name": "Ada"}]},
        _contact_stored,
        nested="contacts",
    ),
    Route(
        "POST",
        "/runs/end",
        inputs.RunEnd,
        lambda ctx, n: {"run_id": start_run(ctx.api, f"End {n}"), "status": "completed"},
        lambda ctx, dbs, answer: _stable(answer) | {"ended_at": None},
    ),
    Route(
        "POST",
        "/publish",
        inputs.PublishIn,
        _published,
        lambda ctx, dbs, answer: {"dossier_batch_id": answer["dossier_batch_id"]},
    ),
]

# Fields whose value may be `true`: booleans, and JSON documents of any type.
TRUE_IS_A_VALUE = {
    (inputs.PromptIn, "is_active"),
    (inputs.SectionDefinitionIn, "included"),
    (inputs.StageComplete, "output"),
    (inputs.StepLog, "input"),
    (inputs.StepLog, "output"),
}


def optional_fields(model: type[Any]) -> list[str]:
    return [name for name, f in model.model_fields.items() if not f.is_required()]


def _cases() -> list[tuple[Route, str]]:
    return [(route, name) for route in ROUTES for name in optional_fields(route.model)]


def test_the_table_has_every_optional_field_of_every_route() -> None:
    covered = {route.model for route in ROUTES}
    with_optional = {
        model
        for model in vars(inputs).values()
        if isinstance(model, type)
        and issubclass(model, inputs.RequestModel)
        and model is not inputs.RequestModel
        and optional_fields(model)
    }
    assert with_optional <= covered, with_optional - covered
    assert len(_cases()) == 28


def _send(ctx: Context, route: Route, n: int, change: dict[str, Any]) -> requests.Response:
    body = route.base(ctx, n)
    if route.nested:
        body[route.nested] = [{**body[route.nested][0], **change}]
    else:
        body.update(change)
    return ctx.api.request(route.method, route.path.format(n=n), body)


@pytest.mark.parametrize(
    ("route", "field_name"), _cases(), ids=[f"{r.path} {f}" for r, f in _cases()]
)
def test_null_and_blank_mean_not_given_and_true_is_not_a_number(
    route: Route, field_name: str, ready: Context, dbs: Databases
) -> None:
    ctx = ready
    left_out = _send(ctx, route, 0, {})
    assert left_out.status_code < 300, left_out.text
    expected = route.stored(ctx, dbs, left_out.json())
    for n, blank in enumerate((None, "", "   "), start=1):
        response = _send(ctx, route, n, {field_name: blank})
        assert response.status_code < 300, (blank, response.text)
        assert route.stored(ctx, dbs, response.json()) == expected, blank

    response = _send(ctx, route, 9, {field_name: True})
    if (route.model, field_name) in TRUE_IS_A_VALUE:
        assert response.status_code < 300, response.text
    else:
        assert response.status_code == 422, response.text
        locations = [e["loc"] for e in response.json()["detail"]]
        assert any(field_name in loc for loc in locations), locations


REQUIRED = [
    ("PUT", "/clients/c", {"name": "C"}, "name"),
    ("POST", "/runs", {"client_slug": "acme", "target_company": "G"}, "target_company"),
    ("POST", "/steps", {"stage": "research", "step_name": "s"}, "step_name"),
    ("POST", "/steps", {"stage": "research", "step_name": "s"}, "run_id"),
    ("PUT", "/section-definitions/s", {"title": "T", "position": 1, "stage": "x"}, "stage"),
]


@pytest.mark.parametrize(("method", "path", "body", "name"), REQUIRED)
def test_a_required_field_sent_null_or_blank_is_refused_naming_it(
    method: str, path: str, body: dict[str, Any], name: str, ready: Context, dbs: Databases
) -> None:
    before = table_counts(dbs)
    for blank in (None, "", "  "):
        sent = (
            {"run_id": ready.run_id, **body, name: blank}
            if path == "/steps"
            else {**body, name: blank}
        )
        response = ready.api.request(method, path, sent)
        assert response.status_code == 422, response.text
        [problem] = response.json()["detail"]
        assert problem["loc"] == ["body", name]
        assert problem["msg"].startswith(f"{name} is required")
    assert table_counts(dbs) == before


def test_numbers_and_booleans_are_not_each_other(ready: Context) -> None:
    api, run_id = ready.api, ready.run_id
    base = {"run_id": run_id, "stage": "research", "step_name": "s"}
    for counter in ("tokens_in", "tokens_out", "duration_ms"):
        for value in (True, False):
            response = api.request("POST", "/steps", {**base, counter: value})
            assert response.status_code == 422 and "boolean is not a number" in response.text
    logged = api.call("POST", "/steps", {**base, "tokens_in": 120.0}, expect=201)
    assert fetch_one_tokens(ready, logged["log_id"]) == 120
    quoted = api.request("POST", "/steps", {**base, "tokens_in": "120"})
    assert quoted.status_code == 422 and "without quotes" in quoted.text
    prompt = {"stage": "research", "step_name": "s", "template": "T"}
    for flag in (1, 0, "yes"):
        response = api.request("PUT", "/prompts/p", {**prompt, "is_active": flag})
        assert response.status_code == 422 and "true or false" in response.text
    assert api.call("PUT", "/prompts/p", {**prompt, "is_active": "false"})["is_active"] is False


def fetch_one_tokens(ctx: Context, log_id: int) -> int:
    run = ctx.api.call("GET", f"/runs/{ctx.run_id}?outputs=false")
    tokens: int = next(e["tokens_in"] for e in run["logs"] if e["id"] == log_id)
    return tokens


def test_a_blank_query_filter_means_no_filter(ready: Context) -> None:
    api = ready.api
    everything = api.call("GET", "/prompts")
    assert api.call("GET", "/prompts?stage=") == everything
    assert api.call("GET", "/prompts?stage=%20%20") == everything
    assert api.call("GET", "/runs?client_slug=&status=&stale=") == api.call("GET", "/runs")
