"""Connection pools for the HQ and Workspace databases, and a statement counter.

Every statement sent through these pools is counted, so tests and benchmarks can check that
the hot paths stay set-based (a pass over 10,000 items issues as many statements as one over
1,000).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from orchestrator.db.migrate import migrate_all, require_current
from orchestrator.db.urls import DatabaseUrls, require_session, resolve_database_urls
from orchestrator.settings import Settings, get_settings

Conn: TypeAlias = psycopg.Connection[DictRow]


class StatementCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    def add(self, n: int = 1) -> None:
        with self._lock:
            self._value += n

    @property
    def value(self) -> int:
        return self._value

    @contextmanager
    def measure(self) -> Iterator[list[int]]:
        """Yield a one-element list that holds the statements issued inside the block."""
        box = [0]
        start = self.value
        try:
            yield box
        finally:
            box[0] = self.value - start


STATEMENTS = StatementCounter()


class CountingCursor(psycopg.Cursor[DictRow]):
    def execute(self, *args: Any, **kwargs: Any) -> Any:
        STATEMENTS.add()
        return super().execute(*args, **kwargs)

    def executemany(self, query: Any, params_seq: Iterable[Any], **kwargs: Any) -> None:
        STATEMENTS.add()
        super().executemany(query, params_seq, **kwargs)

    def copy(self, *args: Any, **kwargs: Any) -> Any:
        STATEMENTS.add()
        return super().copy(*args, **kwargs)


def _configure(conn: Conn) -> None:
    conn.row_factory = dict_row
    conn.cursor_factory = CountingCursor


def _configure_session(conn: Conn) -> None:
    _configure(conn)
    # Our statements are short and many; JIT compiling one whose estimated cost crosses the
    # threshold (a set-based statement over a few rows can) costs ~100 ms for nothing.
    conn.execute("SET jit = off")
    conn.commit()


def open_pool(
    conninfo: str,
    *,
    name: str,
    min_size: int = 1,
    max_size: int = 10,
    transaction_pooler: bool = False,
) -> ConnectionPool[Conn]:
    """A pool of connections. Behind a transaction pooler (Supabase's port 6543, PgBouncer in
    transaction mode) consecutive transactions of one connection may reach different server
    sessions, so nothing is kept in a session: no SET; jit comes from the role instead (see
    the migration `20261202000100_role_settings.sql`).

    No statement is ever prepared on the server (psycopg would after five runs), pooler or
    not: a batch grows a table from empty to 100,000s of rows within minutes, faster than
    autoanalyze follows, and the generic plan the server keeps for a prepared statement is
    costed once, with the sizes of that moment (planned on an empty table it scanned every
    row per row it looked up, and kept doing so as the table filled). An unnamed statement is
    planned for its parameters and the tables' current sizes at each run; parsing it again
    costs little, at a few statements per 500 items. Server-side plans (foreign-key checks,
    triggers) keep the server's default plan cache, which plans them once."""
    kwargs: dict[str, Any] = {"autocommit": False, "prepare_threshold": None}
    pool: ConnectionPool[Conn] = ConnectionPool(
        conninfo,
        name=name,
        min_size=min_size,
        max_size=max_size,
        kwargs=kwargs,
        configure=_configure if transaction_pooler else _configure_session,
        open=True,
    )
    pool.wait(timeout=30)
    return pool


@dataclass
class Databases:
    """The two databases of the system, each behind its own pool."""

    hq: ConnectionPool[Conn]
    workspace: ConnectionPool[Conn]
    urls: DatabaseUrls
    _closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.hq.close()
        if self.workspace is not self.hq:
            self.workspace.close()

    def __enter__(self) -> Databases:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_databases(
    urls: DatabaseUrls | None = None,
    *,
    settings: Settings | None = None,
    migrate: bool | None = None,
) -> Databases:
    """Pools on both databases. Migrations: `migrate=True` applies them; `None` (the default)
    applies them to the embedded server only; otherwise a schema that is behind is refused."""
    settings = settings or get_settings()
    urls = urls or resolve_database_urls(settings)
    if migrate is None:
        migrate = urls.embedded is not None
    if migrate:
        migrate_all(require_session(urls).hq, urls.workspace)
    else:
        require_current(urls.hq, urls.workspace)
    sizes = {"min_size": settings.pool_min_size, "max_size": settings.pool_max_size}
    hq = open_pool(urls.hq, name="hq", transaction_pooler=urls.pooler == "transaction", **sizes)
    workspace = (
        hq
        if urls.shared
        else open_pool(
            urls.workspace,
            name="workspace",
            transaction_pooler=urls.workspace_pooler == "transaction",
            **sizes,
        )
    )
    return Databases(hq=hq, workspace=workspace, urls=urls)
