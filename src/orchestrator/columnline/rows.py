"""Running the named queries of `/api/columnline/` on one HQ connection, and locking a run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from orchestrator.columnline.errors import ConflictError, NotFoundError
from orchestrator.db.pool import Conn
from orchestrator.db.queries import query


def one(conn: Conn, name: str, params: Mapping[str, Any]) -> DictRow | None:
    return conn.execute(query(name), params).fetchone()


def every(conn: Conn, name: str, params: Mapping[str, Any]) -> list[DictRow]:
    return conn.execute(query(name), params).fetchall()


def returned(conn: Conn, name: str, params: Mapping[str, Any]) -> DictRow:
    """The row of a statement that always returns one (an upsert)."""
    row = one(conn, name, params)
    assert row is not None, f"{name} returned no row"
    return row


def jsonb(value: Any) -> Jsonb | None:
    # JSON null is stored as SQL NULL: "no output" reads the same either way.
    return None if value is None else Jsonb(value)


def no_run(run_id: UUID) -> NotFoundError:
    return NotFoundError("run_not_found", f"run {run_id} does not exist", run_id=run_id)


def no_client(slug: str) -> NotFoundError:
    return NotFoundError("client_not_found", f"no client with slug {slug!r}", client_slug=slug)


def client_id(conn: Conn, slug: str) -> UUID:
    row = one(conn, "v2_client_id", {"slug": slug})
    if row is None:
        raise no_client(slug)
    found: UUID = row["id"]
    return found


def lock_run(conn: Conn, run_id: UUID) -> DictRow:
    """The run's row, locked until the transaction ends: writes to one run take turns."""
    row = one(conn, "v2_lock_run", {"run_id": run_id})
    if row is None:
        raise no_run(run_id)
    return row


def preview(text: str | None, length: int = 200) -> str | None:
    """The start of a long text, for a message (an end reason may be a whole error page)."""
    if text is None or len(text) <= length:
        return text
    return f"{text[:length]}... ({len(text):,} characters)"


def ended(run: DictRow, consequence: str = "it takes no more writes") -> ConflictError | None:
    """Why the locked run takes no more writes; None while it is running."""
    run_id, status = run["id"], run["status"]
    if status == "published":
        return ConflictError(
            "run_published", f"run {run_id} is published: {consequence}", run_id=run_id
        )
    if status == "failed":
        reason = preview(run["end_reason"])
        return ConflictError(
            "run_failed",
            f"run {run_id} was ended as failed ({reason}): {consequence}",
            run_id=run_id,
            reason=reason,
        )
    if status == "completed":
        return ConflictError(
            "run_completed",
            f"run {run_id} was ended as completed: {consequence}",
            run_id=run_id,
        )
    return None


def lock_running_run(conn: Conn, run_id: UUID) -> DictRow:
    run = lock_run(conn, run_id)
    if (refusal := ended(run)) is not None:
        raise refusal
    return run
