"""SIGKILL at random moments across every step of a 3,000-row run, then `enrich resume`: the
batch finishes quickly, verifies, matches an uninterrupted run, and the only provider calls
beyond one per entity are those the dead process's own simulator had accepted but not answered.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from support.cli import cli_env, enrich_argv
from support.pipeline import apollo_csv
from support.postgres import (
    PostgresServer,
    Templates,
    create_database,
    drop_database,
    unique_name,
)

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

ROWS, COMPANIES = 3_000, 400
KILLS = int(os.environ.get("ENRICH_CHAOS_KILLS", "10"))
STEPS = [
    "normalize_all_core_values",
    "split",
    "enrich_company_via_waterfall_in_clay",
    "enrich_person_via_waterfall_in_clay",
    "consolidate",
]
RESUME_LIMIT_SECONDS = 120


def _env(hq: str, ws: str, home: Path) -> dict[str, str]:
    return cli_env(home, DATABASE_URL=hq, WORKSPACE_DATABASE_URL=ws)


@pytest.fixture
def fresh_pair(pg_server: PostgresServer, templates: Templates) -> Iterator[Any]:
    made: list[str] = []

    def make() -> tuple[str, str]:
        hq, ws = unique_name("t_chaos_hq"), unique_name("t_chaos_ws")
        made.extend([hq, ws])
        return (
            create_database(pg_server, hq, template=templates.hq),
            create_database(pg_server, ws, template=templates.workspace),
        )

    yield make
    for name in made:
        drop_database(pg_server, name)


def _rows(conninfo: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(conninfo, row_factory=dict_row) as conn:
        return [dict(r) for r in conn.execute(sql, params)]


def _outcome(conninfo: str) -> dict[str, Any]:
    """What a run produced, without ids, batch ids or times."""
    return {
        "leads": _rows(
            conninfo,
            "SELECT full_name, email, title, company_domain, company_industry,"
            " company_employee_count FROM final_leads ORDER BY 1, 2, 3, 4, 5, 6",
        ),
        "jobs": _rows(
            conninfo,
            "SELECT p.email, w.position, w.company_name, w.title FROM person_work_history w"
            " JOIN normalized_people p ON p.id = w.person_id ORDER BY 1, 2, 3, 4",
        ),
        "entity_states": _rows(
            conninfo,
            "SELECT 'company' AS kind, status, count(*) AS n FROM company_workflow_states"
            " GROUP BY 2 UNION ALL SELECT 'person', status, count(*) FROM person_workflow_states"
            " GROUP BY 2 ORDER BY 1, 2",
        ),
        "items": _rows(
            conninfo,
            "SELECT step_name, status, count(*) AS n FROM workflow_states GROUP BY 1, 2"
            " ORDER BY 1, 2",
        ),
    }


def _calls(conninfo: str) -> dict[str, int]:
    (row,) = _rows(
        conninfo,
        "SELECT (SELECT count(*) FROM normalized_companies)"
        " + (SELECT count(*) FROM normalized_people) AS entities,"
        " count(*) FILTER (WHERE sent_at IS NOT NULL) AS calls,"
        " count(*) FILTER (WHERE status = 'SUPERSEDED' AND sent_at IS NOT NULL AND simulated)"
        "   AS accepted_unanswered,"
        " count(*) FILTER (WHERE status IN ('SENDING', 'SENT')) AS open"
        " FROM entity_dispatches",
    )
    return {k: int(v) for k, v in row.items()}


def _wait_for_step(conninfo: str, step: str, proc: subprocess.Popen[str]) -> bool:
    """Until the run has begun `step` (some of its item-steps claimed or done)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        started = _rows(
            conninfo,
            "SELECT count(*) AS n FROM workflow_states WHERE step_name = %s"
            " AND status IN ('IN_PROGRESS', 'COMPLETED')",
            step,
        )
        if started[0]["n"]:
            return True
        time.sleep(0.05)
    return False


def test_sigkill_at_random_moments_then_resume(fresh_pair: Any, tmp_path: Path) -> None:
    sample = tmp_path / "leads.csv"
    sample.write_bytes(apollo_csv(ROWS, COMPANIES, seed=11))
    hq, ws = fresh_pair()
    reference = subprocess.run(
        enrich_argv("run", str(sample), "--json"),
        env=_env(hq, ws, tmp_path / "ref"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert reference.returncode == 0, reference.stderr[-2000:]
    expected = _outcome(hq)
    rng = random.Random(17)
    figures = []
    for kill in range(KILLS):
        step = STEPS[kill % len(STEPS)]
        hq, ws = fresh_pair()
        env = _env(hq, ws, tmp_path / f"home{kill}")
        proc = subprocess.Popen(
            enrich_argv("run", str(sample), "--json"),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        reached = _wait_for_step(hq, step, proc)
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        killed_at = time.monotonic()
        (batch,) = _rows(hq, "SELECT id FROM upload_batches")
        resumed = subprocess.run(
            enrich_argv("resume", str(batch["id"]), "--json"),
            env=env,
            capture_output=True,
            text=True,
            timeout=RESUME_LIMIT_SECONDS + 60,
        )
        took = time.monotonic() - killed_at
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        summary = json.loads(resumed.stdout)
        verified = subprocess.run(
            enrich_argv("verify", str(batch["id"])), env=env, capture_output=True, text=True
        )
        calls = _calls(hq)
        figures.append(
            f"kill {kill + 1} in {step} (reached: {reached}): finished {took:.1f} s after the"
            f" kill; calls {calls['calls']} for {calls['entities']} entities, accepted by the"
            f" dead simulator and not answered {calls['accepted_unanswered']};"
            f" resume: {summary['recovery']}"
        )
        assert took < RESUME_LIMIT_SECONDS, figures[-1]
        assert verified.returncode == 0, verified.stdout[-2000:]
        outcome = _outcome(hq)
        differs = [k for k in expected if outcome[k] != expected[k]]
        assert not differs, (differs, figures[-1], [outcome[k][:3] for k in differs])
        assert calls["open"] == 0
        assert calls["calls"] - calls["entities"] == calls["accepted_unanswered"], figures[-1]
    print("\n".join(figures))


# ------------------------------------------------- a real provider outlives the killed runner


def _external_simulator(port: int, secret: str, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "orchestrator.providers.simulators.clay", "--port", str(port),
            "--auth-token", "tok", "--callback-secret", secret, *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the simulator process did not start")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _settle(conninfo: str, timeout: float = 30) -> None:
    """Wait until the server has finished what a killed client sent it: a statement the client
    sent just before its SIGKILL still runs, and commits, after the process is gone."""
    deadline = time.monotonic() + timeout
    busy = (
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')"
    )
    while _rows(conninfo, busy)[0]["n"] and time.monotonic() < deadline:
        time.sleep(0.05)


def _entities_with_calls_in_flight(conninfo: str) -> set[str]:
    rows = _rows(
        conninfo,
        # Accepted by the provider, not answered yet.
        "SELECT d.entity_id::text AS e FROM entity_dispatches d WHERE d.status = 'SENT'",
    )
    return {r["e"] for r in rows}


def test_calls_a_real_provider_accepted_wait_for_their_lease_unless_resent_now(
    fresh_pair: Any, tmp_path: Path
) -> None:
    sample = tmp_path / "leads.csv"
    sample.write_bytes(apollo_csv(300, 60, seed=3))
    hq, ws = fresh_pair()
    port, secret = _free_port(), "s3cret"
    env = _env(hq, ws, tmp_path / "home") | {
        "CLAY_COMPANY_WEBHOOK_URL": f"http://127.0.0.1:{port}/webhooks/company",
        "CLAY_PERSON_WEBHOOK_URL": f"http://127.0.0.1:{port}/webhooks/person",
        "CLAY_WEBHOOK_AUTH_TOKEN": "tok",
        "CALLBACK_SECRET": secret,
        "CLAY_RATE_PER_SECOND": "1000",
    }
    # Clay accepts every row and is slow to answer: longer than this test waits.
    silent = _external_simulator(port, secret, "--drop-rate", "1.0")
    try:
        run = subprocess.Popen(
            enrich_argv("run", str(sample)), env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while len(_entities_with_calls_in_flight(hq)) < 20:
            assert time.monotonic() < deadline and run.poll() is None
            time.sleep(0.05)
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
        _settle(hq)
        accepted = _entities_with_calls_in_flight(hq)
        (batch,) = _rows(hq, "SELECT id::text AS id FROM upload_batches")

        waiting = subprocess.Popen(
            enrich_argv("resume", batch["id"]), env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert waiting.stdout is not None
        lines: list[str] = []
        while waiting.poll() is None and not any("waiting for" in line for line in lines):
            lines.append(waiting.stdout.readline())
        time.sleep(3)  # what it would re-send too early, it would send by now
        waiting.send_signal(signal.SIGINT)
        # Through the same reader as the lines above: communicate() reads the pipe itself and
        # would lose what that reader had already buffered (the line after "waiting for").
        rest = waiting.stdout.read()
        waiting.wait(timeout=60)
        output = "".join(lines) + rest
        said = re.search(r"waiting for (\d+) callback", output)
        assert said is not None, output
        assert int(said.group(1)) == len(accepted), output
        assert "--resend-now" in output and "credits" in output, output
        per_entity = _rows(
            hq,
            "SELECT entity_id::text AS e FROM entity_dispatches GROUP BY 1 HAVING count(*) > 1",
        )
        # Rows the provider had not accepted when the run died (SENDING) go out again at once;
        # none it accepted (SENT) does before its lease.
        assert not {r["e"] for r in per_entity} & accepted, "re-sent before its lease"
        waited = _entities_with_calls_in_flight(hq)
    finally:
        silent.send_signal(signal.SIGTERM)
        silent.communicate(timeout=30)

    answering = _external_simulator(port, secret)
    try:
        resent = subprocess.run(
            enrich_argv("resume", batch["id"], "--resend-now", "--json"),
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        answering.send_signal(signal.SIGTERM)
        answering.communicate(timeout=30)
    assert resent.returncode == 0, resent.stderr[-2000:]
    recovery = json.loads(resent.stdout)["recovery"]
    twice = {
        r["e"]
        for r in _rows(
            hq,
            "SELECT entity_id::text AS e FROM entity_dispatches WHERE sent_at IS NOT NULL"
            " GROUP BY 1 HAVING count(*) = 2",
        )
    }
    assert recovery["entities_resent"] == len(waited)
    assert twice == waited, (len(twice), len(waited))
    print(
        f"real provider: {len(accepted)} calls accepted when the runner was killed; resume waited"
        f" for {said.group(1)} and re-sent none; --resend-now re-sent {len(waited)}"
        f" (every call of the stopped runners, the waiting resume's own included)"
    )
