"""The migration runner: ordered, recorded like the Supabase CLI, idempotent, concurrency-safe."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psycopg
import pytest

from orchestrator.db.migrate import (
    MigrationError,
    discover,
    hq_migrations_dir,
    migrate,
    migrate_all,
    workspace_migrations_dir,
)
from support.postgres import PostgresServer, create_database, drop_database, unique_name

HQ_FILES = sorted(p.stem for p in hq_migrations_dir().glob("*.sql"))
WORKSPACE_FILES = sorted(p.stem for p in workspace_migrations_dir().glob("*.sql"))
ALL_FILES = sorted(HQ_FILES + WORKSPACE_FILES)


@pytest.fixture
def empty_pair(pg_server: PostgresServer) -> Iterator[tuple[str, str]]:
    names = unique_name("m_hq"), unique_name("m_ws")
    urls = tuple(create_database(pg_server, n) for n in names)
    yield urls  # type: ignore[misc]
    for name in names:
        drop_database(pg_server, name)


def _recorded(conninfo: str) -> list[tuple[str, str, int]]:
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "SELECT version, name, cardinality(statements) FROM"
            " supabase_migrations.schema_migrations ORDER BY version"
        ).fetchall()
    return [(str(v), str(n), int(c)) for v, n, c in rows]


def test_applies_in_order_and_records_like_supabase_cli(empty_pair: tuple[str, str]) -> None:
    hq, ws = empty_pair
    reports = migrate_all(hq, ws)
    assert [r.database for r in reports] == ["hq", "workspace"]
    assert [f"{v}_{n}" for v, n, _ in _recorded(hq)] == HQ_FILES
    assert [f"{v}_{n}" for v, n, _ in _recorded(ws)] == WORKSPACE_FILES
    assert all(count > 0 for _, _, count in _recorded(hq) + _recorded(ws))


def test_second_run_applies_nothing(empty_pair: tuple[str, str]) -> None:
    hq, ws = empty_pair
    migrate_all(hq, ws)
    again = migrate_all(hq, ws)
    assert [r.applied for r in again] == [[], []]
    assert sum(r.already_applied for r in again) == len(ALL_FILES)


def _migrate_in_child(hq: str, ws: str) -> int:
    return sum(len(r.applied) for r in migrate_all(hq, ws))


def test_concurrent_runs_record_each_migration_once(empty_pair: tuple[str, str]) -> None:
    hq, ws = empty_pair
    with ProcessPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(_migrate_in_child, hq, ws) for _ in range(4)]
        applied = [f.result() for f in futures]
    assert sum(applied) == len(ALL_FILES)
    recorded = _recorded(hq) + _recorded(ws)
    assert len(recorded) == len({v for v, _, _ in recorded}) == len(ALL_FILES)


def test_one_database_for_both_takes_both_folders(pg_server: PostgresServer) -> None:
    name = unique_name("m_shared")
    url = create_database(pg_server, name)
    try:
        (report,) = migrate_all(url, url)
        assert report.database == "hq+workspace"
        assert len(report.applied) == len(ALL_FILES)
    finally:
        drop_database(pg_server, name)


def test_failed_migration_leaves_nothing_behind(
    empty_pair: tuple[str, str], tmp_path: Path
) -> None:
    hq, _ = empty_pair
    (tmp_path / "20260101000000_good.sql").write_text("CREATE TABLE good_one (id int);")
    (tmp_path / "20260101000100_bad.sql").write_text(
        "CREATE TABLE half_done (id int);\nSELECT no_such_function();"
    )
    with pytest.raises(MigrationError, match=r"20260101000100_bad\.sql"):
        migrate(hq, [tmp_path])
    with psycopg.connect(hq) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables")}
    assert "good_one" in tables and "half_done" not in tables
    assert [v for v, _, _ in _recorded(hq)] == ["20260101000000"]


def test_badly_named_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "001_init.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="14-digit UTC timestamp"):
        discover([tmp_path])


def _enrich(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if "DATABASE_URL" not in k}
    env["ENRICH_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", *args],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_cli_migrate_with_no_environment_uses_the_embedded_server() -> None:
    home = Path(tempfile.mkdtemp(prefix="enrich-cli-"))
    first = _enrich(["db", "migrate"], home)
    assert first.returncode == 0, first.stderr
    assert "embedded Postgres" in first.stdout
    assert f"hq: applied {len(HQ_FILES)} migration(s)" in first.stdout
    assert f"workspace: applied {len(WORKSPACE_FILES)} migration(s)" in first.stdout
    second = _enrich(["db", "migrate"], home)
    assert second.returncode == 0, second.stderr
    assert "hq: up to date" in second.stdout and "workspace: up to date" in second.stdout
