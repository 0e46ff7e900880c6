"""Find a real PostgreSQL for the test suite, as the project's brief orders it:
TEST_DATABASE_URL if set; else a testcontainers Postgres when a Docker engine answers;
else the embedded server."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from orchestrator.db.embedded import start_embedded
from orchestrator.db.migrate import migrate_all


@dataclass(frozen=True)
class PostgresServer:
    admin_conninfo: str
    kind: str
    version: str

    def conninfo(self, dbname: str) -> str:
        params = {k: str(v) for k, v in conninfo_to_dict(self.admin_conninfo).items() if v}
        params["dbname"] = dbname
        return make_conninfo("", **params)


def _docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


def _version(conninfo: str) -> str:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


@contextmanager
def find_postgres() -> Iterator[PostgresServer]:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield PostgresServer(url, "TEST_DATABASE_URL", _version(url))
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine") as container:
            conninfo = container.get_connection_url(driver=None)
            yield PostgresServer(conninfo, "testcontainers", _version(conninfo))
        return
    # Short path: the server's Unix socket lives in the data directory (108-byte limit).
    root = Path(tempfile.mkdtemp(prefix="enrich-pg-"))
    embedded = start_embedded(root / "pgdata", cleanup_mode="stop")
    try:
        conninfo = embedded.conninfo("postgres")
        _throwaway_durability(conninfo)
        yield PostgresServer(conninfo, "embedded", _version(conninfo))
    finally:
        embedded.stop()
        shutil.rmtree(root, ignore_errors=True)


def _throwaway_durability(conninfo: str) -> None:
    """A test server's data dies with the run: skip the fsyncs that make CREATE DATABASE slow."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = off").format(sql.Identifier(setting)))
        conn.execute("SELECT pg_reload_conf()")


def create_database(server: PostgresServer, name: str, template: str | None = None) -> str:
    with psycopg.connect(server.admin_conninfo, autocommit=True) as conn:
        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            stmt = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        conn.execute(stmt)
    return server.conninfo(name)


def drop_database(server: PostgresServer, name: str) -> None:
    with psycopg.connect(server.admin_conninfo, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@dataclass(frozen=True)
class Templates:
    hq: str
    workspace: str


@contextmanager
def migrated_templates(server: PostgresServer) -> Iterator[Templates]:
    tag = uuid.uuid4().hex[:8]
    templates = Templates(hq=f"enrich_tpl_{tag}_hq", workspace=f"enrich_tpl_{tag}_ws")
    try:
        hq = create_database(server, templates.hq)
        workspace = create_database(server, templates.workspace)
        migrate_all(hq, workspace)
        yield templates
    finally:
        drop_database(server, templates.hq)
        drop_database(server, templates.workspace)


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"
