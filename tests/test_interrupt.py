"""Ctrl-C (or SIGTERM) during a run: nothing new is sent, callbacks keep being stored for the
grace period, the run exits 130 with the command that resumes it, and that command finishes
the batch."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from conftest import DatabasePair
from support.cli import cli_env, enrich_argv
from support.pipeline import apollo_csv

pytestmark = pytest.mark.slow
GRACE = 4.0


def _scalar(conninfo: str, sql: str) -> int:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_stores_what_arrives_exits_130_and_resumes(
    db_urls: DatabasePair, tmp_path: Path, stop: signal.Signals
) -> None:
    sample = tmp_path / "leads.csv"
    sample.write_bytes(apollo_csv(1_500, 300, seed=5))
    env = cli_env(
        tmp_path / "home",
        db_urls,
        # Clay answers two seconds after each row: callbacks are in flight at the interrupt.
        CLAY_SIMULATOR_DELAY_SECONDS="2",
        INTERRUPT_GRACE_SECONDS=str(GRACE),
    )
    hq = db_urls.urls.hq
    proc = subprocess.Popen(
        enrich_argv("run", str(sample)),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    while _scalar(hq, "SELECT count(*) FROM entity_dispatches WHERE status = 'SENT'") < 50:
        assert time.monotonic() < deadline and proc.poll() is None, "no call in flight to cut"
        time.sleep(0.05)
    with psycopg.connect(hq) as conn:
        row = conn.execute("SELECT NOW()").fetchone()
    assert row is not None
    interrupted_at, started = row[0], time.monotonic()
    proc.send_signal(stop)
    output, _ = proc.communicate(timeout=GRACE + 30)
    took = time.monotonic() - started

    assert proc.returncode == 130, output
    assert took <= GRACE + 2, took
    assert "Traceback" not in output, output
    stored = int(re.search(r"stopped: (\d+) callback", output).group(1))  # type: ignore[union-attr]
    with psycopg.connect(hq) as conn:
        row = conn.execute(
            "SELECT count(*) FROM entity_dispatches WHERE callback_at >= %s", (interrupted_at,)
        ).fetchone()
    assert row is not None and stored == row[0] > 0, (stored, row, output)
    resume = re.search(r"resume it with: (enrich resume [0-9a-f-]+)", output)
    assert resume is not None, output

    paused = subprocess.run(
        enrich_argv("status", resume.group(1).split()[2]),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "PAUSED" in paused.stdout, paused.stdout
    resumed = subprocess.run(
        enrich_argv(*resume.group(1).split()[1:]),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    entities = _scalar(
        hq,
        "SELECT (SELECT count(*) FROM normalized_companies) + (SELECT count(*) FROM"
        " normalized_people)",
    )
    calls = _scalar(hq, "SELECT count(*) FROM entity_dispatches WHERE sent_at IS NOT NULL")
    unanswered = _scalar(
        hq,
        "SELECT count(*) FROM entity_dispatches WHERE status = 'SUPERSEDED'"
        " AND sent_at IS NOT NULL",
    )
    assert calls - entities == unanswered
