"""Nothing stuck, nothing lost: dropped, duplicated and refused callbacks, Clay outages."""

from __future__ import annotations

import pytest

from orchestrator.db.pool import Databases
from orchestrator.providers.simulators.clay import SimulatorConfig
from orchestrator.runtimes.service import LocalService
from orchestrator.settings import Settings
from support.faults import rows, scalar, set_leases, unfinished_items
from support.pipeline import apollo_csv, upload

PLAY = "apollo-lead-enrichment"


@pytest.fixture
def fast_sweeps(local_settings: Settings) -> Settings:
    return local_settings.model_copy(update={"sweep_interval_seconds": 0.3})


def test_dropped_and_duplicated_callbacks_end_completed_or_failed(
    dbs: Databases, fast_sweeps: Settings
) -> None:
    set_leases(dbs, seconds=4, max_attempts=3)
    simulator = SimulatorConfig(drop_rate=0.1, duplicate_rate=0.1, seed=4)
    with LocalService(fast_sweeps, dbs, simulator=simulator) as service:
        batch = upload(dbs, apollo_csv(400, 60, seed=2), PLAY).batch_id
        service.runtime.run_batch(batch, timeout=240)
        assert service.simulator is not None
        submissions = service.simulator.submission_count()
        dropped = service.simulator.callbacks_dropped
        duplicated = service.simulator.callbacks_duplicated

    assert dropped > 0 and duplicated > 0
    assert unfinished_items(dbs) == 0
    assert (
        scalar(
            dbs,
            "SELECT count(*) FROM workflow_states WHERE status = 'FAILED'"
            " AND COALESCE(meta->>'reason', meta->>'error') IS NULL",
        )
        == 0
    )
    dispatches = rows(dbs, "SELECT entity_id, attempt, status FROM entity_dispatches")
    entities = {d["entity_id"] for d in dispatches}
    retries = [d for d in dispatches if d["attempt"] > 1]
    # Clay was called once per entity plus once per retry (a drop, or a callback slower than
    # the lease, makes a retry; a late callback of a retried attempt is refused).
    assert submissions == len(dispatches) == len(entities) + len(retries)
    assert len(retries) > 0
    # Every call ends: a dropped one is SUPERSEDED by its retry (or FAILED with its entity),
    # none is left SENDING or SENT to look like work in flight.
    assert (
        scalar(dbs, "SELECT count(*) FROM entity_dispatches WHERE status IN ('SENDING', 'SENT')")
        == 0
    )
    per_entity = rows(
        dbs,
        """
        SELECT company_id AS id, count(*) AS n FROM company_enrichment_results GROUP BY 1
        UNION ALL
        SELECT person_id, count(*) FROM person_enrichment_results GROUP BY 1""",
    )
    assert per_entity and {r["n"] for r in per_entity} == {1}
    completed = scalar(
        dbs,
        """
        SELECT (SELECT count(*) FROM company_workflow_states WHERE status = 'COMPLETED')
             + (SELECT count(*) FROM person_workflow_states WHERE status = 'COMPLETED')""",
    )
    assert len(per_entity) == completed


def test_rate_limits_and_an_outage_at_clay_lose_no_item(
    dbs: Databases, fast_sweeps: Settings
) -> None:
    simulator = SimulatorConfig(rate_limit_per_second=40, fail_first_n_submissions=20)
    with LocalService(fast_sweeps, dbs, simulator=simulator) as service:
        batch = upload(dbs, apollo_csv(300, 40, seed=9), PLAY).batch_id
        service.runtime.run_batch(batch, timeout=240)
        assert service.simulator is not None
        rejected = service.simulator.rejected

    assert rejected[503] == 20 and rejected[429] > 0
    statuses = rows(
        dbs,
        "SELECT step_name, status, count(*) AS n FROM workflow_states"
        " WHERE step_name LIKE 'enrich%%' GROUP BY 1, 2",
    )
    assert {s["status"] for s in statuses} == {"COMPLETED"}
    assert scalar(dbs, "SELECT count(*) FROM entity_dispatches WHERE status = 'FAILED'") == 0
