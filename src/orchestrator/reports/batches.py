"""Finding batches: by a unique prefix of their id, and the list `enrich batches` shows."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from orchestrator.db.pool import Conn
from orchestrator.db.queries import query
from orchestrator.engine.runners import live_runners
from orchestrator.reports.credits import Credits, batch_credits

_PREFIX = re.compile(r"^[0-9a-f-]{4,36}$")


class BatchRefError(LookupError):
    """A batch argument that names no batch, or more than one."""


def resolve_batch(conn: Conn, ref: str) -> UUID:
    """The batch a full id or a unique prefix of one (at least 4 characters) names."""
    text = ref.strip().lower()
    if not _PREFIX.match(text):
        raise BatchRefError(
            f"{ref!r} is not a batch id: give the id `enrich batches` lists, or its first"
            " 4 or more characters"
        )
    rows = conn.execute(query("batches_by_prefix"), {"prefix": text}).fetchall()
    if not rows:
        raise BatchRefError(f"no upload batch {ref!r}; `enrich batches` lists them")
    if len(rows) > 1:
        shown = ", ".join(str(r["id"])[:13] for r in rows[:3])
        raise BatchRefError(f"{ref!r} matches more than one batch ({shown}...); give more of it")
    return UUID(str(rows[0]["id"]))


@dataclass(frozen=True)
class BatchLine:
    batch_id: UUID
    client_name: str
    file_name: str
    items: int
    status: str
    done: int
    failed: int
    credits: Credits
    created_at: datetime


# A RUNNING batch that no live process is working on is waiting for someone to run it.
NOT_STARTED, STOPPED = "UPLOADED", "PAUSED"


def shown_status(row: Mapping[str, Any]) -> str:
    """The batch's status as a person needs it: RUNNING only while someone runs it."""
    if row["status"] != "RUNNING" or row["active"]:
        return str(row["status"])
    return STOPPED if row["started"] else NOT_STARTED


def overview(conn: Conn, batch_id: UUID | None, limit: int) -> list[dict[str, Any]]:
    params = {"batch_id": batch_id, "limit": limit, "live": live_runners(conn)}
    return [dict(r) for r in conn.execute(query("batch_overview"), params)]


def list_batches(conn: Conn, limit: int = 50) -> list[BatchLine]:
    rows = overview(conn, None, limit)
    credits = batch_credits(conn, [UUID(str(r["id"])) for r in rows])
    return [
        BatchLine(
            UUID(str(r["id"])),
            str(r["client_name"]),
            str(r["file_name"] or ""),
            int(r["items"]),
            shown_status(r),
            int(r["done"]),
            int(r["failed"]),
            credits.get(UUID(str(r["id"])), Credits()),
            r["created_at"],
        )
        for r in rows
    ]


def database_now(conn: Conn) -> datetime:
    row = conn.execute(query("database_now")).fetchone()
    assert row is not None
    now: datetime = row["now"]
    return now


def callbacks_stored_since(conn: Conn, batch_id: UUID, since: datetime) -> int:
    row = conn.execute(
        query("callbacks_stored_since"), {"batch_id": batch_id, "since": since}
    ).fetchone()
    return int(row["stored"]) if row else 0
