"""ClaySimulator over real HTTP: a tiny receiver records what the simulator calls back."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from orchestrator.providers.simulators.clay import (
    KNOWN_COMPANIES,
    ClaySimulator,
    SimulatorConfig,
    synthesize,
)

AUTH = "x-clay-webhook-auth"


@dataclass
class Receiver:
    """Records callbacks; answers `status` (settable) to every POST."""

    url: str
    status: int = 200
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def by_entity(self) -> Counter[str]:
        with self.lock:
            return Counter(body["entity_id"] for body in self.bodies)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # avoid delayed-ACK stalls on keep-alive

        def do_POST(self) -> None:
            rec = state["receiver"]
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with rec.lock:
                rec.bodies.append(json.loads(body))
                rec.headers.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(rec.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state["receiver"] = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/callbacks")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield state["receiver"]
    server.shutdown()
    server.server_close()
    thread.join()


def company_row(receiver: Receiver, n: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "entity_type": "company",
        "entity_id": str(uuid.uuid4()),
        "workflow_slug": "company-enrichment",
        "callback_url": receiver.url,
        "callback_token": f"tok-{n}",
        "domain": f"acme{n}.com",
        "name": f"Acme {n}",
        "linkedin_url": None,
        "employees": None,
        "industry": None,
        **extra,
    }


def person_row(receiver: Receiver, n: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "entity_type": "person",
        "entity_id": str(uuid.uuid4()),
        "workflow_slug": "person-enrichment",
        "callback_url": receiver.url,
        "callback_token": f"ptok-{n}",
        "first_name": "Ada",
        "last_name": f"Lovelace{n}",
        "full_name": f"Ada Lovelace{n}",
        "email": f"ada{n}@acme.com",
        "linkedin_url": None,
        "title": "VP of Engineering",
        "company_domain": "acme.com",
        "company_name": "Acme",
        **extra,
    }


@pytest.fixture
def make_sim() -> Iterator[Any]:
    started: list[ClaySimulator] = []

    def make(**kwargs: Any) -> ClaySimulator:
        sim = ClaySimulator(SimulatorConfig(**kwargs)).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


def post(sim: ClaySimulator, row: Any, name: str = "company", **headers: str) -> requests.Response:
    return requests.post(sim.webhook_url(name), json=row, headers=headers, timeout=10)


# -- submissions -----------------------------------------------------------


def test_accepts_row_and_calls_back_with_secret_and_token(
    make_sim: Any, receiver: Receiver
) -> None:
    sim = make_sim(callback_secret="s3cret", callback_secret_header="x-my-secret")
    row = company_row(receiver)
    response = post(sim, row)
    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    assert response.json()["row_id"]
    assert sim.wait_idle(10)
    assert len(receiver.bodies) == 1
    body, headers = receiver.bodies[0], receiver.headers[0]
    assert headers["x-my-secret"] == "s3cret"
    assert body == {
        "entity_id": row["entity_id"],
        "workflow_slug": "company-enrichment",
        "callback_token": "tok-0",
        "data": synthesize(row),
    }
    assert sim.callbacks_sent == 1
    assert sim.callback_statuses == Counter({200: 1})


def test_no_secret_header_when_not_configured(make_sim: Any, receiver: Receiver) -> None:
    sim = make_sim()
    post(sim, company_row(receiver))
    assert sim.wait_idle(10)
    assert "x-callback-secret" not in receiver.headers[0]


def test_auth_is_enforced(make_sim: Any, receiver: Receiver) -> None:
    sim = make_sim(auth_token="right-token")
    assert post(sim, company_row(receiver)).status_code == 401
    assert post(sim, company_row(receiver), **{AUTH: "wrong"}).status_code == 401
    assert post(sim, company_row(receiver), **{AUTH: "right-token"}).status_code == 200
    assert sim.rejected[401] == 2
    assert sim.submission_count() == 1


def test_rate_limit_answers_429_with_retry_after(make_sim: Any, receiver: Receiver) -> None:
    sim = make_sim(rate_limit_per_second=1.0, drop_rate=1.0)
    assert post(sim, company_row(receiver)).status_code == 200
    limited = post(sim, company_row(receiver))
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert sim.rejected[429] == 1
    # Limits are per webhook source: another webhook still has its budget.
    assert post(sim, person_row(receiver), name="person").status_code == 200


def test_invalid_rows_get_400(make_sim: Any, receiver: Receiver) -> None:
    sim = make_sim()
    url = sim.webhook_url("company")
    not_json = requests.post(url, data=b"{nope", timeout=10)
    assert not_json.status_code == 400
    assert "JSON" in not_json.json()["error"]
    assert post(sim, [company_row(receiver)]).status_code == 400
    for missing in ("entity_id", "callback_url", "callback_token"):
        row = company_row(receiver)
        del row[missing]
        response = post(sim, row)
        assert response.status_code == 400
        assert missing in response.json()["error"]
    assert post(sim, company_row(receiver, callback_url="ftp://x")).status_code == 400
    assert sim.rejected[400] == 6
    assert sim.submission_count() == 0


def test_unknown_path_is_404(make_sim: Any, receiver: Receiver) -> None:
    sim = make_sim()
    response = requests.post(f"{sim.url}/nothing", json=company_row(receiver), timeout=10)
    assert response.status_code == 404
    assert requests.get(f"{sim.url}/healthz", timeout=10).json() == {"status": "ok"}


def test_fail_first_n_submissions(make_sim: Any, receiver: Receiver) -> None:
    sim = make_sim(fail_first_n_submissions=3, drop_rate=1.0)
    statuses = [post(sim, company_row(receiver)).status_code for _ in range(5)]
    assert statuses == [503, 503, 503, 200, 200]
    assert sim.rejected[503] == 3
    assert sim.submission_count() == 2


def test_submit_failure_rate_rejects_without_accepting(make_sim: Any, receiver: Receiver) -> None:
    sim = make_sim(submit_failure_rate=1.0)
    assert {post(sim, company_row(receiver)).status_code for _ in range(5)} == {503}
    assert sim.submission_count() == 0
    assert sim.wait_idle(1)
    assert receiver.bodies == []


def test_counts_by_entity_type_and_webhook(make_sim: Any, receiver: Receiver) -> None:
    sim = make_sim(drop_rate=1.0)
    company = company_row(receiver)
    post(sim, company)
    post(sim, company)
    post(sim, person_row(receiver), name="person")
    assert sim.submission_count() == 3
    assert sim.submission_count("company") == 2
    assert sim.submission_count("person") == 1
    assert sim.submissions_by_entity[company["entity_id"]] == 2
    assert sim.submissions_by_webhook == Counter({"company": 2, "person": 1})
    assert [s.webhook for s in sim.submissions] == ["company", "company", "person"]


# -- callbacks -------------------------------------------------------------


def test_duplicate_rate_one_sends_at_least_two_callbacks(make_sim: Any, receiver: Receiver) -> None:
    sim = make_sim(duplicate_rate=1.0)
    rows = [company_row(receiver, n) for n in range(40)]
    for row in rows:
        assert post(sim, row).status_code == 200
    assert sim.wait_idle(10)
    counts = receiver.by_entity()
    assert all(counts[row["entity_id"]] >= 2 for row in rows)
    assert any(counts[row["entity_id"]] == 3 for row in rows)  # "possibly twice"
    assert sim.callbacks_duplicated == sum(counts.values()) - len(rows)
    # Duplicates are byte-identical copies of the original callback.
    first = [b for b in receiver.bodies if b["entity_id"] == rows[0]["entity_id"]]
    assert all(body == first[0] for body in first)


def test_drop_rate_one_sends_nothing(make_sim: Any, receiver: Receiver) -> None:
    sim = make_sim(drop_rate=1.0)
    for n in range(10):
        assert post(sim, company_row(receiver, n)).status_code == 200
    assert sim.wait_idle(5)
    assert receiver.bodies == []
    assert sim.callbacks_dropped == 10
    assert sim.callbacks_sent == 0


def test_callback_failure_sends_error_without_data(make_sim: Any, receiver: Receiver) -> None:
    sim = make_sim(callback_failure_rate=1.0)
    row = person_row(receiver)
    post(sim, row, name="person")
    assert sim.wait_idle(10)
    (body,) = receiver.bodies
    assert set(body) == {"entity_id", "workflow_slug", "callback_token", "error"}
    assert body["callback_token"] == row["callback_token"]
    assert sim.callbacks_errored == 1


def test_callback_retried_on_receiver_5xx(make_sim: Any, receiver: Receiver) -> None:
    receiver.status = 500
    sim = make_sim()
    post(sim, company_row(receiver))
    assert sim.wait_idle(10)
    assert len(receiver.bodies) == 3  # one try + 2 retries
    assert sim.callback_statuses == Counter({500: 3})
    assert sim.callbacks_failed == 1
    assert sim.callback_outcomes[0].attempts == 3


def test_callback_to_unreachable_receiver_is_recorded(make_sim: Any, receiver: Receiver) -> None:
    sim = make_sim(callback_timeout=2.0)
    post(sim, company_row(receiver, callback_url="http://127.0.0.1:9/cb"))
    assert sim.wait_idle(10)
    (outcome,) = sim.callback_outcomes
    assert outcome.status is None
    assert outcome.error == "ConnectionError"
    assert sim.callbacks_failed == 1


def test_delayed_callbacks_arrive_and_stop_discards_pending(
    make_sim: Any, receiver: Receiver
) -> None:
    sim = make_sim(callback_delay_seconds=0.2, callback_jitter_seconds=0.1)
    post(sim, company_row(receiver, 1))
    assert sim.wait_idle(10)
    assert len(receiver.bodies) == 1

    slow = make_sim(callback_delay_seconds=60)
    for n in range(5):
        post(slow, company_row(receiver, n))
    assert slow.pending_callbacks == 5
    assert not slow.wait_idle(0.05)
    slow.stop()
    assert slow.wait_idle(0)
    assert slow.callbacks_dropped == 5
    assert len(receiver.bodies) == 1


def test_thousand_rows_all_call_back(make_sim: Any, receiver: Receiver) -> None:
    sim = make_sim(callback_workers=16)
    rows = [company_row(receiver, n) for n in range(1000)]
    local = threading.local()

    def send(row: dict[str, Any]) -> int:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        session: requests.Session = local.session
        return session.post(sim.webhook_url("company"), json=row, timeout=10).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(send, rows))
    assert statuses == [200] * 1000
    assert sim.wait_idle(60)
    assert sim.callbacks_sent == 1000
    assert set(receiver.by_entity()) == {row["entity_id"] for row in rows}
    assert all(count == 1 for count in receiver.by_entity().values())


def test_stop_refuses_new_connections(receiver: Receiver) -> None:
    with ClaySimulator(SimulatorConfig()) as sim:
        url = sim.webhook_url("company")
        session = requests.Session()
        assert session.post(url, json=company_row(receiver), timeout=5).status_code == 200
        assert sim.wait_idle(5)
    with pytest.raises(requests.ConnectionError):
        session.post(url, json=company_row(receiver), timeout=5)


# -- synthetic data --------------------------------------------------------


def test_synthesize_is_deterministic_and_ignores_entity_id(receiver: Receiver) -> None:
    row = person_row(receiver)
    again = {**row, "entity_id": str(uuid.uuid4()), "callback_token": "other"}
    assert synthesize(row) == synthesize(again)
    company = company_row(receiver)
    assert synthesize(company) == synthesize({**company, "entity_id": "x"})
    assert synthesize(company) != synthesize(company_row(receiver, 1))


def test_same_row_gives_same_callback_data_across_runs(make_sim: Any, receiver: Receiver) -> None:
    row = person_row(receiver)
    for seed in (1, 2):
        sim = make_sim(seed=seed)
        post(sim, {**row, "entity_id": str(uuid.uuid4())}, name="person")
        assert sim.wait_idle(10)
    first, second = receiver.bodies
    assert first["data"] == second["data"] == synthesize(row)


def test_company_shape(receiver: Receiver) -> None:
    data = synthesize(company_row(receiver, 7, employees=120, industry="Fintech"))
    assert set(data) == {
        "domain", "name", "industry", "employee_count", "founded_year", "hq_city",
        "hq_country", "description", "linkedin_url", "annual_revenue_range", "technologies",
    }  # fmt: skip
    assert data["domain"] == "acme7.com"
    assert data["name"] == "Acme 7"
    assert data["industry"] == "Fintech"
    assert data["employee_count"] == 120
    assert data["annual_revenue_range"] == "$10M-50M"
    assert 3 <= len(data["technologies"]) <= 8


def test_person_work_history(receiver: Receiver) -> None:
    known = {c.domain: c.name for c in KNOWN_COMPANIES}
    assert len(known) >= 40
    lengths = set()
    for n in range(200):
        data = synthesize(person_row(receiver, n))
        history = data["work_history"]
        lengths.add(len(history))
        assert 1 <= len(history) <= 5
        current = [job for job in history if job["is_current"]]
        assert current == [history[0]]
        assert current[0]["company"] == "Acme"
        assert current[0]["company_domain"] == "acme.com"
        assert current[0]["end_date"] is None
        for job in history[1:]:
            assert known[job["company_domain"]] == job["company"]
            assert re.fullmatch(r"\d{4}-\d\d-\d\d", job["end_date"])
            assert job["start_date"] < job["end_date"]
        assert data["seniority"] == "vp"
        assert data["email"] == f"ada{n}@acme.com"
        assert isinstance(data["email_verified"], bool)
        assert data["linkedin_url"].startswith("https://www.linkedin.com/in/")
    assert lengths == {1, 2, 3, 4, 5}


def test_person_without_company_gets_a_known_current_employer(receiver: Receiver) -> None:
    row = person_row(receiver, email=None, company_domain=None, company_name=None, title=None)
    data = synthesize(row)
    current = data["work_history"][0]
    assert (current["company"], current["company_domain"]) in KNOWN_COMPANIES
    assert data["full_name"] == "Ada Lovelace0"
    assert data["title"]


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="drop_rate"):
        SimulatorConfig(drop_rate=1.5)
    with pytest.raises(ValueError, match="callback_workers"):
        SimulatorConfig(callback_workers=0)
    assert "hidden" not in repr(SimulatorConfig(auth_token="hidden", callback_secret="hidden"))


# -- standalone ------------------------------------------------------------


def test_main_runs_standalone(receiver: Receiver) -> None:
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [
        sys.executable,
        "-m",
        "orchestrator.providers.simulators.clay",
        "--port",
        "0",
        "--delay",
        "0",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"(http://\S+)/webhooks/", line)
        assert match, line
        response = requests.post(
            f"{match.group(1)}/webhooks/company", json=company_row(receiver), timeout=10
        )
        assert response.status_code == 200
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
        assert "accepted=1" in out
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_record_history_off_keeps_counters_only(make_sim: Any, receiver: Receiver) -> None:
    sim = make_sim(record_history=False)
    for n in range(5):
        post(sim, company_row(receiver, n))
    assert sim.wait_idle(10)
    assert sim.submission_count() == 5
    assert sim.callbacks_sent == 5
    assert sim.submissions == []
    assert sim.callback_outcomes == []
