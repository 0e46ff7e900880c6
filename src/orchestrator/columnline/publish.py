"""Publishing a finished run behind `/api/columnline/publish`: one `dossiers` row and its
`contacts`, in the caller's transaction.

The dossier document is built by Postgres from the run's logs (see `v2_insert_dossier`), so a
large run never passes through the API's memory, and the run's size budget
(`fields.MAX_RUN_BYTES`) keeps it within what one JSONB document may hold.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.rows import DictRow

from orchestrator.columnline.errors import ConflictError
from orchestrator.columnline.inputs import PublishIn
from orchestrator.columnline.outputs import PublishResult
from orchestrator.columnline.rows import ended, every, lock_run, one, returned
from orchestrator.db.pool import Conn
from orchestrator.db.queries import query


def _require_publishable(conn: Conn, run: DictRow) -> None:
    run_id = run["id"]
    if run["status"] == "failed" and (refusal := ended(run, "it cannot be published")):
        raise refusal
    states = every(conn, "v2_stage_states", {"run_id": run_id})
    open_stages = [s["stage"] for s in states if not s["completed"]]
    if open_stages:
        raise ConflictError(
            "stages_not_completed",
            f"run {run_id} has stages started but not completed: {', '.join(open_stages)}",
            run_id=run_id,
            stages=", ".join(open_stages),
        )
    if not states:
        raise ConflictError(
            "no_completed_stage",
            f"run {run_id} has no completed stage: nothing to publish",
            run_id=run_id,
        )


def _dossier_batch_id(conn: Conn, client_id: UUID, name: str | None) -> UUID | None:
    if name is None:
        return None
    row = returned(conn, "v2_upsert_dossier_batch", {"client_id": client_id, "name": name})
    batch_id: UUID = row["id"]
    return batch_id


def _publish_result(conn: Conn, dossier: DictRow, *, already_published: bool) -> PublishResult:
    summary = returned(conn, "v2_dossier_summary", {"dossier_id": dossier["id"]})
    return PublishResult(
        dossier_id=dossier["id"],
        run_id=dossier["run_id"],
        already_published=already_published,
        dossier_batch_id=dossier["dossier_batch_id"],
        published_at=dossier["published_at"],
        sections=summary["sections"],
        missing_sections=summary["missing_sections"],
        stages=summary["stages"],
        contacts=summary["contacts"],
    )


def publish(conn: Conn, body: PublishIn) -> PublishResult:
    """Copy a finished run into `dossiers` + `contacts`; a no-op returning the same dossier
    when the run is already published (the batch of the first publish wins)."""
    # The run's lock: concurrent publishes of one run take turns, and the later ones find the
    # dossier the first one committed.
    run = lock_run(conn, body.run_id)
    params: dict[str, Any] = {"run_id": body.run_id}
    existing = one(conn, "v2_find_dossier", params)
    if existing is not None:
        return _publish_result(conn, existing, already_published=True)
    _require_publishable(conn, run)
    batch_id = _dossier_batch_id(conn, run["client_id"], body.dossier_batch)
    dossier = one(conn, "v2_insert_dossier", {**params, "dossier_batch_id": batch_id})
    if dossier is None:
        # Only reachable if the lock above were bypassed: UNIQUE(run_id) still keeps one dossier.
        return _publish_result(
            conn, returned(conn, "v2_find_dossier", params), already_published=True
        )
    conn.execute(query("v2_publish_contacts"), {**params, "dossier_id": dossier["id"]})
    conn.execute(query("v2_mark_published"), params)
    return _publish_result(conn, dossier, already_published=False)
