"""Clay's real limits from our side: webhook lists with their own tokens, lifetime submissions
(rotation, then a hold that loses nothing), one send rate per workspace shared through the
database, and the payload cap."""

from __future__ import annotations

import itertools
import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from pydantic import SecretStr

from conftest import DatabasePair
from orchestrator.db.pool import Databases
from orchestrator.providers.simulators.clay import ClaySimulator, SimulatorConfig
from orchestrator.runtimes.service import LocalService
from orchestrator.settings import Settings
from orchestrator.state.registry import WorkflowConfig, load_workflow
from orchestrator.steps import webhook_sender
from orchestrator.steps.send_rate import SharedSendRate
from orchestrator.steps.submissions import WebhooksSpentError, assign_webhooks, lock_room
from orchestrator.steps.webhook_config import (
    ClayConfigurationError,
    ClayEndpoint,
    configured_endpoints,
    token_variable,
)
from support.cli import cli_env, enrich_argv
from support.faults import set_leases, wait_until
from support.pipeline import apollo_csv, upload

COMPANY_STEP = "enrich_company_via_waterfall_in_clay"
PERSON_STEP = "enrich_person_via_waterfall_in_clay"
PLAY = "apollo-lead-enrichment"


# -- configuration ---------------------------------------------------------------------------


def test_a_url_variable_lists_webhooks_in_order_each_with_its_own_token() -> None:
    env = {
        "CLAY_COMPANY_WEBHOOK_URL": " https://api.clay.com/a,\nhttps://api.clay.com/b  https://api.clay.com/c",
        "CLAY_COMPANY_WEBHOOK_AUTH_TOKEN": "ta, tb tc",
    }
    found = configured_endpoints("CLAY_COMPANY_WEBHOOK_URL", env.get, "fallback")
    assert [(e.url, e.auth_token) for e in found] == [
        ("https://api.clay.com/a", "ta"),
        ("https://api.clay.com/b", "tb"),
        ("https://api.clay.com/c", "tc"),
    ]
    assert token_variable("CLAY_PERSON_WEBHOOK_URL") == "CLAY_PERSON_WEBHOOK_AUTH_TOKEN"
    # Without its own token variable, a workflow falls back to CLAY_WEBHOOK_AUTH_TOKEN.
    alone = configured_endpoints("X_URL", {"X_URL": "https://h/1"}.get, "fallback")
    assert alone == [ClayEndpoint("https://h/1", "fallback")]
    assert configured_endpoints("X_URL", {}.get) == []


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"X_URL": "https://h/1,https://h/2", "X_AUTH_TOKEN": "only-one"}, "2 webhook URL(s)"),
        ({"X_URL": "https://h/1;https://h/2"}, "not one http(s) URL"),
        ({"X_URL": "api.clay.com/webhook"}, "not one http(s) URL"),
        ({"X_URL": "https://h/1,https://h/1"}, "the same webhook URL twice"),
    ],
)
def test_webhook_variables_that_do_not_fit_are_refused_by_name(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ClayConfigurationError, match="X_URL") as caught:
        configured_endpoints("X_URL", env.get)
    assert message in str(caught.value)


# -- lifetime submissions --------------------------------------------------------------------


def _workflow(dbs: Databases, slug: str = COMPANY_STEP) -> WorkflowConfig:
    with dbs.hq.connection() as conn:
        return load_workflow(conn, slug)


def _counts(dbs: Databases, endpoints: list[ClayEndpoint]) -> list[int]:
    with dbs.hq.connection() as conn:
        rows = conn.execute(
            "SELECT webhook_key, submissions FROM webhook_submission_counts"
            " WHERE webhook_key = ANY(%s)",
            ([e.key for e in endpoints],),
        ).fetchall()
    found = {r["webhook_key"]: r["submissions"] for r in rows}
    return [int(found.get(e.key, 0)) for e in endpoints]


def test_rows_fill_each_webhook_before_the_next_and_none_goes_over(dbs: Databases) -> None:
    workflow = _workflow(dbs)
    hooks = [ClayEndpoint(f"https://h/{i}", None) for i in range(3)]
    with dbs.hq.connection() as conn, conn.transaction():
        plan = assign_webhooks(conn, workflow, hooks, 7, limit=5)
    assert [hooks.index(e) for e in plan] == [0] * 5 + [1] * 2
    # 16 threads race for the 8 places left.
    taken: list[int] = []
    spent: list[str] = []

    def take() -> None:
        try:
            with dbs.hq.connection() as conn, conn.transaction():
                taken.append(len(assign_webhooks(conn, workflow, hooks, 1, limit=5)))
        except WebhooksSpentError as exc:
            spent.append(exc.reason)

    threads = [threading.Thread(target=take) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(taken) == 8 and len(spent) == 8
    assert _counts(dbs, hooks) == [5, 5, 5]
    assert "CLAY_COMPANY_WEBHOOK_URL" in spent[0] and "CLAY_COMPANY_WEBHOOK_AUTH_TOKEN" in spent[0]


def test_a_chunk_the_webhooks_cannot_take_counts_nothing(dbs: Databases) -> None:
    workflow = _workflow(dbs)
    hooks = [ClayEndpoint("https://h/only", None)]
    with dbs.hq.connection() as conn:
        with conn.transaction():
            assign_webhooks(conn, workflow, hooks, 3, limit=5)
        with pytest.raises(WebhooksSpentError), conn.transaction():
            assign_webhooks(conn, workflow, hooks, 3, limit=5)
    assert _counts(dbs, hooks) == [3]


# -- one send rate per workspace -------------------------------------------------------------


def test_every_sender_of_a_workspace_shares_one_rate(dbs: Databases) -> None:
    """Two senders (two containers) of one workspace, 10 rows/s with a burst of 4: the waits
    they are told make a single schedule: 4 at once, then one every 0.1 s, whoever asks."""
    waits: list[float] = []
    lock = threading.Lock()

    def record(seconds: float) -> None:
        with lock:
            waits.append(seconds)

    senders = [SharedSendRate(dbs, "clay:test", 10.0, 4, sleep=record) for _ in range(2)]
    other = SharedSendRate(dbs, "clay:another-workspace", 10.0, 4, sleep=record)
    assert other.acquire() == 0.0  # another workspace has its own rate
    waits.clear()
    # When each reservation may send: the moment it was answered plus the wait it was told.
    told, sends = [], []
    for i in range(20):
        wait = senders[i % 2].acquire()
        told.append(wait)
        sends.append(time.monotonic() + wait)
    assert told[:4] == [0.0] * 4  # the burst goes at once
    assert len(waits) == 16  # everyone after it was made to wait
    gaps = [b - a for a, b in itertools.pairwise(sends[4:])]
    # After the burst, one every 0.1 s, alternating senders notwithstanding.
    assert all(gap == pytest.approx(0.1, abs=0.05) for gap in gaps), gaps
    assert sends[-1] - sends[0] == pytest.approx(1.6, abs=0.1)
    senders[0].penalize(5.0)
    assert senders[1].acquire() > 4.5  # Clay said 429: the whole workspace waits


# -- end to end against a Clay that keeps its limits -----------------------------------------


@contextmanager
def _clay(secret: str) -> Iterator[ClaySimulator]:
    with ClaySimulator(SimulatorConfig(callback_secret=secret)) as simulator:
        yield simulator


def _hooks(simulator: ClaySimulator, name: str, count: int) -> SecretStr:
    return SecretStr(",".join(simulator.webhook_url(f"{name}-{i}") for i in range(1, count + 1)))


def _settings(base: Settings, simulator: ClaySimulator, company: int, **kw: Any) -> Settings:
    """Clay as configured (not the built-in simulator): `company` company webhooks, and
    person webhooks enough for the small batches here (the limit applies to every webhook)."""
    return base.model_copy(
        update={
            "clay_company_webhook_url": _hooks(simulator, "company", company),
            "clay_person_webhook_url": _hooks(simulator, "person", 4),
            "callback_secret": SecretStr("limits-secret"),
            "clay_rate_per_second": 500.0,
            "clay_rate_burst": 50,
            **kw,
        }
    )


def _endpoints(urls: SecretStr | None) -> list[ClayEndpoint]:
    assert urls is not None
    return configured_endpoints("URLS", {"URLS": urls.get_secret_value()}.get, "")


def _company_posts(simulator: ClaySimulator) -> Counter[str]:
    return Counter(
        {k: v for k, v in simulator.submissions_by_webhook.items() if k.startswith("company")}
    )


def _statuses(dbs: Databases, step: str) -> dict[str, int]:
    with dbs.hq.connection() as conn:
        rows = conn.execute(
            "SELECT status, count(*) AS n FROM workflow_states WHERE step_name = %s GROUP BY 1",
            (step,),
        ).fetchall()
    return {str(r["status"]): int(r["n"]) for r in rows}


def test_three_webhooks_take_turns_and_every_company_is_sent_once(
    dbs: Databases, local_settings: Settings
) -> None:
    with _clay("limits-secret") as clay:
        settings = _settings(local_settings, clay, 3, clay_webhook_submission_limit=4)
        batch = upload(dbs, apollo_csv(12, 10, seed=3), PLAY).batch_id
        with LocalService(settings, dbs) as service:
            assert service.simulator is None  # Clay as configured, not the built-in one
            assert "clay=127.0.0.1" in service.targets_line()
            final = service.runtime.run_batch(batch, timeout=120)
        assert final.done and not final.held
        posts = _company_posts(clay)
        assert sum(posts.values()) == 10 and max(posts.values()) <= 4
        assert sorted(posts) == ["company-1", "company-2", "company-3"]
        assert all(n == 1 for n in clay.submissions_by_entity.values())


def test_senders_count_their_rows_without_holding_the_webhooks_while_they_claim(
    dbs: Databases, local_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Senders of one workflow once held its webhooks' counts locked through their whole
    claim (0.3 s a chunk) and queued behind each other; they count in a moment of their own,
    and give back what the chunk does not send."""
    claim = webhook_sender.claim_chunk
    probes: list[bool] = []

    def probing_claim(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        with dbs.hq.connection() as other:
            try:
                other.execute("SELECT 1 FROM webhook_submission_counts FOR UPDATE NOWAIT")
                probes.append(True)
            except psycopg.errors.LockNotAvailable:
                probes.append(False)
            other.rollback()
        return claim(*args, **kwargs)

    monkeypatch.setattr(webhook_sender, "claim_chunk", probing_claim)
    with _clay("limits-secret") as clay:
        settings = _settings(local_settings, clay, 2, clay_webhook_submission_limit=40)
        with dbs.hq.connection() as conn:  # the counts' rows exist, as after a first batch
            for url in (settings.clay_company_webhook_url, settings.clay_person_webhook_url):
                lock_room(conn, _endpoints(url), 40)
        batch = upload(dbs, apollo_csv(30, 8, seed=5), PLAY).batch_id
        with LocalService(settings, dbs) as service:
            final = service.runtime.run_batch(batch, timeout=120)
        assert final.done
        posts = _company_posts(clay)
    assert probes and all(probes), probes
    # Each chunk counted its 30 items' worth and gave back all but the 8 companies it sent.
    hooks = _endpoints(settings.clay_company_webhook_url)
    assert sum(_counts(dbs, hooks)) == sum(posts.values()) == 8


def test_chunks_sent_at_once_count_only_what_they_can_send(
    dbs: Databases, local_settings: Settings
) -> None:
    """Two chunks of 500 rows at once, 400 companies, 600 submissions: a chunk that counted
    all its rows, to give most back after its claim, left the other too little room, and the
    workflow was held as spent with 300 companies unsent."""
    with _clay("limits-secret") as clay:
        settings = _settings(local_settings, clay, 1, clay_webhook_submission_limit=600)
        batch = upload(dbs, apollo_csv(1000, 400, seed=3), PLAY).batch_id
        with LocalService(settings, dbs) as service:
            final = service.runtime.run_batch(batch, timeout=180)
        posts = _company_posts(clay)
    assert final.done and not final.held, final.held
    assert sum(posts.values()) == 400
    assert _counts(dbs, _endpoints(settings.clay_company_webhook_url)) == [400]


def test_a_chunk_that_fails_after_counting_gives_its_rows_back(
    dbs: Databases, local_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    claim = webhook_sender.claim_chunk
    failures: list[int] = []

    def failing_once(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        if not failures:
            failures.append(1)
            raise RuntimeError("the database went away mid-claim")
        return claim(*args, **kwargs)

    monkeypatch.setattr(webhook_sender, "claim_chunk", failing_once)
    with _clay("limits-secret") as clay:
        settings = _settings(local_settings, clay, 1, clay_webhook_submission_limit=40)
        batch = upload(dbs, apollo_csv(30, 8, seed=6), PLAY).batch_id
        with LocalService(settings, dbs) as service:
            final = service.runtime.run_batch(batch, timeout=120)
        assert final.done
        posts = _company_posts(clay)
    assert failures
    hooks = _endpoints(settings.clay_company_webhook_url)
    assert sum(_counts(dbs, hooks)) == sum(posts.values()) == 8


def test_spent_webhooks_stop_the_batch_with_what_to_add_and_lose_nothing(
    dbs: Databases, local_settings: Settings
) -> None:
    with _clay("limits-secret") as clay:
        one = _settings(local_settings, clay, 1, clay_webhook_submission_limit=6)
        batch = upload(dbs, apollo_csv(12, 10, seed=4), PLAY).batch_id
        with LocalService(one, dbs) as service:
            stopped = service.runtime.run_batch(batch, timeout=120)
            shown = requests.get(
                f"{service.server.url}/batches/{batch}",
                headers={"x-api-key": service.runtime.api_key},
                timeout=10,
            ).json()
        assert stopped.stopped_by_hold and not stopped.done
        assert shown["held"] == stopped.held  # what the API says, too
        (reason,) = stopped.held.values()
        assert "CLAY_COMPANY_WEBHOOK_URL" in reason and "CLAY_COMPANY_WEBHOOK_AUTH_TOKEN" in reason
        # 10 companies, room for 6: the webhook is used to its limit, the other 4 wait.
        assert reason.startswith(
            f"the Clay webhook of {COMPANY_STEP} has used its 6 lifetime submissions;"
        )
        assert _company_posts(clay) == Counter({"company-1": 6})
        assert "FAILED" not in _statuses(dbs, COMPANY_STEP)

        # The same configuration again: still held, nothing more sent.
        with LocalService(one, dbs) as service:
            again = service.runtime.run_batch(batch, timeout=60)
        assert again.stopped_by_hold and _company_posts(clay) == Counter({"company-1": 6})

        # A second webhook configured: the hold lifts and the batch completes.
        two = _settings(local_settings, clay, 2, clay_webhook_submission_limit=6)
        with LocalService(two, dbs) as service:
            final = service.runtime.run_batch(batch, timeout=120)
        assert final.done and not final.held
    assert _company_posts(clay) == Counter({"company-1": 6, "company-2": 4})
    assert all(n == 1 for n in clay.submissions_by_entity.values())
    assert _statuses(dbs, COMPANY_STEP) == {"COMPLETED": 12}


def test_a_row_over_the_payload_cap_fails_its_entity_unsent(
    dbs: Databases, local_settings: Settings
) -> None:
    with _clay("limits-secret") as clay:
        # Company rows are small; a cap below them refuses every one, with the size.
        settings = _settings(local_settings, clay, 1, clay_max_payload_bytes=200)
        batch = upload(dbs, apollo_csv(20, 4, seed=5), PLAY).batch_id
        with LocalService(settings, dbs) as service:
            service.runtime.run_batch(batch, timeout=60)
        assert _company_posts(clay) == Counter()
    with dbs.hq.connection() as conn:
        errors = conn.execute(
            "SELECT DISTINCT error FROM entity_dispatches WHERE entity_type = 'company'"
        ).fetchall()
    assert len(errors) == 4  # one per company, each with its own size
    assert all(
        re.fullmatch(r"row is \d{3} bytes, over the webhook's 200-byte limit", e["error"])
        for e in errors
    ), errors
    assert _statuses(dbs, COMPANY_STEP) == {"FAILED": 20}


def test_rows_waiting_for_their_slot_keep_their_lease_and_go_once(
    dbs: Databases, local_settings: Settings
) -> None:
    """20 companies at 4 rows/s take 5 s to send, with a 1 s lease and a sweep every 0.2 s:
    a row still waiting for its slot must not be taken for a call that went unanswered."""
    set_leases(dbs, seconds=1)
    with _clay("limits-secret") as clay:
        settings = _settings(
            local_settings,
            clay,
            1,
            clay_rate_per_second=4.0,
            clay_rate_burst=1,
            sweep_interval_seconds=0.2,
        )
        batch = upload(dbs, apollo_csv(20, 20, seed=6), PLAY).batch_id
        with LocalService(settings, dbs) as service:
            final = service.runtime.run_batch(batch, timeout=120)
        assert final.done
        posts = _company_posts(clay)
    assert sum(posts.values()) == 20
    assert all(n == 1 for n in clay.submissions_by_entity.values())
    assert _statuses(dbs, COMPANY_STEP) == {"COMPLETED": 20}


def test_a_webhook_clay_says_is_spent_hands_its_rows_to_the_next(
    dbs: Databases, local_settings: Settings
) -> None:
    """Clay counts what we did not (rows posted by hand, another database): here each webhook
    takes 5 in Clay's count and 50,000 in ours. Its 410 sends the rows through the next webhook
    of the list instead of failing them."""
    config = SimulatorConfig(callback_secret="limits-secret", webhook_lifetime_limit=5)
    with ClaySimulator(config) as clay:
        settings = _settings(local_settings, clay, 1)
        batch = upload(dbs, apollo_csv(8, 4, seed=7), PLAY).batch_id
        with LocalService(settings, dbs) as service:
            final = service.runtime.run_batch(batch, timeout=120)
        stats = clay.stats()
        hooks = [ClayEndpoint(clay.webhook_url(f"person-{i}")) for i in (1, 2)]
    people = _one_count(dbs, "SELECT count(*) AS n FROM normalized_people")
    assert final.done and not final.held and people > 5
    by_webhook = stats["accepted_by_webhook"]
    assert by_webhook["person-1"] == 5 and by_webhook["person-2"] == people - 5
    assert stats["rejected"]["410"] == people - 5 and stats["duplicates"] == 0
    assert "FAILED" not in _statuses(dbs, PERSON_STEP)
    # person-1 is known spent now; person-2 counts what it took.
    assert _counts(dbs, hooks) == [settings.clay_webhook_submission_limit, people - 5]


def _one_count(dbs: Databases, sql: str) -> int:
    with dbs.hq.connection() as conn:
        row = conn.execute(sql).fetchone()
    return int(row["n"]) if row else 0


def test_rows_not_sent_when_a_run_stops_give_their_submissions_back(
    dbs: Databases, local_settings: Settings
) -> None:
    with _clay("limits-secret") as clay:
        settings = _settings(local_settings, clay, 1, clay_rate_per_second=2.0, clay_rate_burst=1)
        batch = upload(dbs, apollo_csv(10, 10, seed=8), PLAY).batch_id
        with LocalService(settings, dbs) as service:
            service.runtime.trigger.request(batch)
            wait_until(lambda: sum(_company_posts(clay).values()) >= 2, timeout=60)
            service.runtime.stop_claiming()
            assert service.runtime.dispatcher.wait_idle(30)
        accepted = sum(_company_posts(clay).values())
        hooks = [ClayEndpoint(clay.webhook_url("company-1"))]
    assert 2 <= accepted < 10
    assert _counts(dbs, hooks) == [accepted]  # not the 10 counted when the chunk was claimed


def test_a_killed_run_leaves_sending_only_what_clay_never_took(
    db_urls: DatabasePair, tmp_path: Path
) -> None:
    """Recovery sends again at once the calls of a dead run still SENDING: those must be the
    rows Clay never accepted, though the chunk was still being paced out when it died (but for
    the one call Clay may have answered as the process died)."""
    sample = tmp_path / "leads.csv"
    sample.write_bytes(apollo_csv(8, 8, seed=9))
    # Clay answers after the kill: what it took is SENT or SENDING, never answered.
    config = SimulatorConfig(callback_secret="kill-secret", callback_delay_seconds=60)
    with ClaySimulator(config) as clay:
        env = cli_env(
            tmp_path,
            db_urls,
            CLAY_COMPANY_WEBHOOK_URL=clay.webhook_url("company"),
            CLAY_PERSON_WEBHOOK_URL=clay.webhook_url("person"),
            CALLBACK_SECRET="kill-secret",
            CLAY_RATE_PER_SECOND="2",
            CLAY_RATE_BURST="1",
        )
        run = subprocess.Popen(
            enrich_argv("run", str(sample)),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: clay.submission_count("company") >= 3, timeout=60)
        finally:
            run.kill()
            run.wait(timeout=30)
        accepted = {s.entity_id for s in clay.submissions}
        clay.stop()  # its late callbacks would find nobody anyway
    with psycopg.connect(db_urls.urls.hq) as conn:
        rows = conn.execute("SELECT entity_id::text, status FROM entity_dispatches").fetchall()
    sending = {entity for entity, status in rows if status == "SENDING"}
    sent = {entity for entity, status in rows if status == "SENT"}
    # The kill may land between Clay's answer and the SENT mark: that one call alone (the
    # pacer sends one at a time) is both accepted and SENDING, and is sent again.
    in_flight = accepted - sent
    assert sent <= accepted and len(in_flight) <= 1
    assert sending - accepted  # the paced rest of the chunk was never sent ...
    assert sending & accepted <= in_flight  # ... and nothing else Clay took is sent again


def test_a_wrong_token_is_named_by_its_variable_and_place_in_the_list(
    dbs: Databases, local_settings: Settings
) -> None:
    """Every Clay webhook is on api.clay.com: the host cannot say which token is wrong."""
    config = SimulatorConfig(callback_secret="limits-secret", auth_token="good")
    with ClaySimulator(config) as clay:
        settings = _settings(local_settings, clay, 2, clay_webhook_submission_limit=2)
        settings = settings.model_copy(
            update={
                "clay_company_webhook_auth_token": SecretStr("good,wrong"),
                "clay_person_webhook_auth_token": SecretStr("good,good,good,good"),
                "clay_max_attempts": 1,
            }
        )
        batch = upload(dbs, apollo_csv(4, 4, seed=10), PLAY).batch_id
        with LocalService(settings, dbs) as service:
            service.runtime.run_batch(batch, timeout=60)
    with dbs.hq.connection() as conn:
        errors = conn.execute(
            "SELECT error FROM entity_dispatches"
            " WHERE entity_type = 'company' AND error IS NOT NULL"
        ).fetchall()
    assert len(errors) == 2
    assert all(
        e["error"].startswith("CLAY_COMPANY_WEBHOOK_URL #2: Clay webhook 127.0.0.1")
        and "HTTP 401" in e["error"]
        for e in errors
    ), errors
