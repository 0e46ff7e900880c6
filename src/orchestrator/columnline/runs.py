"""A dossier run behind `/api/columnline/`: start it, log its stages, steps and contacts, end it,
read it.

Plain functions on one HQ connection, inside the caller's transaction (the pool commits when the
request succeeds, rolls back when it raises). Every write locks the run's row first
(`rows.lock_run`), so writes to one run take turns and a run that ended takes none.

A stage event sent again with the same body answers the event it first made: Make.com retries a
module whose answer it did not get, and that retry must not stop the scenario.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal
from uuid import UUID, uuid4

from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from orchestrator.columnline.errors import ConflictError, TooLargeError
from orchestrator.columnline.fields import MAX_RUN_BYTES, STAGE_EVENT_RESERVE
from orchestrator.columnline.inputs import (
    ContactsIn,
    RunEnd,
    RunStart,
    StageComplete,
    StageStart,
    StepLog,
)
from orchestrator.columnline.outputs import (
    ContactOut,
    ContactsAdded,
    LogEntry,
    RunDetail,
    RunEnded,
    RunStarted,
    RunSummary,
    StageEvent,
    StepLogged,
)
from orchestrator.columnline.rows import (
    every,
    jsonb,
    lock_run,
    lock_running_run,
    no_client,
    no_run,
    one,
    preview,
    returned,
)
from orchestrator.db.pool import Conn

StageEventType = Literal["stage_start", "stage_complete"]


def start_run(conn: Conn, body: RunStart) -> RunStarted:
    params = {
        "client_slug": body.client_slug,
        "target_company": body.target_company,
        "target_domain": body.target_domain,
        "input": Jsonb(body.input),
    }
    row = one(conn, "v2_create_run", params)
    if row is None:
        raise no_client(body.client_slug)
    return RunStarted.model_validate(row)


def _too_large(run: DictRow, what: str) -> TooLargeError:
    held = run["stored_bytes"] / 2**20
    return TooLargeError(
        "run_too_large",
        f"run {run['id']} holds {held:.1f} MiB of logs and contacts: this {what} would take it"
        f" past the {MAX_RUN_BYTES // 2**20} MiB a run may hold, so its dossier could not be"
        " published. Keep large documents elsewhere and log a link to them.",
        run_id=run["id"],
        stored_bytes=run["stored_bytes"],
        max_run_bytes=MAX_RUN_BYTES,
    )


def _event_params(body: StageStart, event_type: StageEventType, output: Any) -> dict[str, Any]:
    return {
        "run_id": body.run_id,
        "stage": body.stage,
        "event_type": event_type,
        "output": jsonb(output),
        "max_run_bytes": MAX_RUN_BYTES,
        "reserve": STAGE_EVENT_RESERVE,
    }


def _stage_event(
    conn: Conn, body: StageStart, event_type: StageEventType, output: Any
) -> DictRow | None:
    """The stage's event of this type, if logged, with whether its output is `output`."""
    return one(conn, "v2_stage_event", _event_params(body, event_type, output))


def _insert_stage_event(
    conn: Conn, run: DictRow, body: StageStart, event_type: StageEventType, output: Any = None
) -> StageEvent:
    row = one(conn, "v2_insert_stage_event", _event_params(body, event_type, output))
    if row is None:
        raise _too_large(run, "stage output" if output is not None else "stage event")
    return StageEvent.model_validate(row)


def start_stage(conn: Conn, body: StageStart) -> StageEvent:
    """Log the stage's start and make it the run's current stage; the same start sent again
    answers the first one."""
    run = lock_running_run(conn, body.run_id)
    existing = _stage_event(conn, body, "stage_start", None)
    if existing is not None:
        return StageEvent.model_validate(existing)
    return _insert_stage_event(conn, run, body, "stage_start")


def complete_stage(conn: Conn, body: StageComplete) -> StageEvent:
    """Log a started stage's completion with its output; the same completion sent again
    answers the first one, another output is a conflict."""
    run = lock_running_run(conn, body.run_id)
    where = {"run_id": body.run_id, "stage": body.stage}
    existing = _stage_event(conn, body, "stage_complete", body.output)
    if existing is not None:
        if existing["same_output"]:
            return StageEvent.model_validate(existing)
        raise ConflictError(
            "stage_already_completed",
            f"stage {body.stage!r} of run {body.run_id} was already completed with another output",
            **where,
        )
    if _stage_event(conn, body, "stage_start", None) is None:
        raise ConflictError(
            "stage_not_started",
            f"stage {body.stage!r} of run {body.run_id} was never started"
            " (POST /stages/start first)",
            **where,
        )
    return _insert_stage_event(conn, run, body, "stage_complete", body.output)


def log_step(conn: Conn, body: StepLog) -> StepLogged:
    run = lock_running_run(conn, body.run_id)
    params = {
        **body.model_dump(exclude={"input", "output"}),
        "input": jsonb(body.input),
        "output": jsonb(body.output),
        "max_run_bytes": MAX_RUN_BYTES,
    }
    row = one(conn, "v2_insert_step", params)
    if row is None:
        raise _too_large(run, "step")
    return StepLogged.model_validate(row)


def add_contacts(conn: Conn, body: ContactsIn) -> ContactsAdded:
    run = lock_running_run(conn, body.run_id)
    ids = [uuid4() for _ in body.contacts]
    docs = [
        {"id": str(contact_id), **contact.model_dump()}
        for contact_id, contact in zip(ids, body.contacts, strict=True)
    ]
    params = {"run_id": body.run_id, "contacts": Jsonb(docs), "max_run_bytes": MAX_RUN_BYTES}
    if not every(conn, "v2_insert_contacts", params):
        raise _too_large(run, "list of contacts")
    return ContactsAdded(run_id=body.run_id, contact_ids=ids)


def end_run(conn: Conn, body: RunEnd) -> RunEnded:
    """End a running run as failed or completed, without publishing it. An end with the same
    status sent again answers the first (whose reason stands: a retry's error message may
    differ); a run that ended otherwise, or was published, is a conflict."""
    run = lock_run(conn, body.run_id)
    if run["status"] == body.status:
        return RunEnded.model_validate(returned(conn, "v2_run_end", {"run_id": body.run_id}))
    if run["status"] == "published":
        raise ConflictError(
            "run_published",
            f"run {body.run_id} is published: it cannot be ended as {body.status}",
            run_id=body.run_id,
        )
    if run["status"] != "running":
        reason = f" ({preview(run['end_reason'])})" if run["end_reason"] else ""
        raise ConflictError(
            "run_ended",
            f"run {body.run_id} was ended as {run['status']}{reason}: it cannot be ended as"
            f" {body.status} as well",
            run_id=body.run_id,
            status=run["status"],
        )
    params = {"run_id": body.run_id, "status": body.status, "reason": body.reason}
    return RunEnded.model_validate(returned(conn, "v2_end_run", params))


def get_run(conn: Conn, run_id: UUID, *, stale_after: timedelta, outputs: bool) -> RunDetail:
    """The run with its logs and contacts; `outputs=False` leaves out prompts, inputs, outputs
    and contact data, for a light read of a large run."""
    params = {"run_id": run_id, "outputs": outputs}
    row = one(conn, "v2_get_run", {**params, "stale_after": stale_after})
    if row is None:
        raise no_run(run_id)
    return RunDetail(
        **row,
        outputs_included=outputs,
        logs=[LogEntry.model_validate(r) for r in every(conn, "v2_run_logs", params)],
        contacts=[ContactOut.model_validate(r) for r in every(conn, "v2_run_contacts", params)],
    )


def list_runs(
    conn: Conn,
    *,
    stale_after: timedelta,
    client_slug: str | None = None,
    status: str | None = None,
    stale: bool | None = None,
    limit: int = 100,
) -> list[RunSummary]:
    params = {
        "client_slug": client_slug,
        "status": status,
        "stale": stale,
        "stale_after": stale_after,
        "limit": limit,
    }
    return [RunSummary.model_validate(r) for r in every(conn, "v2_list_runs", params)]
