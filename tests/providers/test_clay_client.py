"""ClayClient and TokenBucket against real local HTTP servers (no mocked requests)."""

from __future__ import annotations

import base64
import datetime as dt
import importlib.util
import json
import logging
import math
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from orchestrator.providers.clay_client import (
    AUTH_HEADER,
    ClayClient,
    ClayDeliveryError,
    parse_retry_after,
)
from orchestrator.providers.ratelimit import TokenBucket, bucket_for, reset_buckets
from orchestrator.providers.simulators.clay import ClaySimulator, SimulatorConfig

TOKEN = "super-secret-token-123"


class FakeTime:
    """A clock that only moves when something sleeps on it; records the sleeps."""

    def __init__(self, advance: bool = True) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.advance = advance

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.advance:
            self.now += seconds


@dataclass
class Scripted:
    """A webhook answering a scripted sequence of (status, headers) responses."""

    url: str
    script: list[tuple[int, dict[str, str]]]
    requests: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    state = Scripted(url="", script=[])
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # avoid delayed-ACK stalls on keep-alive

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                state.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status, headers = state.script.pop(0) if state.script else (200, {})
            payload = json.dumps({"ok": status < 300}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/company?tag=q-secret"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def row(**extra: Any) -> dict[str, Any]:
    return {
        "entity_type": "company",
        "entity_id": str(uuid.uuid4()),
        "workflow_slug": "company-enrichment",
        "callback_url": "http://127.0.0.1:9/callbacks",
        "callback_token": "cb-token",
        "domain": "acme.com",
        "name": "Acme",
        "linkedin_url": None,
        "employees": 12,
        "industry": None,
        **extra,
    }


def client_for(url: str, fake: FakeTime, token: str | None = TOKEN, **kwargs: Any) -> ClayClient:
    bucket = TokenBucket(math.inf, clock=fake.monotonic, sleep=fake.sleep)
    return ClayClient(url, token, sleep=fake.sleep, bucket=bucket, timeout=5, **kwargs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- ClayClient ------------------------------------------------------------


def test_success_sends_row_and_auth_header(scripted: Scripted) -> None:
    fake = FakeTime()
    payload = row()
    result = client_for(scripted.url, fake).send(payload)
    assert (result.status_code, result.attempts, result.waited_seconds) == (200, 1, 0.0)
    assert result.response_body == {"ok": True}
    headers, body = scripted.requests[0]
    assert headers[AUTH_HEADER] == TOKEN
    assert headers["content-type"] == "application/json"
    assert body == payload


def test_no_auth_header_without_token(scripted: Scripted) -> None:
    client_for(scripted.url, FakeTime(), token=None).send(row())
    assert AUTH_HEADER not in scripted.requests[0][0]


def test_429_waits_at_least_retry_after(scripted: Scripted) -> None:
    scripted.script = [(429, {"Retry-After": "3"})]
    fake = FakeTime()
    result = client_for(scripted.url, fake, backoff_base=0.01).send(row())
    assert (result.status_code, result.attempts) == (200, 2)
    assert max(fake.sleeps) >= 3
    assert result.waited_seconds >= 3


def test_retry_after_http_date_is_honoured(scripted: Scripted) -> None:
    when = format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30), usegmt=True)
    scripted.script = [(503, {"Retry-After": when})]
    fake = FakeTime()
    result = client_for(scripted.url, fake, backoff_base=0.01).send(row())
    assert result.attempts == 2
    assert 25 <= max(fake.sleeps) <= 31


def test_429_penalizes_the_shared_bucket(scripted: Scripted) -> None:
    scripted.script = [(429, {"Retry-After": "5"})]
    client_sleep = FakeTime(advance=False)  # records, does not move the bucket's clock
    bucket_time = FakeTime()
    bucket = TokenBucket(math.inf, clock=bucket_time.monotonic, sleep=bucket_time.sleep)
    client = ClayClient(
        scripted.url, TOKEN, sleep=client_sleep.sleep, bucket=bucket, backoff_base=0.01
    )
    assert client.send(row()).attempts == 2
    # The second attempt had to wait out the penalty inside the bucket, which is
    # what every other sender of the same webhook would have to do as well.
    assert sum(bucket_time.sleeps) >= 5


def test_503_twice_then_200_against_simulator() -> None:
    with ClaySimulator(SimulatorConfig(fail_first_n_submissions=2, drop_rate=1.0)) as sim:
        fake = FakeTime()
        result = client_for(sim.webhook_url("company"), fake, backoff_base=0.2).send(row())
        assert (result.status_code, result.attempts) == (200, 3)
        assert result.response_body["status"] == "accepted"  # type: ignore[index]
        assert len(fake.sleeps) == 2
        # Full jitter: each sleep within [0, base * 2**(attempt-1)].
        assert 0 <= fake.sleeps[0] <= 0.2
        assert 0 <= fake.sleeps[1] <= 0.4
        assert sim.rejected[503] == 2
        assert sim.submission_count() == 1


def test_5xx_exhausts_attempts(scripted: Scripted) -> None:
    scripted.script = [(500, {})] * 10
    fake = FakeTime()
    with pytest.raises(ClayDeliveryError) as info:
        client_for(scripted.url, fake, max_attempts=4, backoff_max=1.0).send(row())
    assert (info.value.status_code, info.value.attempts) == (500, 4)
    assert info.value.retryable
    assert len(scripted.requests) == 4
    assert all(s <= 1.0 for s in fake.sleeps)
    assert "HTTP 500" in str(info.value)


def test_connection_refused_raises_after_max_attempts() -> None:
    url = f"http://127.0.0.1:{free_port()}/webhooks/company?key=q-secret"
    fake = FakeTime()
    with pytest.raises(ClayDeliveryError) as info:
        client_for(url, fake, max_attempts=3).send(row())
    error = info.value
    assert error.status_code is None
    assert error.attempts == 3
    assert len(fake.sleeps) == 2
    assert "127.0.0.1" in str(error)
    assert "ConnectionError" in str(error)
    assert "q-secret" not in str(error)
    # No chained requests exception (its text carries the full URL).
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


def test_400_is_not_retried() -> None:
    with ClaySimulator(SimulatorConfig()) as sim:
        fake = FakeTime()
        bad = row()
        del bad["callback_url"]
        with pytest.raises(ClayDeliveryError) as info:
            client_for(sim.webhook_url("company"), fake).send(bad)
    assert (info.value.status_code, info.value.attempts) == (400, 1)
    assert not info.value.retryable
    assert fake.sleeps == []
    assert "callback_url" in info.value.response_body["error"]  # type: ignore[index]


def test_token_never_leaks_on_auth_failure() -> None:
    with ClaySimulator(SimulatorConfig(auth_token="the-right-one")) as sim:
        url = sim.webhook_url("company") + "?sig=q-secret"
        client = client_for(url, FakeTime())
        with pytest.raises(ClayDeliveryError) as info:
            client.send(row())
    error = info.value
    assert (error.status_code, error.attempts) == (401, 1)
    for text in (str(error), repr(error), repr(client), error.message):
        assert TOKEN not in text
        assert "q-secret" not in text
        assert "/webhooks/" not in text
    assert "127.0.0.1" in str(error)
    assert "HTTP 401" in str(error)


def test_redirect_is_not_followed(scripted: Scripted) -> None:
    scripted.script = [(302, {"Location": "/elsewhere"})]
    with pytest.raises(ClayDeliveryError) as info:
        client_for(scripted.url, FakeTime()).send(row())
    assert (info.value.status_code, info.value.attempts) == (302, 1)
    assert len(scripted.requests) == 1


def test_unserializable_row_is_a_delivery_error(scripted: Scripted) -> None:
    with pytest.raises(ClayDeliveryError) as info:
        client_for(scripted.url, FakeTime()).send(row(employees=float("nan")))
    assert info.value.attempts == 0
    assert not info.value.retryable
    assert scripted.requests == []


def test_uuid_and_dates_are_serialized(scripted: Scripted) -> None:
    entity_id = uuid.uuid4()
    client_for(scripted.url, FakeTime()).send(row(entity_id=entity_id))
    assert scripted.requests[0][1]["entity_id"] == str(entity_id)


def test_parallel_senders_recover_from_simulator_rate_limit() -> None:
    reset_buckets()
    config = SimulatorConfig(rate_limit_per_second=10, drop_rate=1.0)
    with ClaySimulator(config) as sim:
        url = sim.webhook_url("company")
        # The client is allowed more than the server accepts: 429s will happen
        # and must be absorbed by Retry-After + the shared bucket penalty.
        client = ClayClient(url, None, rate_per_second=1000, backoff_base=0.05)
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: client.send(row()), range(25)))
        client.close()
        assert all(r.status_code == 200 for r in results)
        assert sim.submission_count() == 25
        assert sim.rejected[429] >= 1
        assert client.bucket is bucket_for(url, 1.0)


def test_parse_retry_after() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0


# -- TokenBucket -----------------------------------------------------------


def test_bucket_paces_to_rate() -> None:
    fake = FakeTime()
    bucket = TokenBucket(5, burst=5, clock=fake.monotonic, sleep=fake.sleep)
    waited = sum(bucket.acquire() for _ in range(15))
    # 5 from the initial burst, then 10 more at 5/s.
    assert waited == pytest.approx(2.0)
    assert fake.now - 1000.0 == pytest.approx(2.0)


def test_bucket_penalize_blocks_and_does_not_bank_tokens() -> None:
    fake = FakeTime()
    bucket = TokenBucket(10, clock=fake.monotonic, sleep=fake.sleep)
    bucket.penalize(3)
    assert bucket.blocked_for() == pytest.approx(3)
    assert bucket.acquire() == pytest.approx(3.1)  # penalty, then one token's refill
    # Nothing accrued during the penalty: the next token needs another 0.1 s.
    assert bucket.try_acquire() == pytest.approx(0.1)
    bucket.penalize(1)
    bucket.penalize(0.5)  # a shorter penalty never shortens a longer one
    assert bucket.blocked_for() == pytest.approx(1)


def test_unlimited_bucket_never_waits() -> None:
    fake = FakeTime()
    for rate in (0, -1, math.inf):
        bucket = TokenBucket(rate, clock=fake.monotonic, sleep=fake.sleep)
        assert sum(bucket.acquire() for _ in range(1000)) == 0
    assert fake.sleeps == []


def test_bucket_rejects_impossible_requests() -> None:
    with pytest.raises(ValueError):
        TokenBucket(5, burst=2).acquire(3)
    with pytest.raises(ValueError):
        TokenBucket(5, burst=0)


def test_bucket_is_thread_safe() -> None:
    bucket = TokenBucket(200, burst=1)
    start = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: bucket.acquire(), range(101)))
    # 1 burst token + 100 at 200/s: at least 0.5 s, whatever the interleaving.
    assert time.monotonic() - start >= 0.45


def test_bucket_for_shares_per_key() -> None:
    reset_buckets()
    first = bucket_for("http://a/webhook", 5)
    assert bucket_for("http://a/webhook", 50) is first
    assert bucket_for("http://b/webhook", 5) is not first
    reset_buckets()
    assert bucket_for("http://a/webhook", 5) is not first


# -- proxies and connections -----------------------------------------------

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def _proxy_env(monkeypatch: pytest.MonkeyPatch, proxy: str) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy)


def _proxy_address(scripted: Scripted) -> str:
    return scripted.url.split("/")[2]  # host:port of the fake, which acts as the proxy


def test_proxy_credentials_go_in_proxy_authorization(
    scripted: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    _proxy_env(monkeypatch, f"http://user:p%40ss@{_proxy_address(scripted)}")
    client = client_for("http://clay.example/webhooks/company", FakeTime())
    assert client.send(row()).status_code == 200
    headers, _ = scripted.requests[0]
    assert headers["host"] == "clay.example"
    assert headers["proxy-authorization"] == "Basic " + base64.b64encode(b"user:p@ss").decode()


def test_a_proxy_without_a_scheme_is_an_http_proxy(
    scripted: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    _proxy_env(monkeypatch, _proxy_address(scripted))
    client = client_for("http://clay.example/webhooks/company", FakeTime())
    assert client.send(row()).status_code == 200
    assert scripted.requests[0][0]["host"] == "clay.example"


def test_a_proxy_that_cannot_be_used_fails_each_row_with_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if importlib.util.find_spec("socks") is not None:
        pytest.skip("PySocks is installed here: SOCKS proxies work")
    _proxy_env(monkeypatch, "socks5://user:secret@127.0.0.1:1080")
    client = client_for("http://clay.example/webhooks/company", FakeTime())
    with pytest.raises(ClayDeliveryError) as failed:
        client.send(row())
    assert not failed.value.retryable
    assert "PySocks" in failed.value.message and "secret" not in failed.value.message


def test_as_many_connections_as_sending_threads(
    scripted: Scripted, caplog: pytest.LogCaptureFixture
) -> None:
    """Each sending thread keeps its keep-alive connection: none is opened and dropped."""
    client = client_for(scripted.url, FakeTime())
    with caplog.at_level(logging.WARNING, logger="urllib3"), ThreadPoolExecutor(32) as pool:
        for _ in range(3):
            list(pool.map(lambda _: client.send(row()), range(32)))
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
