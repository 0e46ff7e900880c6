"""`enrich serve` stopped by SIGTERM or SIGINT leaves no embedded PostgreSQL behind, and a
handle left by a killed process is cleaned at the next start. The evidence is the server's own
files and a connection attempt, not a process listing."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
import requests

from conftest import DatabasePair
from orchestrator.db.embedded import HANDLE_FILE
from support.cli import cli_env, enrich_argv
from support.pipeline import apollo_csv

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_conninfo(pgdata: Path) -> str:
    """Where the embedded server listens, from its postmaster.pid (port, then socket dir)."""
    lines = (pgdata / "postmaster.pid").read_text().splitlines()
    return f"host={lines[4]} port={lines[3]} user=postgres dbname=postgres connect_timeout=3"


def _refuses_connections(conninfo: str) -> bool:
    try:
        psycopg.connect(conninfo).close()
    except psycopg.OperationalError:
        return True
    return False


def _listed_pids(pgdata: Path) -> list[int]:
    path = pgdata / HANDLE_FILE
    return json.loads(path.read_text() or "[]") if path.exists() else []


def _serve_until_healthy(home: Path) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    proc = subprocess.Popen(
        enrich_argv("serve", "--port", str(port)),
        env=cli_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                return proc, _server_conninfo(home / "pgdata")
        except requests.ConnectionError:
            time.sleep(0.3)
        if proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"serve did not come up: {proc.communicate()[0]}")


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_stops_the_embedded_server_on_a_signal(tmp_path: Path, stop: signal.Signals) -> None:
    home = tmp_path / "home"
    proc, conninfo = _serve_until_healthy(home)
    assert not _refuses_connections(conninfo)
    assert proc.pid in _listed_pids(home / "pgdata")
    proc.send_signal(stop)
    output, _ = proc.communicate(timeout=60)
    assert "Traceback" not in output, output
    assert _listed_pids(home / "pgdata") == []
    assert not (home / "pgdata" / "postmaster.pid").exists()
    assert _refuses_connections(conninfo)


def test_a_handle_left_by_a_killed_process_is_cleaned_at_the_next_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc, conninfo = _serve_until_healthy(home)
    proc.kill()  # no exit handler runs: the server stays up with a dead pid listed
    proc.communicate(timeout=30)
    assert _listed_pids(home / "pgdata") == [proc.pid]
    assert not _refuses_connections(conninfo)
    subprocess.run(enrich_argv("batches"), env=cli_env(home), timeout=120, check=True)
    assert _listed_pids(home / "pgdata") == []
    assert not (home / "pgdata" / "postmaster.pid").exists()
    assert _refuses_connections(conninfo)


def test_serve_stopped_mid_batch_fails_nothing_and_the_batch_resumes(
    tmp_path: Path, db_urls: DatabasePair
) -> None:
    home = tmp_path / "home"
    # Clay takes rows at 100/s: sends are still going on at the signal.
    env = cli_env(
        home, db_urls, CLAY_SIMULATOR_DELAY_SECONDS="1", CLAY_SIMULATOR_RATE_PER_SECOND="100"
    )
    port = _free_port()
    proc = subprocess.Popen(
        enrich_argv("serve", "--port", str(port)),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(f"{base}/health", timeout=1).ok:
                break
        except requests.ConnectionError:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.3)
    key = (home / "api.key").read_text().strip()
    created = requests.post(
        f"{base}/batches",
        files={"file": ("leads.csv", apollo_csv(600, 120, seed=9), "text/csv")},
        headers={"x-api-key": key},
        timeout=60,
    )
    assert created.status_code == 201, created.text
    with psycopg.connect(db_urls.urls.hq) as conn:
        while conn.execute("SELECT count(*) FROM entity_dispatches").fetchone() == (0,):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert time.monotonic() - started < 15, output
    assert "Traceback" not in output, output
    with psycopg.connect(db_urls.urls.hq) as conn:
        failed = conn.execute(
            "SELECT (SELECT count(*) FROM company_workflow_states WHERE status = 'FAILED')"
            " + (SELECT count(*) FROM person_workflow_states WHERE status = 'FAILED')"
        ).fetchone()
    assert failed == (0,), output
    resumed = subprocess.run(
        enrich_argv("resume", created.json()["batch_id"]), env=env, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
