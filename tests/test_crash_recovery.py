"""Crashes: the database restarts mid-run, and the runner itself is killed with SIGKILL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import DatabasePair
from orchestrator.db.embedded import EmbeddedPostgres, create_database_if_missing, start_embedded
from orchestrator.db.migrate import migrate_all
from orchestrator.db.pool import Databases, open_databases
from orchestrator.db.urls import DatabaseUrls
from orchestrator.providers.simulators.clay import SimulatorConfig
from orchestrator.reports.verify import verify_batch
from orchestrator.runtimes.service import LocalService
from orchestrator.settings import Settings
from support.faults import rows, scalar, set_leases, unfinished_items, wait_until
from support.pipeline import apollo_csv, upload

PLAY = "apollo-lead-enrichment"


@pytest.fixture
def own_server() -> Iterator[tuple[EmbeddedPostgres, Databases]]:
    """A private embedded server, so stopping it cannot disturb other tests."""
    root = Path(tempfile.mkdtemp(prefix="enrich-crash-"))
    server = start_embedded(root / "pgdata", cleanup_mode="stop")
    for name in ("crash_hq", "crash_ws"):
        create_database_if_missing(server.conninfo(), name)
    urls = DatabaseUrls(hq=server.conninfo("crash_hq"), workspace=server.conninfo("crash_ws"))
    migrate_all(urls.hq, urls.workspace)
    dbs = open_databases(urls, settings=Settings(pool_max_size=12), migrate=False)
    try:
        yield server, dbs
    finally:
        dbs.close()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_postgres_stopped_and_started_mid_run(
    own_server: tuple[EmbeddedPostgres, Databases], local_settings: Settings
) -> None:
    server, dbs = own_server
    # Generous leases: callbacks lost in the outage are re-sent after it; a short lease would
    # also expire healthy calls on a loaded machine.
    set_leases(dbs, seconds=30, max_attempts=5)
    settings = local_settings.model_copy(update={"sweep_interval_seconds": 0.5})
    simulator = SimulatorConfig(callback_delay_seconds=0.05)
    with LocalService(settings, dbs, simulator=simulator) as service:
        batch = upload(dbs, apollo_csv(2000, 300, seed=21), PLAY).batch_id
        outcome: dict[str, Any] = {}
        runner = threading.Thread(
            target=lambda: outcome.update(done=service.runtime.run_batch(batch, timeout=400))
        )
        runner.start()
        wait_until(lambda: scalar(dbs, "SELECT count(*) FROM entity_dispatches") > 50, timeout=120)
        server.stop()
        threading.Event().wait(3)
        server.start()
        runner.join(timeout=420)
        assert not runner.is_alive() and outcome["done"].done

    assert unfinished_items(dbs) == 0
    checks = verify_batch(dbs, batch)
    assert [(c.name, c.detail) for c in checks if not c.passed] == []
    assert scalar(dbs, "SELECT count(*) FROM final_leads") > 1500


def _enrich(env: dict[str, str], *args: str, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli.main", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _final_tables(dbs: Databases, batch: Any) -> dict[str, list[dict[str, Any]]]:
    # Sorted on every column: people without an email tie in any single ORDER BY.
    tables = {
        "final_leads": rows(
            dbs,
            """
            SELECT full_name, email, email_verified, title, seniority, linkedin_url, company_name,
                   company_domain, company_industry, company_employee_count, company_founded_year
            FROM final_leads WHERE batch_id = %s ORDER BY email, full_name""",
            batch,
        ),
        "person_work_history": rows(
            dbs,
            """
            SELECT p.email, w.position, w.company_name, w.title, w.start_date, w.end_date
            FROM person_work_history w JOIN normalized_people p ON p.id = w.person_id
            WHERE w.batch_id = %s ORDER BY 1, 2""",
            batch,
        ),
        "failed_items": rows(
            dbs,
            """
            SELECT bi.row_number, ws.step_name, ws.meta->>'reason' AS reason
            FROM workflow_states ws JOIN batch_items bi ON bi.id = ws.item_id
            WHERE ws.batch_id = %s AND ws.status = 'FAILED' ORDER BY 1""",
            batch,
        ),
    }
    return {name: sorted(table, key=repr) for name, table in tables.items()}


def test_sigkill_mid_batch_then_resume_matches_an_uninterrupted_run(
    dbs: Databases, db_urls: DatabasePair, tmp_path: Path
) -> None:
    lease = 6
    set_leases(dbs, seconds=lease, max_attempts=5)
    sample = tmp_path / "leads.csv"
    sample.write_bytes(apollo_csv(300, 50, seed=31))
    env = {k: v for k, v in os.environ.items() if "CLAY" not in k}
    env.update(
        DATABASE_URL=db_urls.urls.hq,
        WORKSPACE_DATABASE_URL=db_urls.urls.workspace,
        ENRICH_HOME=str(tmp_path / "home"),
        CLAY_SIMULATOR_DELAY_SECONDS="0.3",
        SWEEP_INTERVAL_SECONDS="0.5",
    )
    victim = _enrich(env, "run", str(sample), "--json")
    wait_until(
        lambda: (
            scalar(
                dbs,
                "SELECT count(*) FROM workflow_states WHERE step_name ="
                " 'enrich_person_via_waterfall_in_clay'",
            )
            > 0
        ),
        timeout=120,
    )
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    batch = scalar(dbs, "SELECT id FROM upload_batches")
    assert unfinished_items(dbs) > 0, "the kill must interrupt the batch"

    resumed = _enrich(env, "resume", str(batch), "--json")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]
    assert json.loads(out)["status"] == "COMPLETED"

    reference = _enrich(env, "run", str(sample), "--json", "--client", "reference")
    ref_out, ref_err = reference.communicate(timeout=300)
    assert reference.returncode == 0, ref_err[-3000:]
    reference_batch = json.loads(ref_out)["batch_id"]
    assert _final_tables(dbs, batch) == _final_tables(dbs, reference_batch)

    # An entity went to Clay a second time only when its first call could not be answered any
    # more (the killed process's own simulator had it: SUPERSEDED at once) or after its lease.
    repeats = rows(
        dbs,
        """
        SELECT d.entity_id, d.attempt, d.created_at,
               lag(d.created_at) OVER (PARTITION BY d.entity_id ORDER BY d.attempt) AS previous,
               lag(d.status) OVER (PARTITION BY d.entity_id ORDER BY d.attempt) AS previous_status
        FROM entity_dispatches d WHERE d.batch_id = %s""",
        batch,
    )
    for r in repeats:
        if r["previous"] is not None and r["previous_status"] != "SUPERSEDED":
            assert (r["created_at"] - r["previous"]).total_seconds() >= lease - 0.5
