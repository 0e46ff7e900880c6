"""Named SQL queries kept in `orchestrator/db/sql/*.sql`.

A file holds blocks that start with `-- name: <query_name>`; the comment lines right after it
document the query. Keeping SQL in files keeps it readable, greppable and reviewable as SQL.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from psycopg import sql

_SQL_DIR = Path(__file__).with_name("sql")
_NAME = re.compile(r"^--\s*name:\s*(?P<name>[a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def _parse(text: str, source: str) -> dict[str, str]:
    queries: dict[str, str] = {}
    matches = list(_NAME.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[match.end() : end].strip()
        name = match["name"]
        if name in queries:
            raise ValueError(f"{source}: query {name!r} is defined twice")
        queries[name] = body
    return queries


@lru_cache(maxsize=1)
def _all_queries() -> dict[str, str]:
    queries: dict[str, str] = {}
    for path in sorted(_SQL_DIR.glob("*.sql")):
        for name, body in _parse(path.read_text(encoding="utf-8"), path.name).items():
            if name in queries:
                raise ValueError(f"{path.name}: query {name!r} is also defined in another file")
            queries[name] = body
    return queries


def query(name: str) -> sql.SQL:
    """The named query, ready for `cursor.execute(query(name), params)`."""
    try:
        text = _all_queries()[name]
    except KeyError:
        raise KeyError(f"no SQL query named {name!r} in {_SQL_DIR}") from None
    # The text comes from the project's own .sql files, never from user input.
    return sql.SQL(text)


def query_names() -> list[str]:
    return sorted(_all_queries())
