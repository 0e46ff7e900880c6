"""Apply the migrations (`supabase/migrations/*.sql`) the way the Supabase CLI does.

Each file is one transaction and is recorded in `supabase_migrations.schema_migrations`
(version, statements, name), so a database migrated here is seen as up to date by
`supabase db push`, and the other way round. A session advisory lock makes concurrent runs
take turns; the second finds nothing left to do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import sqlparse

# Any constant works; it only has to be the same in every process that migrates.
MIGRATION_LOCK_KEY = 7_319_220_511
FILENAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    pass


class SchemaBehindError(MigrationError):
    """A configured database whose schema is older than the code."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    def statements(self) -> list[str]:
        text = self.path.read_text(encoding="utf-8")
        parts = (sqlparse.format(s, strip_comments=False).strip() for s in sqlparse.split(text))
        return [p.rstrip(";").strip() for p in parts if _has_code(p)]


@dataclass
class MigrationReport:
    database: str
    applied: list[str] = field(default_factory=list)
    already_applied: int = 0


def _has_code(statement: str) -> bool:
    stripped = sqlparse.format(statement, strip_comments=True).strip().rstrip(";").strip()
    return bool(stripped)


# The migrations ship inside the package (installed wheels and Modal containers have no
# checkout); `supabase/migrations` and `workspace/supabase/migrations` in the repository are
# links to these folders, where the Supabase CLI looks for them.
MIGRATIONS = Path(__file__).resolve().with_name("migrations")


def hq_migrations_dir() -> Path:
    return MIGRATIONS / "hq"


def workspace_migrations_dir() -> Path:
    return MIGRATIONS / "workspace"


def discover(folders: Iterable[Path]) -> list[Migration]:
    found: dict[str, Migration] = {}
    for folder in folders:
        if not folder.is_dir():
            raise MigrationError(f"migrations folder not found: {folder}")
        for path in sorted(folder.glob("*.sql")):
            match = FILENAME.match(path.name)
            if not match:
                raise MigrationError(
                    f"{path}: migration files must be named <14-digit UTC timestamp>_<name>.sql"
                )
            version = match["version"]
            if version in found and found[version].path != path:
                other = found[version].path
                raise MigrationError(f"{path}: version {version} is also used by {other}")
            found[version] = Migration(version=version, name=match["name"], path=path)
    return [found[v] for v in sorted(found)]


_BOOKKEEPING = (
    "CREATE SCHEMA IF NOT EXISTS supabase_migrations",
    "CREATE TABLE IF NOT EXISTS supabase_migrations.schema_migrations "
    "(version text NOT NULL PRIMARY KEY, statements text[], name text)",
)


def migrate(conninfo: str, folders: Iterable[Path], *, label: str = "database") -> MigrationReport:
    migrations = discover(folders)
    report = MigrationReport(database=label)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            for statement in _BOOKKEEPING:
                conn.execute(statement)
            rows = conn.execute("SELECT version FROM supabase_migrations.schema_migrations")
            applied = {r[0] for r in rows.fetchall()}
            for migration in migrations:
                if migration.version in applied:
                    report.already_applied += 1
                    continue
                _apply(conn, migration)
                report.applied.append(f"{migration.version}_{migration.name}")
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return report


def _apply(conn: psycopg.Connection[tuple[object, ...]], migration: Migration) -> None:
    statements = migration.statements()
    try:
        with conn.transaction():
            for statement in statements:
                # Migration files are trusted project source, not user input.
                conn.execute(statement)
            conn.execute(
                "INSERT INTO supabase_migrations.schema_migrations (version, statements, name) "
                "VALUES (%s, %s, %s)",
                (migration.version, statements, migration.name),
            )
    except psycopg.Error as exc:
        raise MigrationError(f"{migration.path.name}: {exc}") from exc


def pending(conninfo: str, folders: Iterable[Path]) -> list[str]:
    """Migrations not yet applied to the database, read without changing anything."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT to_regclass('supabase_migrations.schema_migrations') IS NOT NULL"
        ).fetchone()
        rows = (
            conn.execute("SELECT version FROM supabase_migrations.schema_migrations").fetchall()
            if exists and exists[0]
            else []
        )
    applied = {r[0] for r in rows}
    return [f"{m.version}_{m.name}" for m in discover(folders) if m.version not in applied]


def _folders(hq: str, workspace: str) -> list[tuple[str, list[Path], str]]:
    if hq == workspace:
        return [(hq, [hq_migrations_dir(), workspace_migrations_dir()], "hq+workspace")]
    return [
        (hq, [hq_migrations_dir()], "hq"),
        (workspace, [workspace_migrations_dir()], "workspace"),
    ]


def require_current(hq: str, workspace: str) -> None:
    """Refuse to work on a schema that is behind the code: only `enrich db migrate` changes a
    configured database's schema."""
    for conninfo, folders, label in _folders(hq, workspace):
        missing = pending(conninfo, folders)
        if missing:
            raise SchemaBehindError(
                f"the {label} database is {len(missing)} migration(s) behind this version"
                f" (first: {missing[0]}); run `enrich db migrate` to update it"
            )


def migrate_all(hq: str, workspace: str) -> list[MigrationReport]:
    """Migrate both databases; when they are one database, apply both folders to it."""
    return [migrate(url, folders, label=label) for url, folders, label in _folders(hq, workspace)]
