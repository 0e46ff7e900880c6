"""Helpers for tests that break things on purpose."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from orchestrator.db.pool import Databases


def set_leases(dbs: Databases, seconds: int, max_attempts: int = 3) -> None:
    """Short leases so expired work is recovered within a test's patience."""
    with dbs.hq.connection() as conn:
        conn.execute(
            "UPDATE db_driven_enrichment_workflows SET timeout_seconds = %s, max_attempts = %s",
            (seconds, max_attempts),
        )


def wait_until(predicate: Callable[[], bool], timeout: float = 60, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached in time")
        time.sleep(every)


def scalar(dbs: Databases, sql: str, *params: object) -> Any:
    with dbs.hq.connection() as conn:
        row = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]
    return next(iter(row.values())) if row else None


def rows(dbs: Databases, sql: str, *params: object) -> list[dict[str, Any]]:
    with dbs.hq.connection() as conn:
        return [dict(r) for r in conn.execute(sql, params)]  # type: ignore[arg-type]


def unfinished_items(dbs: Databases) -> int:
    return int(
        scalar(
            dbs, "SELECT count(*) FROM workflow_states WHERE status IN ('PENDING', 'IN_PROGRESS')"
        )
    )
