"""The Clay simulator enforces Clay's workspace limits and reports what it saw (GET /stats).

Real HTTP with `requests`, no mocks. Timing-dependent figures are asserted exactly
only when the measured client-side timings make them certain; otherwise the
bounds the token-bucket semantics guarantee are asserted.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from orchestrator.providers.simulators.clay import ClaySimulator, SimulatorConfig
from orchestrator.providers.simulators.clay.state import Traffic

# Nothing listens there: callbacks fail at once (connection refused) and are counted.
DEAD_CALLBACK = "http://127.0.0.1:9/receivers/company"
STATS_KEYS = {
    "received",
    "accepted",
    "rejected",
    "accepted_by_webhook",
    "duplicates",
    "max_accepted_in_1s",
    "max_received_in_1s",
    "max_rate_10s",
    "workspace_rate_per_second",
    "workspace_burst",
    "webhook_lifetime_limit",
    "callbacks_sent",
    "callbacks_failed",
    "pending_callbacks",
}


def row(entity_id: str | None = None, slug: str = "enrich_company", **extra: Any) -> dict[str, Any]:
    return {
        "entity_id": entity_id or uuid.uuid4().hex,
        "workflow_slug": slug,
        "callback_token": uuid.uuid4().hex,
        "callback_url": DEAD_CALLBACK,
        "domain": "example.com",
        **extra,
    }


def body_of_size(size: int) -> bytes:
    """A valid row serialized to exactly `size` bytes."""
    base = row(pad="")
    data = json.dumps({**base, "pad": "x" * (size - len(json.dumps(base).encode()))}).encode()
    assert len(data) == size
    return data


@contextmanager
def running(**options: Any) -> Iterator[ClaySimulator]:
    config = SimulatorConfig(callback_retries=0, callback_timeout=2.0, **options)
    with ClaySimulator(config) as sim:
        yield sim


def stats_of(sim: ClaySimulator) -> dict[str, Any]:
    response = requests.get(f"{sim.url}/stats", timeout=10)
    assert response.status_code == 200
    stats: dict[str, Any] = response.json()
    assert stats.keys() >= STATS_KEYS
    return stats


def retry_after(response: requests.Response) -> int:
    value = response.headers["Retry-After"]
    assert value.isdigit(), value  # whole seconds
    assert int(value) >= 1
    return int(value)


# -- workspace rate limit --------------------------------------------------------


def test_one_workspace_bucket_is_shared_by_every_webhook_name() -> None:
    rate, burst = 5.0, 5
    with running(workspace_rate_per_second=rate, workspace_burst=burst) as sim:
        session = requests.Session()
        started = time.monotonic()
        names = ["company-1", "company-2"] * 15
        responses = [
            (name, session.post(sim.webhook_url(name), json=row(), timeout=10)) for name in names
        ]
        elapsed = time.monotonic() - started
        accepted = [name for name, r in responses if r.status_code == 200]
        limited = [(name, r) for name, r in responses if r.status_code != 200]

        # The bucket starts full, so the first `burst` rows are accepted; after
        # that it never holds more than burst + rate x elapsed tokens in total.
        assert [r.status_code for _, r in responses[:burst]] == [200] * burst
        assert burst <= len(accepted) <= burst + math.floor(rate * elapsed) + 1
        for _, response in limited:
            assert response.status_code == 429
            assert "error" in response.json()
            assert retry_after(response) <= math.ceil(1 / rate)
        # Both names hit the one shared limit: 15 rows each, 5 + 5 tokens would
        # have been free with a bucket per name.
        assert {name for name, _ in limited} == {"company-1", "company-2"}

        assert sim.wait_idle(10)
        stats = stats_of(sim)
        assert stats["received"] == 30
        assert stats["accepted"] == len(accepted)
        assert stats["rejected"] == {"429": len(limited)}
        assert sum(stats["accepted_by_webhook"].values()) == len(accepted)
        assert stats["workspace_rate_per_second"] == rate
        assert stats["workspace_burst"] == burst
        # Rejected rows schedule no callback: one (failed) callback per accepted row.
        assert stats["callbacks_failed"] == len(accepted)
        assert stats["callbacks_sent"] == 0
        assert stats["pending_callbacks"] == 0


def test_an_exhausted_workspace_refuses_another_webhook_name_too() -> None:
    rate, burst = 0.2, 3  # a token every 5 s: none accrues during the test
    with running(workspace_rate_per_second=rate, workspace_burst=burst, drop_rate=1.0) as sim:
        codes = [
            requests.post(sim.webhook_url("company-1"), json=row(), timeout=10).status_code
            for _ in range(burst)
        ]
        assert codes == [200] * burst
        started = time.monotonic()
        first = requests.post(sim.webhook_url("company-1"), json=row(), timeout=10)
        other = requests.post(sim.webhook_url("person-1"), json=row(), timeout=10)
        elapsed = time.monotonic() - started
        assert first.status_code == 429
        assert 1 <= retry_after(first) <= math.ceil(1 / rate)
        # Only a token accrued since `first` was refused could let `other` through.
        assert other.status_code == 429 or elapsed >= 1 / rate
        if other.status_code == 429:
            retry_after(other)
        assert sim.submissions_by_webhook == {"company-1": burst}


# -- payload cap ---------------------------------------------------------------------


def test_payload_cap_answers_413_above_it_and_accepts_exactly_it() -> None:
    cap = 2_000
    with running(max_payload_bytes=cap, drop_rate=1.0) as sim:
        session = requests.Session()  # keep-alive: a 413 must leave the connection usable
        headers = {"Content-Type": "application/json"}
        url = sim.webhook_url("company-1")

        at_cap = session.post(url, data=body_of_size(cap), headers=headers, timeout=10)
        assert at_cap.status_code == 200, at_cap.text

        over = session.post(url, data=body_of_size(cap + 1), headers=headers, timeout=10)
        assert over.status_code == 413
        assert over.json() == {"error": f"payload of {cap + 1} bytes is over the {cap}-byte limit"}

        again = session.post(url, data=body_of_size(cap - 1), headers=headers, timeout=10)
        assert again.status_code == 200

        # Over the server's absolute 1 MB guard the body is discarded unread.
        huge = session.post(url, data=body_of_size(1_200_000), headers=headers, timeout=30)
        assert huge.status_code == 413
        assert huge.json() == {"error": f"payload of 1200000 bytes is over the {cap}-byte limit"}

        stats = stats_of(sim)
        assert (stats["received"], stats["accepted"]) == (4, 2)
        assert stats["rejected"] == {"413": 2}
        assert stats["max_payload_bytes"] == cap


# -- lifetime limit ------------------------------------------------------------------


def test_lifetime_limit_is_per_webhook_name_and_not_retryable() -> None:
    with running(webhook_lifetime_limit=3, drop_rate=1.0) as sim:
        codes = [
            requests.post(sim.webhook_url("company-1"), json=row(), timeout=10).status_code
            for _ in range(3)
        ]
        assert codes == [200, 200, 200]
        spent = requests.post(sim.webhook_url("company-1"), json=row(), timeout=10)
        assert spent.status_code == 410
        assert spent.json() == {
            "error": "webhook source company-1 has reached its lifetime limit of 3 submissions"
        }
        assert "Retry-After" not in spent.headers
        other = requests.post(sim.webhook_url("company-2"), json=row(), timeout=10)
        assert other.status_code == 200

        stats = stats_of(sim)
        assert stats["accepted_by_webhook"] == {"company-1": 3, "company-2": 1}
        assert stats["rejected"] == {"410": 1}
        assert stats["webhook_lifetime_limit"] == 3


def test_rows_refused_for_another_reason_do_not_use_up_the_lifetime() -> None:
    with running(webhook_lifetime_limit=1, submit_failure_rate=1.0) as sim:
        codes = [
            requests.post(sim.webhook_url("company-1"), json=row(), timeout=10).status_code
            for _ in range(3)
        ]
        assert codes == [503, 503, 503]  # never 410: nothing was accepted
        assert stats_of(sim)["accepted_by_webhook"] == {}


# -- /stats --------------------------------------------------------------------------


def test_stats_count_what_was_sent_and_duplicates_per_workflow() -> None:
    with running() as sim:
        sends = [
            ("company-1", row("e1")),
            ("company-2", row("e1")),  # e1 again, same workflow: a duplicate
            ("company-2", row("e1")),  # a third time: still one duplicate entity
            ("company-1", row("e2", slug="enrich_company")),
            ("person-1", row("e2", slug="enrich_person")),  # other workflow: not one
            ("company-3", row("e3")),
        ]
        for name, payload in sends:
            assert requests.post(sim.webhook_url(name), json=payload, timeout=10).ok
        bad = requests.post(sim.webhook_url("company-1"), data=b"not json", timeout=10)
        assert bad.status_code == 400
        assert requests.post(f"{sim.url}/elsewhere", json=row(), timeout=10).status_code == 404
        assert sim.wait_idle(10)

        stats = stats_of(sim)
        elapsed = {"seconds_since_first_post": stats["seconds_since_first_post"]}
        assert stats == sim.stats() | elapsed  # GET /stats is stats()
        assert stats["received"] == 8
        assert stats["accepted"] == 6
        assert stats["rejected"] == {"400": 1, "404": 1}
        assert stats["accepted_by_webhook"] == {
            "company-1": 2,
            "company-2": 2,
            "person-1": 1,
            "company-3": 1,
        }
        assert stats["duplicates"] == 1
        assert stats["duplicate_submissions"] == 2
        assert stats["duplicates_by_webhook"] == {"company-2": 2}
        assert sum(stats["received_per_second"]) == 8
        assert sum(stats["accepted_per_second"]) == 6
        assert stats["callbacks_failed"] == 6  # the receiver is down
        assert stats["pending_callbacks"] == 0
        for limit in ("workspace_rate_per_second", "workspace_burst", "webhook_lifetime_limit"):
            assert stats[limit] is None


def _burst(sim: ClaySimulator, session: requests.Session, valid: int, invalid: int) -> float:
    """Send rows back to back; return the seconds from the first send to the last reply."""
    started = time.monotonic()
    for _ in range(valid):
        assert session.post(sim.webhook_url("company-1"), json=row(), timeout=10).ok
    for _ in range(invalid):
        response = session.post(sim.webhook_url("company-2"), data=b"[]", timeout=10)
        assert response.status_code == 400
    return time.monotonic() - started


def test_window_maxima_skip_the_first_second_and_slide_exactly() -> None:
    with running(drop_rate=1.0) as sim:
        session = requests.Session()
        first_span = _burst(sim, session, valid=6, invalid=2)  # the start-up burst
        # The server's first POST arrived before this instant: what follows is
        # more than 1 s after it.
        time.sleep(1.05)
        second_span = _burst(sim, session, valid=3, invalid=2)
        time.sleep(1.05)  # more than 1 s between the two later bursts
        third_span = _burst(sim, session, valid=2, invalid=0)

        stats = stats_of(sim)
        assert (stats["received"], stats["accepted"]) == (15, 11)
        # Always true: windows starting in the first second are skipped, and the
        # later bursts are over 1 s apart.
        assert stats["max_received_in_1s"] <= 5 + 8 * (first_span >= 1)
        assert stats["max_accepted_in_1s"] <= 3 + 6 * (first_span >= 1)
        assert stats["max_rate_10s"] <= 11 / 10
        if max(first_span, second_span, third_span) < 1.0:
            assert stats["max_received_in_1s"] == 5
            assert stats["max_accepted_in_1s"] == 3
            assert stats["max_rate_10s"] == pytest.approx(5 / 10)  # 3 + 2, the first 6 skipped
            assert stats["max_received_rate_10s"] == pytest.approx(7 / 10)
            assert stats["received_per_second"][0] == 8
            assert stats["accepted_per_second"][0] == 6


def test_sliding_windows_use_exact_timestamps_not_per_second_buckets() -> None:
    traffic = Traffic()
    traffic.receive(100.0)  # the first POST: the origin
    traffic.receive(100.9)  # within the first second: no window starts before 101.0
    for n in range(10):  # 101.5 .. 102.4: straddles the second boundary at 102.0
        at = 101.5 + n * 0.1
        traffic.receive(at)
        traffic.accept(at, "company-1", "enrich_company", f"e{n}")
    snapshot = traffic.snapshot(110.0)
    assert snapshot["received_per_second"][:3] == [2, 5, 5]
    assert snapshot["max_received_in_1s"] == 10
    assert snapshot["max_accepted_in_1s"] == 10
    assert snapshot["max_rate_10s"] == pytest.approx(1.0)

    early = Traffic()
    for n in range(20):  # all within the first second
        early.receive(50.0 + n * 0.04)
    early.receive(51.0)  # a window may start exactly 1 s after the first POST
    assert early.snapshot(52.0)["max_received_in_1s"] == 1


# -- standalone process ----------------------------------------------------------------


def test_cli_prints_its_url_serves_stats_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    stats_file = tmp_path / "stats.json"
    cmd = [
        sys.executable, "-m", "orchestrator.providers.simulators.clay", "--port", "0",
        "--clay-limits", "--workspace-burst", "2", "--max-payload-bytes", "1000",
        "--lifetime-limit", "7", "--drop-rate", "1", "--callback-secret", "s3cret",
        "--stats-file", str(stats_file),
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.match(r"Clay simulator listening on (http://\S+)", line)
        assert match, line
        url = match.group(1)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)

        ok = requests.post(f"{url}/webhooks/company-1", json=row(), timeout=10)
        assert ok.status_code == 200
        big = requests.post(f"{url}/webhooks/company-1", data=body_of_size(1001), timeout=10)
        assert big.status_code == 413

        stats = requests.get(f"{url}/stats", timeout=10).json()
        assert stats.keys() >= STATS_KEYS
        assert (stats["received"], stats["accepted"], stats["rejected"]) == (2, 1, {"413": 1})
        assert stats["workspace_rate_per_second"] == 10.0  # --clay-limits
        assert stats["workspace_burst"] == 2  # given explicitly: wins over Clay's 20
        assert stats["max_payload_bytes"] == 1000
        assert stats["webhook_lifetime_limit"] == 7

        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0
        assert "accepted=1" in out.strip().splitlines()[-1]
        assert json.loads(stats_file.read_text())["accepted"] == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_config_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError, match="workspace_rate_per_second"):
        SimulatorConfig(workspace_rate_per_second=0)
    with pytest.raises(ValueError, match="workspace_burst"):
        SimulatorConfig(workspace_rate_per_second=1, workspace_burst=0)
    with pytest.raises(ValueError, match="max_payload_bytes"):
        SimulatorConfig(max_payload_bytes=2_000_000)
    with pytest.raises(ValueError, match="webhook_lifetime_limit"):
        SimulatorConfig(webhook_lifetime_limit=-1)
    real = SimulatorConfig().with_clay_limits()
    assert (real.workspace_rate_per_second, real.workspace_burst) == (10.0, 20)
    assert (real.max_payload_bytes, real.webhook_lifetime_limit) == (100_000, 50_000)
