"""The Clay simulator bills like Clay: Actions and data credits, per workflow_slug.

Real HTTP, no mocks: rows are POSTed to a running simulator and its callbacks land
on a small recording receiver. Totals are asserted as exact Decimals.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from orchestrator.providers.simulators.clay import (
    ClayPrice,
    ClaySimulator,
    SimulatorConfig,
    synthesize,
)
from orchestrator.providers.simulators.clay.billing import has_value
from orchestrator.providers.simulators.clay.cli import main

COMPANY = "company-enrichment"
PERSON = "person-enrichment"
PRICES = {
    COMPANY: ClayPrice(
        actions_per_run=Decimal(2),
        callback_actions=Decimal("0.5"),
        # A company callback always has an industry and technologies, never a phone.
        data_credits={
            "industry": Decimal("0.1"),
            "technologies": Decimal("0.25"),
            "phone": Decimal(7),
        },
    ),
    PERSON: ClayPrice(
        actions_per_run=Decimal("1.5"),
        callback_actions=Decimal("0.25"),
        data_credits={
            "email": Decimal(3),
            "full_name": Decimal("0.2"),
            "work_history": Decimal("0.1"),
            "phone": Decimal(5),
        },
    ),
}
COMPANY_RUN = Decimal(2)
COMPANY_ANSWERED = Decimal("2.5")  # run + callback Actions
COMPANY_CREDITS = Decimal("0.35")  # industry + technologies
PERSON_ANSWERED = Decimal("1.75")


@dataclass
class Receiver:
    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.bodies)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with holder[0].lock:
                holder[0].bodies.append(body)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder.append(Receiver(f"http://127.0.0.1:{server.server_address[1]}/callbacks"))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield holder[0]
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def make_sim() -> Iterator[Any]:
    started: list[ClaySimulator] = []

    def make(**options: Any) -> ClaySimulator:
        options.setdefault("prices", PRICES)
        sim = ClaySimulator(SimulatorConfig(**options)).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


def company_row(receiver: Receiver, n: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "entity_type": "company",
        "entity_id": str(uuid.uuid4()),
        "workflow_slug": COMPANY,
        "callback_url": receiver.url,
        "callback_token": f"tok-{n}",
        "domain": f"acme{n}.com",
        "name": f"Acme {n}",
        **extra,
    }


def person_row(receiver: Receiver, n: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "entity_type": "person",
        "entity_id": str(uuid.uuid4()),
        "workflow_slug": PERSON,
        "callback_url": receiver.url,
        "callback_token": f"ptok-{n}",
        "full_name": f"Ada Lovelace{n}",
        "email": f"ada{n}@acme.com",
        "company_domain": "acme.com",
        **extra,
    }


def nameless_person_row(receiver: Receiver) -> dict[str, Any]:
    """A person the enrichment finds no name and so no email for (only a LinkedIn URL)."""
    return person_row(
        receiver,
        full_name=None,
        email=None,
        company_domain=None,
        linkedin_url="https://www.linkedin.com/in/someone",
    )


def post(sim: ClaySimulator, row: Any, name: str = "rows", **headers: str) -> int:
    response = requests.post(sim.webhook_url(name), json=row, headers=headers, timeout=10)
    return response.status_code


def billing_of(sim: ClaySimulator) -> dict[str, Any]:
    response = requests.get(f"{sim.url}/stats", timeout=10)
    assert response.status_code == 200
    billing: dict[str, Any] = response.json()["billing"]
    return billing


def bill(rows: int, callbacks: int, actions: str, credits: str, no_results: int = 0) -> Any:
    return {
        "rows": rows,
        "callbacks": callbacks,
        "no_results": no_results,
        "actions": actions,
        "data_credits": credits,
    }


# -- when Clay bills ---------------------------------------------------------------


def test_acceptance_bills_actions_even_when_the_callback_is_dropped(
    make_sim: Any, receiver: Receiver
) -> None:
    sim = make_sim(drop_rate=1.0)
    for n in range(3):
        assert post(sim, company_row(receiver, n)) == 200
    assert sim.wait_idle(10)
    assert receiver.received() == []
    assert sim.billed() == (3 * COMPANY_RUN, Decimal(0))
    assert billing_of(sim) == {
        "actions": "6",
        "data_credits": "0",
        "no_result_answers": 0,
        "by_workflow": {COMPANY: bill(3, 0, "6", "0")},
    }


def test_callback_billed_once_per_row_however_often_it_is_delivered(
    make_sim: Any, receiver: Receiver
) -> None:
    # Jitter lets a row's copies go out in any order, from different workers.
    sim = make_sim(duplicate_rate=1.0, callback_jitter_seconds=0.05, callback_workers=8)
    rows = [company_row(receiver, n) for n in range(40)]
    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(lambda row: post(sim, row), rows)) == {200}
    assert sim.wait_idle(20)
    assert len(receiver.received()) >= 2 * len(rows)
    assert sim.billed() == (40 * COMPANY_ANSWERED, 40 * COMPANY_CREDITS)
    assert billing_of(sim)["by_workflow"] == {COMPANY: bill(40, 40, "100.0", "14.00")}


def test_callbacks_discarded_by_stop_are_never_billed(make_sim: Any, receiver: Receiver) -> None:
    sim = make_sim(callback_delay_seconds=60)
    for n in range(2):
        assert post(sim, company_row(receiver, n)) == 200
    sim.stop()
    assert sim.callbacks_dropped == 2
    assert sim.billed() == (2 * COMPANY_RUN, Decimal(0))


def test_callback_action_billed_even_when_the_receiver_is_unreachable(make_sim: Any) -> None:
    sim = make_sim(callback_retries=1, callback_timeout=2.0)
    dead = Receiver("http://127.0.0.1:9/callbacks")
    assert post(sim, company_row(dead)) == 200
    assert sim.wait_idle(10)
    assert sim.callbacks_failed == 1
    assert sim.billed() == (COMPANY_ANSWERED, COMPANY_CREDITS)


# -- what is billed ----------------------------------------------------------------


def test_data_credits_only_for_priced_fields_with_a_value(
    make_sim: Any, receiver: Receiver
) -> None:
    nameless = nameless_person_row(receiver)
    data = synthesize(nameless)
    assert (data["email"], data["full_name"]) == (None, "")  # what this test relies on
    assert data["work_history"]
    sim = make_sim()

    assert post(sim, person_row(receiver)) == 200
    assert sim.wait_idle(10)
    with_email = sim.billed()
    assert with_email == (PERSON_ANSWERED, Decimal("3.3"))  # email + full_name + work_history

    assert post(sim, nameless) == 200
    assert sim.wait_idle(10)
    actions, credits = sim.billed()
    assert (actions - with_email[0], credits - with_email[1]) == (
        PERSON_ANSWERED,
        Decimal("0.1"),  # work_history only: no email, a blank name
    )
    assert billing_of(sim)["by_workflow"] == {PERSON: bill(2, 2, "3.50", "3.4")}


def test_no_result_answers_cost_actions_but_no_data_credits(
    make_sim: Any, receiver: Receiver
) -> None:
    sim = make_sim(no_result_rate=1.0)
    company, person = company_row(receiver), person_row(receiver)
    assert post(sim, company) == 200
    assert post(sim, person) == 200
    assert sim.wait_idle(10)

    data_by_entity = {body["entity_id"]: body["data"] for body in receiver.received()}
    for row in (company, person):
        assert data_by_entity[row["entity_id"]] == dict.fromkeys(synthesize(row))
    assert sim.callbacks_errored == 0
    assert sim.billed() == (COMPANY_ANSWERED + PERSON_ANSWERED, Decimal(0))
    assert billing_of(sim) == {
        "actions": "4.25",
        "data_credits": "0",
        "no_result_answers": 2,
        "by_workflow": {
            COMPANY: bill(1, 1, "2.5", "0", no_results=1),
            PERSON: bill(1, 1, "1.75", "0", no_results=1),
        },
    }


def test_no_result_rate_is_deterministic_per_entity(make_sim: Any, receiver: Receiver) -> None:
    rows = [company_row(receiver, n, entity_id=f"entity-{n}") for n in range(60)]
    nothing_found: list[set[str]] = []
    for _ in range(2):
        with receiver.lock:
            receiver.bodies.clear()
        sim = make_sim(no_result_rate=0.5, seed=3)
        for row in rows:
            assert post(sim, row) == 200
        assert sim.wait_idle(10)
        answers = receiver.received()
        empty = {b["entity_id"] for b in answers if not any(map(has_value, b["data"].values()))}
        nothing_found.append(empty)
        found = len(rows) - len(empty)
        assert sim.billed() == (60 * COMPANY_ANSWERED, found * COMPANY_CREDITS)
        assert billing_of(sim)["no_result_answers"] == len(empty)
    assert nothing_found[0] == nothing_found[1]
    assert 0 < len(nothing_found[0]) < len(rows)


def test_error_callbacks_cost_no_data_credits(make_sim: Any, receiver: Receiver) -> None:
    sim = make_sim(callback_failure_rate=1.0, no_result_rate=1.0)
    assert post(sim, person_row(receiver)) == 200
    assert sim.wait_idle(10)
    (body,) = receiver.received()
    assert "error" in body
    assert "data" not in body
    assert sim.billed() == (PERSON_ANSWERED, Decimal(0))
    # An error is not a no-result answer, even with both rates at 1.
    assert billing_of(sim)["no_result_answers"] == 0


def test_unknown_or_missing_slug_costs_nothing_but_is_counted(
    make_sim: Any, receiver: Receiver
) -> None:
    sim = make_sim()
    assert post(sim, company_row(receiver, workflow_slug="not-priced")) == 200
    assert post(sim, company_row(receiver, workflow_slug=None)) == 200
    assert sim.wait_idle(10)
    assert len(receiver.received()) == 2
    assert sim.billed() == (Decimal(0), Decimal(0))
    assert billing_of(sim)["by_workflow"] == {
        "not-priced": bill(1, 1, "0", "0"),
        "": bill(1, 1, "0", "0"),
    }


def test_no_prices_bill_nothing(make_sim: Any, receiver: Receiver) -> None:
    sim = make_sim(prices={})
    assert post(sim, person_row(receiver)) == 200
    assert sim.wait_idle(10)
    assert sim.billed() == (Decimal(0), Decimal(0))
    assert billing_of(sim)["by_workflow"] == {PERSON: bill(1, 1, "0", "0")}


# -- rejected rows -----------------------------------------------------------------

# status: (config, extra row fields, headers)
REJECTIONS: dict[int, tuple[dict[str, Any], dict[str, Any], dict[str, str]]] = {
    401: ({"auth_token": "right"}, {}, {"x-clay-webhook-auth": "wrong"}),
    413: ({"max_payload_bytes": 300}, {"pad": "x" * 400}, {}),
    429: ({"workspace_rate_per_second": 0.001, "workspace_burst": 1}, {}, {}),
    410: ({"webhook_lifetime_limit": 1}, {}, {}),
    503: ({"submit_failure_rate": 1.0}, {}, {}),
}


@pytest.mark.parametrize("status", sorted(REJECTIONS))
def test_rejected_rows_cost_nothing(make_sim: Any, receiver: Receiver, status: int) -> None:
    config, extra, headers = REJECTIONS[status]
    sim = make_sim(**config)
    statuses = [post(sim, company_row(receiver, n, **extra), **headers) for n in range(3)]
    accepted = statuses.count(200)
    # 429 and 410 let the first row through; the others refuse every row.
    assert statuses == [200] * accepted + [status] * (3 - accepted)
    assert accepted == (1 if status in (429, 410) else 0)
    assert sim.wait_idle(10)
    assert sim.rejected[status] == 3 - accepted
    assert sim.billed() == (accepted * COMPANY_ANSWERED, accepted * COMPANY_CREDITS)
    expected = {COMPANY: bill(1, 1, "2.5", "0.35")} if accepted else {}
    assert billing_of(sim)["by_workflow"] == expected


# -- configuration -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field_name"),
    [
        ({"actions_per_run": Decimal(-1)}, "actions_per_run"),
        ({"callback_actions": Decimal("-0.01")}, "callback_actions"),
        ({"callback_actions": Decimal("NaN")}, "callback_actions"),
        ({"actions_per_run": True}, "actions_per_run"),
        ({"actions_per_run": "1"}, "actions_per_run"),
        ({"data_credits": {"email": Decimal(-2)}}, "data_credits"),
        ({"data_credits": {"": Decimal(1)}}, "data_credits"),
        ({"data_credits": [("email", 1)]}, "data_credits"),
    ],
)
def test_bad_prices_are_refused(options: dict[str, Any], field_name: str) -> None:
    with pytest.raises(ValueError, match=field_name):
        ClayPrice(**options)


def test_bad_simulator_billing_config_is_refused() -> None:
    with pytest.raises(ValueError, match="no_result_rate"):
        SimulatorConfig(no_result_rate=1.5)
    with pytest.raises(ValueError, match="no_result_rate"):
        SimulatorConfig(no_result_rate=-0.1)
    with pytest.raises(ValueError, match="prices"):
        SimulatorConfig(prices={COMPANY: {"actions_per_run": 1}})  # type: ignore[dict-item]


def test_prices_are_exact_copies_and_keep_the_config_hashable() -> None:
    credits = {"email": 2}  # ints and floats are taken at face value
    price = ClayPrice(actions_per_run=1, callback_actions=0.1, data_credits=credits)  # type: ignore[arg-type]
    credits["email"] = 99
    assert (price.actions_per_run, price.callback_actions) == (Decimal(1), Decimal("0.1"))
    assert price.data_credits == {"email": Decimal(2)}

    prices = {COMPANY: price}
    config = SimulatorConfig(prices=prices)
    prices.clear()
    assert config.prices == {COMPANY: price}
    hash(config)
    hash(price)
    moved = replace(config, port=1234, no_result_rate=0.5)
    assert (moved.prices, moved.no_result_rate) == (config.prices, 0.5)
    assert SimulatorConfig().prices == {}


@pytest.mark.parametrize(
    ("value", "found"),
    [
        (None, False),
        ("", False),
        ("  \t", False),
        ([], False),
        ({}, False),
        ("x", True),
        (0, True),
        (False, True),
        ([None], True),
        ({"a": None}, True),
    ],
)
def test_has_value(value: object, found: bool) -> None:
    assert has_value(value) is found


# -- command line ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read"),
        ("{nope", "Expecting"),
        ("[1, 2]", "JSON object"),
        ('{"w": 3}', "'w': must be an object"),
        ('{"w": {"actions": 1}}', "unknown keys \\['actions'\\]"),
        ('{"w": {"actions_per_run": -1}}', "'w': actions_per_run must be"),
        ('{"w": {"data_credits": {"email": "2"}}}', "data_credits\\['email'\\] must be"),
    ],
)
def test_cli_refuses_a_bad_prices_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, problem: str
) -> None:
    path = tmp_path / "prices.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        main(["--port", "0", "--prices", str(path)])
    assert exit_info.value.code == 2
    assert re.search(f"--prices {re.escape(str(path))}: .*{problem}", capsys.readouterr().err)


def test_cli_bills_at_the_prices_given_and_says_so(tmp_path: Path, receiver: Receiver) -> None:
    prices = tmp_path / "prices.json"
    # Fractional prices add up exactly: 6.3, never 6.300000000000001.
    prices.write_text(
        '{"company-enrichment": {"actions_per_run": 2, "callback_actions": 0.1,'
        ' "data_credits": {"industry": 0.2, "phone": 9}}}'
    )
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-m", "orchestrator.providers.simulators.clay", "--port", "0"]
    cmd += ["--prices", str(prices), "--no-result-rate", "1"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        match = re.search(r"listening on (http://\S+)", proc.stdout.readline())
        assert match
        url = match.group(1)
        for n in range(3):
            response = requests.post(f"{url}/webhooks/c", json=company_row(receiver, n), timeout=10)
            assert response.status_code == 200
        billing = _await_callbacks(url, 3)
        assert billing == {
            "actions": "6.3",
            "data_credits": "0",  # nothing found, so no industry to pay for
            "no_result_answers": 3,
            "by_workflow": {COMPANY: bill(3, 3, "6.3", "0", no_results=3)},
        }
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0
        assert out.strip().splitlines()[-1].endswith("billed actions=6.3 data_credits=0")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _await_callbacks(url: str, count: int) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        stats = requests.get(f"{url}/stats", timeout=10).json()
        if stats["callbacks_sent"] >= count or time.monotonic() > deadline:
            billing: dict[str, Any] = stats["billing"]
            return billing
        time.sleep(0.05)
