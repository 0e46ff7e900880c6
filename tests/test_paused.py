"""A stopped batch stays stopped until it is resumed, and a failed one can be retried."""

from __future__ import annotations

import time

import pytest
from pydantic import SecretStr

from orchestrator.db.pool import Databases
from orchestrator.engine.recovery import prepare_retry
from orchestrator.providers.simulators.clay import SimulatorConfig
from orchestrator.reports.verify import verify_batch
from orchestrator.runtimes.service import LocalService
from orchestrator.settings import Settings
from support.faults import scalar, wait_until
from support.pipeline import apollo_csv, upload

PLAY = "apollo-lead-enrichment"
SENT = "SELECT count(*) FROM entity_dispatches WHERE batch_id = %s"


def test_another_run_leaves_a_paused_batch_alone(dbs: Databases, local_settings: Settings) -> None:
    settings = local_settings.model_copy(update={"sweep_interval_seconds": 0.2})
    # Clay answers late: the first batch is stopped with calls in flight.
    slow = SimulatorConfig(callback_delay_seconds=30)
    with LocalService(settings, dbs, simulator=slow) as first:
        paused = upload(dbs, apollo_csv(200, 40, seed=1), PLAY).batch_id
        first.runtime.trigger.request(paused)
        wait_until(lambda: scalar(dbs, SENT, paused) >= 20, timeout=60)
        first.wind_down(0)
    calls_when_paused = scalar(dbs, SENT, paused)

    with LocalService(settings, dbs) as other:
        batch = upload(dbs, apollo_csv(100, 20, seed=2), PLAY, client_name="other").batch_id
        other.runtime.run_batch(batch, timeout=120)
        time.sleep(1.0)  # several sweeps of the other run
    assert scalar(dbs, SENT, paused) == calls_when_paused


def test_retry_after_clay_was_unreachable_enriches_the_batch(
    dbs: Databases, local_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = local_settings.model_copy(
        update={"clay_max_attempts": 1, "callback_secret": SecretStr("paused-secret")}
    )
    batch = upload(dbs, apollo_csv(60, 12, seed=4), PLAY).batch_id
    # Nothing listens on the discard port: every company fails, and its items with it.
    monkeypatch.setenv("CLAY_COMPANY_WEBHOOK_URL", "http://127.0.0.1:9/company")
    monkeypatch.setenv("CLAY_PERSON_WEBHOOK_URL", "http://127.0.0.1:9/person")
    with LocalService(settings, dbs) as down:
        down.runtime.run_batch(batch, timeout=120)
    assert scalar(dbs, "SELECT count(*) FROM company_workflow_states WHERE status = 'FAILED'")
    monkeypatch.delenv("CLAY_COMPANY_WEBHOOK_URL")
    monkeypatch.delenv("CLAY_PERSON_WEBHOOK_URL")
    with LocalService(settings, dbs) as up:
        prepare_retry(dbs, batch)
        up.runtime.run_batch(batch, timeout=120)
    assert [c.name for c in verify_batch(dbs, batch) if not c.passed] == []
    failed = "SELECT count(*) FROM company_workflow_states WHERE status <> 'COMPLETED'"
    assert scalar(dbs, failed) == 0
