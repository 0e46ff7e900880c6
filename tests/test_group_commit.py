"""Receivers' group commit: callbacks queued together are stored by one transaction, each
result exactly once (a dispatch's duplicates in a later round), and one callback Postgres
cannot store fails alone."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from orchestrator.callbacks.answers import Answer
from orchestrator.callbacks.group_commit import GroupCommitWriter
from orchestrator.db.pool import Databases
from orchestrator.providers.simulators.clay import SimulatorConfig
from orchestrator.runtimes.service import LocalService
from orchestrator.settings import Settings
from orchestrator.state.entity_kinds import kind_of
from orchestrator.state.registry import load_workflow
from support.faults import rows, scalar, wait_until
from support.pipeline import apollo_csv, upload

COMPANY_STEP = "enrich_company_via_waterfall_in_clay"
COMPANIES = 12  # rows per company: 3


@pytest.fixture
def answers(dbs: Databases, local_settings: Settings) -> list[Answer]:
    """One answer per company dispatch of a batch whose Clay never calls back."""
    with LocalService(local_settings, dbs, simulator=SimulatorConfig(drop_rate=1.0)) as service:
        batch = upload(dbs, apollo_csv(COMPANIES * 3, COMPANIES), "apollo-lead-enrichment")
        service.runtime.trigger.request(batch.batch_id)
        sent = "SELECT count(*) FROM entity_dispatches WHERE status = 'SENT'"
        companies = "SELECT count(*) FROM normalized_companies"
        wait_until(lambda: 0 < scalar(dbs, sent) == scalar(dbs, companies))
    with dbs.hq.connection() as conn:
        workflow = load_workflow(conn, COMPANY_STEP)
    dispatches = rows(dbs, "SELECT id, entity_id, attempt FROM entity_dispatches ORDER BY id")
    return [
        Answer(kind_of("company"), workflow, d["entity_id"], d["id"], d["attempt"], {"n": i})
        for i, d in enumerate(dispatches)
    ]


@contextmanager
def writer_held_at(dbs: Databases, answer: Answer) -> Iterator[GroupCommitWriter]:
    """A writer whose first group waits on a lock of `answer`'s dispatch row until the block
    ends, so everything submitted inside the block queues for the next group."""
    writer = GroupCommitWriter(dbs)
    with dbs.hq.connection() as blocker:
        blocker.execute(
            "SELECT 1 FROM entity_dispatches WHERE id = %s FOR UPDATE", (answer.dispatch_id,)
        )
        first = writer.submit(answer)
        wait_until(lambda: _someone_waits_on_a_lock(dbs), timeout=30, every=0.02)
        try:
            yield writer
        finally:
            blocker.rollback()
    first.result(timeout=30)


def _someone_waits_on_a_lock(dbs: Databases) -> bool:
    waiting = scalar(
        dbs,
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()",
    )
    return bool(waiting)


def _results(dbs: Databases) -> list[dict[str, Any]]:
    return rows(
        dbs, "SELECT dispatch_id, data FROM company_enrichment_results ORDER BY dispatch_id"
    )


def test_callbacks_queued_together_share_one_group_and_are_stored_once(
    dbs: Databases, answers: list[Answer]
) -> None:
    first, rest = answers[0], answers[1:]
    duplicates = rest[:3]
    with writer_held_at(dbs, first) as writer:
        futures = [writer.submit(a) for a in [*rest, *duplicates]]
    outcomes = [f.result(timeout=30) for f in futures]
    writer.close()

    # The held group, then everything queued behind it, then the duplicates' own round.
    assert writer.groups == 3
    assert all(o is not None for o in outcomes)
    statuses = [o.body["status"] for o in outcomes if o is not None]
    assert statuses.count("stored") == len(rest)
    assert statuses.count("duplicate") == len(duplicates)
    stored = _results(dbs)
    assert [r["dispatch_id"] for r in stored] == sorted(a.dispatch_id for a in answers)
    assert {r["dispatch_id"]: r["data"] for r in stored} == {a.dispatch_id: a.data for a in answers}
    marked = scalar(dbs, "SELECT count(*) FROM entity_dispatches WHERE status = 'STORED'")
    assert marked == len(answers)


def test_a_callback_postgres_cannot_store_fails_alone(
    dbs: Databases, answers: list[Answer]
) -> None:
    first, rest = answers[0], answers[1:]
    bad = rest[4]
    broken = Answer(
        bad.kind, bad.workflow, bad.entity_id, bad.dispatch_id, bad.attempt, {"x": "\x00"}
    )
    submitted = [broken if a is bad else a for a in rest]
    with writer_held_at(dbs, first) as writer:
        futures = {a.dispatch_id: writer.submit(a) for a in submitted}
    writer.close()

    with pytest.raises(psycopg.DataError):
        futures[bad.dispatch_id].result(timeout=30)
    good = [d for d in futures if d != bad.dispatch_id]
    assert all(futures[d].result(timeout=30) is not None for d in good)
    stored = {r["dispatch_id"] for r in _results(dbs)}
    assert stored == {first.dispatch_id, *good}


def test_concurrent_receivers_through_one_writer_store_each_result_once(
    dbs: Databases, answers: list[Answer]
) -> None:
    writer = GroupCommitWriter(dbs)
    barrier = threading.Barrier(len(answers) * 2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def receive(answer: Answer) -> None:
        barrier.wait(timeout=30)
        stored = writer.store(answer)
        with lock:
            outcomes.append(stored.body["status"] if stored else "not current")

    threads = [threading.Thread(target=receive, args=(a,)) for a in [*answers, *answers]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    writer.close()

    assert sorted(outcomes) == ["duplicate"] * len(answers) + ["stored"] * len(answers)
    assert len(_results(dbs)) == len(answers)
    assert 1 <= writer.groups <= len(answers) * 2


def test_a_closed_writer_refuses_new_callbacks(dbs: Databases, answers: list[Answer]) -> None:
    writer = GroupCommitWriter(dbs)
    writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        writer.store(answers[0])
    assert _results(dbs) == []
