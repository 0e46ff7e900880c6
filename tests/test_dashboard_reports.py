"""What the dashboard reads and changes, without a browser: queue pages, waiting calls, the
retry of one failure group."""

from __future__ import annotations

from uuid import UUID

import pytest

from orchestrator.db.pool import Databases
from orchestrator.engine.recovery import retry_failure_group
from orchestrator.providers.simulators.clay import SimulatorConfig
from orchestrator.reports import queues
from orchestrator.reports.batch_view import batch_view, board
from orchestrator.runtimes.service import LocalService
from orchestrator.settings import Settings
from support.faults import wait_until
from support.pipeline import add_normalize_split_play, apollo_csv, upload


def _all_pages(fetch: object, page: int) -> list[UUID]:
    seen: list[UUID] = []
    after = None
    while True:
        rows = fetch(after)  # type: ignore[operator]
        seen += [r.id for r in rows]
        if len(rows) < page:
            return seen
        after = queues.cursor_of(rows[-1].domain, rows[-1].id)


def test_queue_and_pipeline_pages_list_every_company_once(
    dbs: Databases, local_settings: Settings
) -> None:
    batch = upload(dbs, apollo_csv(300, 250, seed=2), add_normalize_split_play(dbs)).batch_id
    with LocalService(local_settings, dbs) as service:
        service.runtime.run_batch(batch, timeout=60)
    with dbs.hq.connection() as conn:
        everyone = {r["id"] for r in conn.execute("SELECT id FROM normalized_companies")}
        step = queues.queue_steps(conn, "company-research")[0]
        assert step.ready == len(everyone) > 200
        queued = _all_pages(
            lambda after: queues.queued_companies(
                conn, "company-research", step, after=after, limit=40
            ),
            40,
        )
        listed = _all_pages(
            lambda after: queues.pipeline_list(conn, "company-research", after=after, limit=40),
            40,
        )
        with pytest.raises(ValueError, match="malformed cursor"):
            queues.queued_companies(conn, "company-research", step, after="not-a-cursor")
    for pages in (queued, listed):
        assert len(pages) == len(set(pages)) and set(pages) == everyone


def test_an_entity_failed_by_its_answer_waits_on_nothing(
    dbs: Databases, local_settings: Settings
) -> None:
    """Clay answered with an error: the call is over, though its dispatch stays SENT."""
    settings = local_settings.model_copy(update={"clay_max_attempts": 1})
    simulator = SimulatorConfig(callback_failure_rate=1.0)
    batch = upload(dbs, apollo_csv(20, 5, seed=4), "apollo-lead-enrichment").batch_id
    with LocalService(settings, dbs, simulator=simulator) as service:
        service.runtime.run_batch(batch, timeout=60)
    with dbs.hq.connection() as conn:
        view = batch_view(conn, batch)
        (line,) = board(conn)
        sent = conn.execute(
            "SELECT count(*) AS n FROM entity_dispatches WHERE batch_id = %s AND status = 'SENT'",
            (batch,),
        ).fetchone()
    assert sent is not None and sent["n"] > 0
    assert view.line.status == "COMPLETED" and view.line.failed > 0
    assert line.waiting == view.waiting_total == 0 and view.waiting == []


def test_retrying_one_failure_group_leaves_the_others_failed(
    dbs: Databases, local_settings: Settings
) -> None:
    settings = local_settings.model_copy(update={"clay_max_attempts": 1})
    simulator = SimulatorConfig(callback_failure_rate=0.5, seed=3)
    data = apollo_csv(60, 20, seed=6, underivable_fraction=0.1)
    batch = upload(dbs, data, "apollo-lead-enrichment").batch_id
    with LocalService(settings, dbs, simulator=simulator) as service:
        service.runtime.run_batch(batch, timeout=60)
        with dbs.hq.connection() as conn:
            groups = batch_view(conn, batch).failures
        retryable = [g for g in groups if g.retryable]
        kept = [g for g in groups if not g.retryable]
        assert retryable and kept  # Clay's failures, and rows whose own data is at fault
        chosen = retryable[0]
        assert retry_failure_group(dbs, batch, chosen.step_name, chosen.reason) == chosen.items
        assert retry_failure_group(dbs, batch, chosen.step_name, chosen.reason) == 0
        with dbs.hq.connection() as conn:
            after = {(g.step_name, g.reason): g.items for g in batch_view(conn, batch).failures}
            status = conn.execute(
                "SELECT status FROM upload_batches WHERE id = %s", (batch,)
            ).fetchone()
        assert status is not None and status["status"] == "RUNNING"
        for group in kept + retryable[1:]:
            assert after[(group.step_name, group.reason)] == group.items
        service.runtime.run_batch(batch, timeout=60)


def test_calls_the_simulator_of_a_stopped_process_took_are_shown_as_lost(
    dbs: Databases, local_settings: Settings
) -> None:
    """Their lease says "wait 30 min", but nobody will ever answer them: the page says so."""
    batch = upload(dbs, apollo_csv(10, 3, seed=4), "apollo-lead-enrichment").batch_id

    def waiting() -> list[bool]:
        with dbs.hq.connection() as conn:
            return [w.unanswerable for w in batch_view(conn, batch).waiting]

    with LocalService(local_settings, dbs, simulator=SimulatorConfig(drop_rate=1.0)) as service:
        service.runtime.trigger.request(batch)
        wait_until(lambda: len(waiting()) == 3, timeout=60)
        assert waiting() == [False] * 3  # its process lives: the answer may still come
    assert waiting() == [True] * 3
    with dbs.hq.connection() as conn:
        assert board(conn)[0].waiting == 0  # nobody will ever answer them: no wait is shown
