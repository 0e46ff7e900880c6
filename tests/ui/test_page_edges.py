"""What people did to the dashboard that it did not take well: bad customer files, signing out
and going back, a session ending under a page, unknown batch ids in filters, NUL bytes, bad
query values, resuming what needs no resume (over real HTTP)."""

from __future__ import annotations

import re
from uuid import UUID, uuid4

import requests

from orchestrator.db.pool import Databases
from orchestrator.runtimes.service import LocalService
from orchestrator.web.ui.session import COOKIE
from support.pipeline import add_normalize_split_play, apollo_csv, upload


def _signed_in(service: LocalService) -> tuple[requests.Session, str]:
    session = requests.Session()
    page = session.post(
        f"{service.server.url}/ui/sign-in",
        data={"api_key": service.runtime.api_key},
        timeout=30,
    )
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    return session, token.group(1)


def _companies(service: LocalService, rows: int = 30, companies: int = 6) -> UUID:
    dbs = service.dbs
    batch = upload(dbs, apollo_csv(rows, companies, seed=1), add_normalize_split_play(dbs))
    service.runtime.run_batch(batch.batch_id, timeout=60)
    return batch.batch_id


def test_a_bad_customer_file_on_the_page_gets_its_reason_not_a_server_error(
    service: LocalService, dbs: Databases
) -> None:
    session, token = _signed_in(service)
    bad_files = {
        "header only": b"name,domain\n",
        "empty": b"",
        "not UTF-8": "name\nM\xfcnchen AG\n".encode("latin-1"),
    }
    for what, body in bad_files.items():
        answer = session.post(
            f"{service.server.url}/ui/customers",
            data={"client": "acme", "csrf_token": token},
            files={"file": ("customers.csv", body, "text/csv")},
            timeout=30,
        )
        assert answer.status_code == 422, (what, answer.status_code, answer.text[:300])
        assert "The list was not changed" in answer.text, what
    with dbs.hq.connection() as conn:
        row = conn.execute("SELECT count(*) AS n FROM client_customers").fetchone()
    assert row is not None and row["n"] == 0


def test_signing_out_ends_the_session_for_every_copy_of_its_cookie(
    service: LocalService,
) -> None:
    session, token = _signed_in(service)
    stolen = session.cookies.get(COOKIE)
    page = session.get(f"{service.server.url}/ui/", timeout=30)
    assert "no-store" in page.headers["cache-control"]  # Back after sign-out shows nothing
    assert page.headers["x-frame-options"] == "DENY"
    session.post(f"{service.server.url}/ui/sign-out", data={"csrf_token": token}, timeout=30)
    replay = requests.get(
        f"{service.server.url}/ui/", cookies={COOKIE: stolen}, allow_redirects=False, timeout=30
    )
    assert replay.status_code == 303 and "/ui/sign-in" in replay.headers["location"]
    forged_upload = requests.post(
        f"{service.server.url}/ui/batches",
        cookies={COOKIE: stolen},
        data={"client": "acme", "csrf_token": token},
        files={"file": ("a.csv", apollo_csv(3, 1, seed=2), "text/csv")},
        allow_redirects=False,
        timeout=30,
    )
    assert forged_upload.status_code == 303
    with service.dbs.hq.connection() as conn:
        row = conn.execute("SELECT count(*) AS n FROM upload_batches").fetchone()
    assert row is not None and row["n"] == 0


def test_a_session_ending_under_a_page_signs_in_back_to_that_page(
    service: LocalService,
) -> None:
    """A fragment's poll, or a form sent after the session ended, leads back to the page the
    person was on: not to the fragment, not to a URL that only takes POST."""
    url = service.server.url
    poll = requests.get(
        f"{url}/ui/fragments/batches",
        headers={"HX-Request": "true", "HX-Current-URL": f"{url}/ui/batches/abc?notice=x"},
        allow_redirects=False,
        timeout=30,
    )
    assert poll.headers["HX-Redirect"] == "/ui/sign-in?next=/ui/batches/abc%3Fnotice%3Dx"
    form = requests.post(
        f"{url}/ui/batches/{uuid4()}/retry",
        data={"step": "split", "reason": "x"},
        headers={"Referer": f"{url}/ui/plays/company-research?step=1"},
        allow_redirects=False,
        timeout=30,
    )
    assert form.headers["location"] == "/ui/sign-in?next=/ui/plays/company-research%3Fstep%3D1"
    elsewhere = requests.post(
        f"{url}/ui/batches", headers={"Referer": "https://evil.example/ui/x"}, timeout=30
    )
    assert elsewhere.url.endswith("/ui/sign-in?next=/ui/")


def test_the_queue_filter_names_a_batch_or_says_it_cannot(service: LocalService) -> None:
    batch = _companies(service)
    session, _ = _signed_in(service)
    url = f"{service.server.url}/ui/plays/company-research"
    short = session.get(url, params={"step": 1, "batch": str(batch)[:8]}, timeout=30)
    assert short.status_code == 200 and short.text.count('name="company"') == 6
    for bad in ("nope", "c8586e63", f" {uuid4()} "):
        page = session.get(url, params={"step": 1, "batch": bad}, timeout=30)
        assert page.status_code == 404, bad
        assert 'name="company"' not in page.text and "No such batch" in page.text, bad
        leads = session.get(f"{service.server.url}/ui/leads", params={"batch": bad}, timeout=30)
        assert 'role="alert"' in leads.text and "data-lead" not in leads.text, bad


def test_running_a_step_counts_what_it_really_starts(service: LocalService) -> None:
    _companies(service)
    session, token = _signed_in(service)
    with service.dbs.hq.connection() as conn:
        ids = [str(r["id"]) for r in conn.execute("SELECT id FROM normalized_companies LIMIT 2")]
    url = f"{service.server.url}/ui/plays/company-research/steps/1"
    unknown = session.post(
        f"{url}/confirm", data={"company": [str(uuid4())], "csrf_token": token}, timeout=30
    )
    assert unknown.status_code == 422 and "none of them" in unknown.text
    first = session.post(f"{url}/run", data={"company": ids, "csrf_token": token}, timeout=30)
    assert "started for 2 companies" in first.text
    assert service.runtime.dispatcher.wait_idle(30)
    again = session.post(
        f"{url}/run", data={"company": [*ids, str(uuid4())], "csrf_token": token}, timeout=30
    )
    assert again.status_code == 200 and "already completed" in again.text
    assert "started for" not in again.text
    negative = session.get(
        f"{service.server.url}/ui/plays/company-research", params={"ran": -5}, timeout=30
    )
    assert "started for" not in negative.text


def test_bad_addresses_get_pages_not_errors_or_json(service: LocalService) -> None:
    session, _ = _signed_in(service)
    url = service.server.url
    for path, status in (
        ("/ui/leads?q=a%00b", 400),
        ("/ui/companies?q=%00", 400),
        ("/ui/plays/company-research?step=1&q=%00", 400),
        ("/ui/plays/company-research?step=abc", 422),
        ("/ui/no-such-page", 404),
        ("/ui/batches/not-an-id", 404),
    ):
        answer = session.get(url + path, timeout=30)
        assert answer.status_code == status, path
        assert answer.headers["content-type"].startswith("text/html"), path
        assert "<h1>" in answer.text and '{"detail"' not in answer.text, path
    assert session.get(f"{url}/health", timeout=30).json() == {"status": "ok"}
    assert requests.get(f"{url}/no-such-api", timeout=30).json() == {"detail": "Not Found"}


def test_resume_says_when_there_was_nothing_to_resume(service: LocalService) -> None:
    batch = _companies(service)
    session, token = _signed_in(service)
    page = session.post(
        f"{service.server.url}/ui/batches/{batch}/resume", data={"csrf_token": token}, timeout=30
    )
    assert "Nothing to resume" in page.text and "COMPLETED" in page.text


def test_pages_name_their_assets_by_path_whatever_the_host_header(service: LocalService) -> None:
    answer = requests.get(
        f"{service.server.url}/ui/sign-in", headers={"Host": "evil.example"}, timeout=30
    )
    assert "evil.example" not in answer.text
    assert 'src="/ui/static/htmx.min.js"' in answer.text


def test_a_file_goes_only_to_a_play_that_runs_on_its_rows_and_to_a_named_client(
    service: LocalService,
) -> None:
    session, token = _signed_in(service)
    board = session.get(f"{service.server.url}/ui/", timeout=30).text
    assert 'value="apollo-lead-enrichment"' in board and 'value="company-research"' not in board
    for data, reason in (
        ({"client": "acme", "play": "company-research"}, "cannot take a file"),
        ({"client": "   ", "play": "apollo-lead-enrichment"}, "Name the client"),
    ):
        answer = session.post(
            f"{service.server.url}/ui/batches",
            data={**data, "csrf_token": token},
            files={"file": ("a.csv", apollo_csv(5, 2, seed=3), "text/csv")},
            timeout=30,
        )
        assert answer.status_code == 422 and reason in answer.text, reason
    with service.dbs.hq.connection() as conn:
        row = conn.execute("SELECT count(*) AS n FROM upload_batches").fetchone()
    assert row is not None and row["n"] == 0


def test_after_a_run_the_queue_keeps_its_filter(service: LocalService) -> None:
    batch = _companies(service)
    session, token = _signed_in(service)
    with service.dbs.hq.connection() as conn:
        company = conn.execute("SELECT id FROM normalized_companies LIMIT 1").fetchone()
    assert company is not None
    answer = session.post(
        f"{service.server.url}/ui/plays/company-research/steps/1/run",
        data={
            "company": [str(company["id"])],
            "batch": str(batch)[:8],
            "q": "a",
            "csrf_token": token,
        },
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 303
    assert f"batch={str(batch)[:8]}&q=a&ran=1" in answer.headers["location"]


def test_a_form_sent_from_a_forms_result_page_signs_in_to_the_batches_page(
    service: LocalService,
) -> None:
    answer = requests.post(
        f"{service.server.url}/ui/batches",
        headers={"Referer": f"{service.server.url}/ui/batches"},  # where a refused upload was
        allow_redirects=False,
        timeout=30,
    )
    assert answer.headers["location"] == "/ui/sign-in?next=/ui/"


def test_a_group_whose_own_data_failed_is_not_retried_and_a_short_id_finds_its_batch(
    service: LocalService,
) -> None:
    dbs = service.dbs
    play = add_normalize_split_play(dbs)
    batch = upload(dbs, apollo_csv(40, 8, seed=6, underivable_fraction=0.3), play)
    service.runtime.run_batch(batch.batch_id, timeout=60)
    session, token = _signed_in(service)
    failed = "SELECT count(*) AS n FROM workflow_states WHERE status = 'FAILED'"
    with dbs.hq.connection() as conn:
        before = conn.execute(failed).fetchone()
    assert before is not None and before["n"] > 0
    answer = session.post(
        f"{service.server.url}/ui/batches/{batch.batch_id}/retry",
        data={
            "step": "normalize_all_core_values",
            "reason": "no_company_domain",
            "csrf_token": token,
        },
        timeout=30,
    )
    assert answer.status_code == 422 and "fail the same way" in answer.text
    with dbs.hq.connection() as conn:
        assert conn.execute(failed).fetchone() == before
    short = session.get(
        f"{service.server.url}/ui/batches/{str(batch.batch_id)[:8]}", allow_redirects=False
    )
    assert short.headers["location"] == f"/ui/batches/{batch.batch_id}"
