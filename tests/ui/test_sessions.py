"""No page without a session, no action without the session's CSRF token (over real HTTP)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import requests
from fastapi.routing import APIRoute

from orchestrator.db.pool import Databases
from orchestrator.runtimes.service import LocalService
from orchestrator.web.ui import ROUTERS
from orchestrator.web.ui.session import COOKIE
from support.pipeline import add_normalize_split_play, apollo_csv, upload

# Values for the path parameters of /ui/ routes, so every route is asked for.
_PARAMS = {
    "batch": str(uuid.uuid4()),
    "company_id": str(uuid.uuid4()),
    "play": "company-research",
    "step_number": "1",
    "kind": "leads",
}


def _ui_routes() -> list[tuple[str, str]]:
    found = []
    for route in (r for router in ROUTERS for r in router.routes):
        assert isinstance(route, APIRoute) and route.path.startswith("/ui/")
        path = re.sub(r"\{(\w+)\}", lambda m: _PARAMS[m.group(1)], route.path)
        found.extend((method, path) for method in sorted(route.methods))
    return found


def _signed_in(service: LocalService) -> requests.Session:
    session = requests.Session()
    answer = session.post(
        f"{service.server.url}/ui/sign-in",
        data={"api_key": service.runtime.api_key, "next": "/ui/"},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/"
    return session


def _counts(dbs: Databases) -> dict[str, Any]:
    with dbs.hq.connection() as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM upload_batches) AS batches,"
            " (SELECT count(*) FROM company_play_step_completions) AS completions,"
            " (SELECT count(*) FROM client_customers) AS customers,"
            " (SELECT count(*) FROM workflow_states WHERE status = 'FAILED') AS failed,"
            " (SELECT count(*) FROM company_workflow_states) AS company_states"
        ).fetchone()
    assert row is not None
    return dict(row)


def test_every_page_and_fragment_sends_a_stranger_to_sign_in(service: LocalService) -> None:
    routes = _ui_routes()
    pages = [path for method, path in routes if method == "GET" and path != "/ui/sign-in"]
    assert len(pages) >= 10  # batches, fragments, batch, live, export, plays, pills, ...
    for path in pages:
        answer = requests.get(service.server.url + path, allow_redirects=False, timeout=30)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/ui/sign-in?next=/ui/"), path
        fragment = requests.get(
            service.server.url + path, headers={"HX-Request": "true"}, allow_redirects=False
        )
        assert fragment.status_code == 401 and fragment.headers["HX-Redirect"].startswith(
            "/ui/sign-in?next="
        ), path
    forged = requests.get(
        f"{service.server.url}/ui/", cookies={COOKIE: "eyJjc3JmIjoieCJ9.forged.sig"}, timeout=30
    )
    assert forged.url.endswith("/ui/sign-in?next=/ui/")


def test_the_root_leads_to_the_dashboard_and_the_cookie_is_strict(service: LocalService) -> None:
    root = requests.get(service.server.url + "/", allow_redirects=False, timeout=30)
    assert root.status_code == 307 and root.headers["location"] == "/ui/"
    wrong = requests.post(
        f"{service.server.url}/ui/sign-in", data={"api_key": "nope"}, allow_redirects=False
    )
    assert wrong.status_code == 401 and "not right" in wrong.text and COOKIE not in wrong.cookies
    answer = requests.post(
        f"{service.server.url}/ui/sign-in",
        data={"api_key": service.runtime.api_key, "next": "https://evil.example/"},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.headers["location"] == "/ui/"  # never sent to another site
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=43200" in cookie


@pytest.mark.parametrize("token", [None, "wrong", "other-session"])
def test_no_action_without_the_sessions_csrf_token(
    service: LocalService, dbs: Databases, token: str | None
) -> None:
    batch = upload(dbs, apollo_csv(20, 4, seed=3), add_normalize_split_play(dbs)).batch_id
    with dbs.hq.connection() as conn:
        conn.execute(
            "UPDATE workflow_states SET status = 'FAILED', meta = meta || '{\"reason\": \"x\"}'"
            " WHERE batch_id = %s",
            (batch,),
        )
        company = conn.execute("SELECT id FROM normalized_companies LIMIT 1").fetchone()
    session = _signed_in(service)
    if token == "other-session":
        page = _signed_in(service).get(f"{service.server.url}/ui/", timeout=30).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    before = _counts(dbs)
    extra = {"csrf_token": token} if token else {}
    upload_file = {"file": ("leads.csv", apollo_csv(5, 2, seed=4), "text/csv")}
    actions: list[tuple[str, dict[str, Any], Any]] = [
        ("/ui/batches", {"client": "acme", **extra}, upload_file),
        (
            f"/ui/batches/{batch}/retry",
            {"step": "normalize_all_core_values", "reason": "x", **extra},
            None,
        ),
        (f"/ui/batches/{batch}/resume", {"resend_now": "true", **extra}, None),
        (f"/ui/batches/{batch}/launch", {"reuse": "true", **extra}, None),
        ("/ui/plays/company-research/steps/1/confirm", {"company": [str(company)], **extra}, None),
        ("/ui/plays/company-research/steps/1/run", {"company": [str(company)], **extra}, None),
        ("/ui/customers", {"client": "acme", **extra}, {"file": ("c.csv", b"name\nStripe\n")}),
        ("/ui/sign-out", extra, None),
    ]
    posted = {path.split("/")[-1] for path, _, _ in actions}
    ui_posts = {p.split("/")[-1] for m, p in _ui_routes() if m == "POST"}
    assert ui_posts - {"sign-in"} <= posted  # every action of the dashboard is tried here
    for path, data, files in actions:
        answer = session.post(
            service.server.url + path, data=data, files=files, allow_redirects=False, timeout=30
        )
        assert answer.status_code == 403, (path, answer.status_code, answer.text[:200])
        assert "Nothing was changed" in answer.text
    assert service.runtime.dispatcher.wait_idle(10)
    assert _counts(dbs) == before
    # Still signed in: the refused sign-out changed nothing either.
    assert session.get(f"{service.server.url}/ui/", allow_redirects=False).status_code == 200
