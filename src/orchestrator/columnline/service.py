"""The database work behind `/api/columnline/`: plain functions on one HQ connection.

Each function runs inside the caller's transaction (the pool commits when the request
succeeds, rolls back when it raises). Errors the client can fix are raised as
`NotFoundError` or `ConflictError`, which the routes turn into 404 and 409.

Run-level consistency rests on row locks of the `v2_runs` row: logging steps, stages and
contacts takes a shared lock, publishing takes an exclusive one. So a publish sees everything
logged before it and nothing can be logged to a run after it is published.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from uuid import UUID, uuid4

from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from orchestrator.columnline.inputs import (
    ClientIn,
    ContactsIn,
    PromptIn,
    PublishIn,
    RunStart,
    SectionDefinitionIn,
    StageComplete,
    StageStart,
    StepLog,
)
from orchestrator.columnline.outputs import (
    ClientOut,
    ContactOut,
    ContactsAdded,
    LogEntry,
    PromptOut,
    PublishResult,
    RunDetail,
    RunStarted,
    SectionDefinitionOut,
    StageEvent,
    StepLogged,
)
from orchestrator.db.pool import Conn
from orchestrator.db.queries import query


class ColumnlineError(Exception):
    """An error in the request the caller can fix; `context` names what it is about."""

    def __init__(self, error: str, message: str, **context: object) -> None:
        super().__init__(message)
        self.error = error
        self.message = message
        self.context = {k: str(v) for k, v in context.items()}


class NotFoundError(ColumnlineError):
    pass


class ConflictError(ColumnlineError):
    pass


# --- small helpers -------------------------------------------------------------------------


def _one(conn: Conn, name: str, params: Mapping[str, Any]) -> DictRow | None:
    return conn.execute(query(name), params).fetchone()


def _all(conn: Conn, name: str, params: Mapping[str, Any]) -> list[DictRow]:
    return conn.execute(query(name), params).fetchall()


def _returned(conn: Conn, name: str, params: Mapping[str, Any]) -> DictRow:
    """The row of a statement that always returns one (an upsert)."""
    row = _one(conn, name, params)
    assert row is not None, f"{name} returned no row"
    return row


def _jsonb(value: Any) -> Jsonb | None:
    # JSON null is stored as SQL NULL: "no output" reads the same either way.
    return None if value is None else Jsonb(value)


def _no_run(run_id: UUID) -> NotFoundError:
    return NotFoundError("run_not_found", f"run {run_id} does not exist", run_id=run_id)


def _no_client(slug: str) -> NotFoundError:
    return NotFoundError("client_not_found", f"no client with slug {slug!r}", client_slug=slug)


def _lock_run(conn: Conn, run_id: UUID, *, exclusive: bool = False) -> DictRow:
    row = _one(conn, "v2_lock_run" if exclusive else "v2_lock_run_shared", {"run_id": run_id})
    if row is None:
        raise _no_run(run_id)
    return row


def _lock_writable_run(conn: Conn, run_id: UUID, *, exclusive: bool = False) -> DictRow:
    row = _lock_run(conn, run_id, exclusive=exclusive)
    if row["status"] == "published":
        raise ConflictError(
            "run_published", f"run {run_id} is published: it takes no more logs", run_id=run_id
        )
    return row


# --- config --------------------------------------------------------------------------------


def get_client(conn: Conn, slug: str) -> ClientOut:
    row = _one(conn, "v2_get_client", {"slug": slug})
    if row is None:
        raise _no_client(slug)
    return ClientOut.model_validate(row)


def put_client(conn: Conn, slug: str, body: ClientIn) -> ClientOut:
    params = {
        "slug": slug,
        "name": body.name,
        "icp": Jsonb(body.icp),
        "industry_research": Jsonb(body.industry_research),
        "config": Jsonb(body.config),
    }
    return ClientOut.model_validate(_returned(conn, "v2_upsert_client", params))


def list_prompts(conn: Conn, stage: str | None) -> list[PromptOut]:
    return [PromptOut.model_validate(r) for r in _all(conn, "v2_list_prompts", {"stage": stage})]


def get_prompt(conn: Conn, prompt_key: str) -> PromptOut:
    row = _one(conn, "v2_get_prompt", {"prompt_key": prompt_key})
    if row is None:
        raise NotFoundError(
            "prompt_not_found", f"no prompt with key {prompt_key!r}", prompt_key=prompt_key
        )
    return PromptOut.model_validate(row)


def put_prompt(conn: Conn, prompt_key: str, body: PromptIn) -> PromptOut:
    params = {"prompt_key": prompt_key, **body.model_dump()}
    return PromptOut.model_validate(_returned(conn, "v2_upsert_prompt", params))


def list_section_definitions(conn: Conn) -> list[SectionDefinitionOut]:
    rows = _all(conn, "v2_list_section_definitions", {})
    return [SectionDefinitionOut.model_validate(r) for r in rows]


def put_section_definition(
    conn: Conn, section_key: str, body: SectionDefinitionIn
) -> SectionDefinitionOut:
    params = {
        "section_key": section_key,
        "title": body.title,
        "position": body.position,
        "config": Jsonb(body.config),
    }
    row = _returned(conn, "v2_upsert_section_definition", params)
    return SectionDefinitionOut.model_validate(row)


# --- runs ----------------------------------------------------------------------------------


def start_run(conn: Conn, body: RunStart) -> RunStarted:
    params = {
        "client_slug": body.client_slug,
        "target_company": body.target_company,
        "target_domain": body.target_domain,
        "input": Jsonb(body.input),
    }
    row = _one(conn, "v2_create_run", params)
    if row is None:
        raise _no_client(body.client_slug)
    return RunStarted.model_validate(row)


def _insert_stage_event(
    conn: Conn,
    body: StageStart,
    event_type: Literal["stage_start", "stage_complete"],
    output: Any = None,
) -> StageEvent:
    params = {
        "run_id": body.run_id,
        "stage": body.stage,
        "event_type": event_type,
        "output": _jsonb(output),
    }
    row = _one(conn, "v2_insert_stage_event", params)
    if row is None:
        what = "started" if event_type == "stage_start" else "completed"
        raise ConflictError(
            f"stage_already_{what}",
            f"stage {body.stage!r} of run {body.run_id} was already {what}",
            run_id=body.run_id,
            stage=body.stage,
        )
    return StageEvent.model_validate(row)


def start_stage(conn: Conn, body: StageStart) -> StageEvent:
    # Exclusive: this request also updates the run row (current_stage).
    _lock_writable_run(conn, body.run_id, exclusive=True)
    event = _insert_stage_event(conn, body, "stage_start")
    conn.execute(query("v2_set_current_stage"), {"run_id": body.run_id, "stage": body.stage})
    return event


def complete_stage(conn: Conn, body: StageComplete) -> StageEvent:
    _lock_writable_run(conn, body.run_id)
    started = _returned(conn, "v2_stage_started", {"run_id": body.run_id, "stage": body.stage})
    if not started["started"]:
        raise ConflictError(
            "stage_not_started",
            f"stage {body.stage!r} of run {body.run_id} was never started"
            " (POST /stages/start first)",
            run_id=body.run_id,
            stage=body.stage,
        )
    return _insert_stage_event(conn, body, "stage_complete", body.output)


def log_step(conn: Conn, body: StepLog) -> StepLogged:
    _lock_writable_run(conn, body.run_id)
    params = {
        **body.model_dump(exclude={"input", "output"}),
        "input": _jsonb(body.input),
        "output": _jsonb(body.output),
    }
    return StepLogged.model_validate(_returned(conn, "v2_insert_step", params))


def add_contacts(conn: Conn, body: ContactsIn) -> ContactsAdded:
    _lock_writable_run(conn, body.run_id)
    ids = [uuid4() for _ in body.contacts]
    docs = [
        {"id": str(contact_id), **contact.model_dump()}
        for contact_id, contact in zip(ids, body.contacts, strict=True)
    ]
    conn.execute(query("v2_insert_contacts"), {"run_id": body.run_id, "contacts": Jsonb(docs)})
    return ContactsAdded(run_id=body.run_id, contact_ids=ids)


def get_run(conn: Conn, run_id: UUID) -> RunDetail:
    row = _one(conn, "v2_get_run", {"run_id": run_id})
    if row is None:
        raise _no_run(run_id)
    params = {"run_id": run_id}
    return RunDetail(
        **row,
        logs=[LogEntry.model_validate(r) for r in _all(conn, "v2_run_logs", params)],
        contacts=[ContactOut.model_validate(r) for r in _all(conn, "v2_run_contacts", params)],
    )


# --- publish -------------------------------------------------------------------------------


def assemble_sections(section_rows: list[DictRow], stage_rows: list[DictRow]) -> dict[str, Any]:
    """The `dossiers.sections` document of a run.

    `sections`: each defined section filled by the latest successful step whose step_name is
    the section key; `missing_sections`: the defined ones no step filled; `stages`: each
    completed stage's consolidated output. `log_id` points back to the v2_pipeline_logs row.
    """
    sections = {
        r["section_key"]: {
            "title": r["title"],
            "position": r["position"],
            "content": r["output"],
            "log_id": r["log_id"],
        }
        for r in section_rows
        if r["log_id"] is not None
    }
    return {
        "sections": sections,
        "missing_sections": [r["section_key"] for r in section_rows if r["log_id"] is None],
        "stages": {r["stage"]: {"output": r["output"], "log_id": r["log_id"]} for r in stage_rows},
    }


def _require_publishable(conn: Conn, run_id: UUID) -> None:
    states = _all(conn, "v2_stage_states", {"run_id": run_id})
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
    row = _returned(conn, "v2_upsert_dossier_batch", {"client_id": client_id, "name": name})
    batch_id: UUID = row["id"]
    return batch_id


def _publish_result(conn: Conn, dossier: DictRow, *, already_published: bool) -> PublishResult:
    # JSONB does not keep key order: order by position and by when the stage completed.
    document = dossier["sections"]
    filled = sorted(document["sections"].items(), key=lambda kv: (kv[1]["position"], kv[0]))
    count = _returned(conn, "v2_dossier_contact_count", {"dossier_id": dossier["id"]})
    return PublishResult(
        dossier_id=dossier["id"],
        run_id=dossier["run_id"],
        already_published=already_published,
        dossier_batch_id=dossier["dossier_batch_id"],
        published_at=dossier["published_at"],
        sections=[key for key, _ in filled],
        missing_sections=document["missing_sections"],
        stages=sorted(document["stages"], key=lambda stage: document["stages"][stage]["log_id"]),
        contacts=count["n"],
    )


def publish(conn: Conn, body: PublishIn) -> PublishResult:
    """Copy a finished run into `dossiers` + `contacts`; a no-op returning the same dossier
    when the run is already published (the batch of the first publish wins)."""
    # Exclusive lock: concurrent publishes of one run take turns, and the later ones find the
    # dossier the first one committed.
    run = _lock_run(conn, body.run_id, exclusive=True)
    params: dict[str, Any] = {"run_id": body.run_id}
    existing = _one(conn, "v2_find_dossier", params)
    if existing is not None:
        return _publish_result(conn, existing, already_published=True)
    _require_publishable(conn, body.run_id)
    document = assemble_sections(
        _all(conn, "v2_section_sources", params), _all(conn, "v2_stage_outputs", params)
    )
    batch_id = _dossier_batch_id(conn, run["client_id"], body.dossier_batch)
    dossier = _one(
        conn,
        "v2_insert_dossier",
        {**params, "dossier_batch_id": batch_id, "sections": Jsonb(document)},
    )
    if dossier is None:
        # Only reachable if the lock above were bypassed: UNIQUE(run_id) still keeps one dossier.
        return _publish_result(
            conn, _returned(conn, "v2_find_dossier", params), already_published=True
        )
    conn.execute(query("v2_publish_contacts"), {**params, "dossier_id": dossier["id"]})
    conn.execute(query("v2_mark_published"), params)
    return _publish_result(conn, dossier, already_published=False)
