"""What each `enrich` command says when asked for what cannot be: an unknown batch, a path
that cannot be written, a schema behind the code; a run in which nothing was enriched; and the
export's protection against spreadsheet formulas."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import psycopg
import pytest

from conftest import DatabasePair
from entities.apollo_sample_data import APOLLO_HEADERS
from orchestrator.db.pool import Databases
from orchestrator.reports.export import copy_out
from orchestrator.runtimes.service import LocalService
from orchestrator.settings import Settings
from support.cli import cli_env, enrich_argv
from support.pipeline import apollo_rows, upload

UNKNOWN = "0badc0de"
BATCH_COMMANDS = [
    ["status", UNKNOWN],
    ["resume", UNKNOWN],
    ["retry", UNKNOWN],
    ["verify", UNKNOWN],
    ["consolidate", UNKNOWN],
    ["export", UNKNOWN, "-o", "-"],
    ["step", "run", "company-research", "1", "--batch", UNKNOWN],
    ["status", "not-a-batch!"],
]


def _env(db_urls: DatabasePair, tmp_path: Path, **extra: str) -> dict[str, str]:
    return cli_env(tmp_path / "home", db_urls, **extra)


def _enrich(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        enrich_argv(*args),
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


@pytest.mark.parametrize("args", BATCH_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_an_unknown_batch_is_one_line_and_exit_2(
    db_urls: DatabasePair, tmp_path: Path, args: list[str]
) -> None:
    line = _one_line_error(_enrich(_env(db_urls, tmp_path), *args))
    assert args[-1] in line or UNKNOWN in line


def test_export_to_a_missing_folder_is_one_line_and_exit_2(
    dbs: Databases, db_urls: DatabasePair, tmp_path: Path
) -> None:
    batch = upload(dbs, _csv(3), "apollo-lead-enrichment").batch_id
    line = _one_line_error(
        _enrich(_env(db_urls, tmp_path), "export", str(batch), "-o", "/missing/dir/x.csv")
    )
    assert "/missing/dir" in line


def test_a_configured_database_behind_the_code_is_refused_not_migrated(
    db_urls: DatabasePair, tmp_path: Path, empty_database: str
) -> None:
    env = _env(db_urls, tmp_path, DATABASE_URL=empty_database)
    env.pop("WORKSPACE_DATABASE_URL")
    line = _one_line_error(_enrich(env, "batches"))
    assert "enrich db migrate" in line
    with psycopg.connect(empty_database) as conn:
        exists = conn.execute("SELECT to_regclass('upload_batches') IS NOT NULL").fetchone()
    assert exists == (False,)
    assert _enrich(env, "db", "migrate").returncode == 0
    assert _enrich(env, "batches").returncode == 0


def test_a_run_in_which_nothing_was_enriched_exits_3_with_the_provider_error(
    db_urls: DatabasePair, tmp_path: Path
) -> None:
    sample = tmp_path / "leads.csv"
    sample.write_bytes(_csv(20))
    env = _env(
        db_urls,
        tmp_path,
        # Nothing listens on the discard port: every send fails at once.
        CLAY_COMPANY_WEBHOOK_URL="http://127.0.0.1:9/company",
        CALLBACK_SECRET="commands-secret",
        CLAY_PERSON_WEBHOOK_URL="http://127.0.0.1:9/person",
        CLAY_MAX_ATTEMPTS="1",
    )
    done = _enrich(env, "run", str(sample))
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "First provider error" in done.stdout
    assert "127.0.0.1:9" in done.stdout and "ConnectionError" in done.stdout
    assert "nothing was enriched" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


FORMULAS = ['=HYPERLINK("http://x","y")', "+1+2", "-3+4", "@SUM(A1)"]


def _csv(rows: int, titles: list[str] | None = None) -> bytes:
    """A generated export whose first rows have the given titles (none duplicated, all with
    a company, so each becomes a lead)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(APOLLO_HEADERS)
    sample = apollo_rows(rows, rows, seed=7, duplicate_fraction=0.0, underivable_fraction=0.0)
    title = APOLLO_HEADERS.index("Title")
    for i, row in enumerate(sample):
        values = list(row.values)
        if titles and i < len(titles):
            values[title] = titles[i]
        writer.writerow(values)
    return out.getvalue().encode()


def test_export_neutralizes_formula_cells_and_raw_keeps_them(
    dbs: Databases, local_settings: Settings
) -> None:
    with LocalService(local_settings, dbs) as service:
        batch = upload(dbs, _csv(12, FORMULAS), "apollo-lead-enrichment").batch_id
        service.runtime.run_batch(batch, timeout=120)
    safe, raw = io.BytesIO(), io.BytesIO()
    assert copy_out(dbs, batch, safe) == copy_out(dbs, batch, raw, raw=True) > 0
    safe_titles = {r["title"] for r in csv.DictReader(io.StringIO(safe.getvalue().decode()))}
    raw_titles = {r["title"] for r in csv.DictReader(io.StringIO(raw.getvalue().decode()))}
    present = [f for f in FORMULAS if f in raw_titles]
    assert len(present) == len(FORMULAS)
    assert {f"'{f}" for f in FORMULAS} <= safe_titles
    assert not [t for t in safe_titles if t[:1] and t[:1] in "=+-@"]


def test_an_uploaded_batch_nobody_runs_shows_as_uploaded_with_the_command_that_runs_it(
    db_urls: DatabasePair, tmp_path: Path
) -> None:
    sample = tmp_path / "leads.csv"
    sample.write_bytes(_csv(5))
    env = _env(db_urls, tmp_path)
    uploaded = _enrich(env, "upload", str(sample))
    assert uploaded.returncode == 0, uploaded.stderr
    assert "run it with: enrich resume " in uploaded.stdout
    status = _enrich(env, "status", uploaded.stdout.split()[1].rstrip(":"))
    assert "UPLOADED" in status.stdout and "enrich resume" in status.stdout, status.stdout
    assert "UPLOADED" in _enrich(env, "batches").stdout


@pytest.mark.parametrize("kind", ["read-only", "folder", "device", "empty"])
def test_export_refuses_to_replace_what_is_not_a_writable_file(
    dbs: Databases, db_urls: DatabasePair, tmp_path: Path, kind: str
) -> None:
    batch = upload(dbs, _csv(3), "apollo-lead-enrichment").batch_id
    target = {"read-only": tmp_path / "ro.csv", "folder": tmp_path, "device": Path("/dev/null"),
              "empty": Path("")}[kind]  # fmt: skip
    if kind == "read-only":
        target.write_text("keep me")
        target.chmod(0o444)
    line = _one_line_error(
        _enrich(
            _env(db_urls, tmp_path),
            "export",
            str(batch),
            "-o",
            str(target) if kind != "empty" else "",
        )
    )
    assert ".part" not in line
    if kind == "read-only":
        assert target.read_text() == "keep me" and "read-only" in line


def test_a_held_batch_waits_for_its_launch_and_says_how(
    db_urls: DatabasePair, tmp_path: Path
) -> None:
    sample = tmp_path / "leads.csv"
    sample.write_bytes(_csv(5))
    env = _env(db_urls, tmp_path)
    uploaded = _enrich(env, "upload", str(sample), "--hold")
    assert uploaded.returncode == 0, uploaded.stderr
    batch = uploaded.stdout.split()[1].rstrip(":")
    assert f"enrich launch {batch}" in uploaded.stdout
    # The same file run again is that batch: it waits for its launch, and says so.
    again = _enrich(env, "run", str(sample))
    assert again.returncode == 4, (again.stdout, again.stderr)
    assert f"launch it with: enrich launch {batch}" in again.stderr
    assert "HELD" in _enrich(env, "status", batch).stdout
    resumed = _enrich(env, "resume", batch)
    assert "held for launch" in _one_line_error(resumed)
    launched = _enrich(env, "launch", batch, "--json")
    assert launched.returncode == 0, launched.stderr
    assert '"status": "COMPLETED"' in launched.stdout
    twice = _enrich(env, "launch", batch)
    assert "is completed already: there is nothing to launch" in _one_line_error(twice)


def test_a_cap_given_with_the_same_file_again_is_the_batch_s_new_cap(
    db_urls: DatabasePair, tmp_path: Path
) -> None:
    sample = tmp_path / "leads.csv"
    sample.write_bytes(_csv(30))
    env = _env(db_urls, tmp_path)
    first = _enrich(env, "run", str(sample), "--credit-cap", "10", "--json")
    assert first.returncode == 4, first.stderr
    again = _enrich(env, "run", str(sample), "--credit-cap", "1,000", "--json")
    assert again.returncode == 0, again.stderr
    assert "its credit cap is now 1,000 credits" in again.stderr
    assert 10 < json.loads(again.stdout)["credits_spent"] <= 1000
