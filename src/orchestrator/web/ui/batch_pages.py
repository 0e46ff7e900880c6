"""Batches: the board of every batch with the upload form, and one batch whole, with its
actions (launch a held batch after reading its forecast, retry a failure group, resume) and its
CSV downloads."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from orchestrator.engine.recovery import (
    NotHeldError,
    launch_batch,
    prepare_resume,
    retry_failure_group,
)
from orchestrator.reports.batch_view import (
    batch_view,
    board,
    board_line,
    dead_letters,
    retryable,
    webhook_usage,
)
from orchestrator.reports.batches import BatchRefError, resolve_batch
from orchestrator.reports.export import ExportKind, csv_chunks
from orchestrator.reports.queues import upload_play_names
from orchestrator.state.credit_caps import caps_of
from orchestrator.state.progress import HELD_FOR_LAUNCH
from orchestrator.state.registry import DEFAULT_PLAY
from orchestrator.upload.csv_reader import UploadError
from orchestrator.upload.forecast import forecast_batch
from orchestrator.upload.ingest import Launch, ingest_upload
from orchestrator.web.auth import RuntimeDep
from orchestrator.web.ui.render import PAGE_HEADERS, message_page, render
from orchestrator.web.ui.session import CsrfDep, SessionDep

router = APIRouter(prefix="/ui", include_in_schema=False)

# Notices an action leaves for the page it returns to: a code in the URL, never the text.
NOTICES = {
    "uploaded": "The file was uploaded and its batch started.",
    "held": "The file was uploaded and is held: nothing is sent until you launch it.",
    "launched": "Launched: the batch is running.",
    "existing": "This client already had a batch of this file: here it is, continued.",
    "retried": "The failure group went back to its step.",
    "nothing": "Nothing was retried: no row of the batch is failed for that step and reason.",
    "resumed": "Resumed: what the stopped process left was taken over.",
    "not-paused": "Nothing to resume: this batch is not waiting for anyone (see its status).",
}
RESUMABLE = frozenset({"PAUSED", "UPLOADED"})


def _batch_id(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


def _not_found(request: Request, text: str) -> HTMLResponse:
    message = f"There is no upload batch “{text[:80]}”. The batches page lists them all."
    return message_page(request, "No such batch", message, 404)


def _board_page(
    request: Request, runtime: RuntimeDep, status_code: int = 200, **context: object
) -> HTMLResponse:
    with runtime.dbs.hq.connection() as conn:
        lines = board(conn)
        plays = upload_play_names(conn)
    context.setdefault("error", None)
    context.setdefault("client", "")
    return render(
        request,
        "batches.html",
        status_code=status_code,
        section="batches",
        lines=lines,
        plays=plays,
        default_play=DEFAULT_PLAY,
        **context,
    )


@router.get("/", response_class=HTMLResponse)
def batches(request: Request, runtime: RuntimeDep, session: SessionDep) -> HTMLResponse:
    return _board_page(request, runtime)


@router.get("/fragments/batches", response_class=HTMLResponse)
def batches_fragment(request: Request, runtime: RuntimeDep, session: SessionDep) -> HTMLResponse:
    with runtime.dbs.hq.connection() as conn:
        lines = board(conn)
    return render(request, "_batch_board.html", lines=lines)


@router.post("/batches", response_class=HTMLResponse)
def upload(
    request: Request,
    runtime: RuntimeDep,
    session: CsrfDep,
    file: Annotated[UploadFile, File()],
    client: Annotated[str, Form(max_length=200)] = "",
    play: Annotated[str, Form(max_length=200)] = DEFAULT_PLAY,
    hold: Annotated[bool, Form()] = False,
) -> Response:
    client_name = client.strip()
    if not client_name:
        # Filed under "default" it would mix with that client's leads (and customers).
        error: dict[str, object] = {"message": "Name the client this file is for."}
        return _board_page(request, runtime, 422, error=error, client="")
    try:
        result = ingest_upload(
            runtime.dbs,
            file.file,
            file_name=file.filename or "upload.csv",
            client_name=client_name,
            play_name=play,
            launch=Launch(hold=hold),
        )
    except UploadError as exc:
        error = {"message": str(exc)}
        return _board_page(request, runtime, 422, error=error, client=client_name)
    runtime.trigger.request(result.batch_id)
    notice = "existing" if result.existing else "held" if hold else "uploaded"
    return RedirectResponse(f"/ui/batches/{result.batch_id}?notice={notice}", status_code=303)


def _view_context(
    runtime: RuntimeDep, batch_id: UUID, *, with_forecast: bool = False
) -> dict[str, object] | None:
    """What the batch page shows; `with_forecast` adds a held batch's forecast, which reads
    every row of the batch: the page asks for it, its live fragment's polls do not."""
    with runtime.dbs.hq.connection() as conn:
        try:
            view = batch_view(conn, batch_id)
        except LookupError:
            return None
        limit = runtime.settings.clay_webhook_submission_limit
        context: dict[str, object] = {
            "view": view,
            "webhooks": webhook_usage(conn, batch_id, limit),
            "dead_letters": dead_letters(conn),
            "forecast": None,
            "caps": caps_of(conn, batch_id),
        }
    if with_forecast and view.line.status == HELD_FOR_LAUNCH:
        rate = runtime.settings.clay_rate_per_second
        context["forecast"] = forecast_batch(runtime.dbs, batch_id, clay_rate_per_second=rate)
    return context


def _status(runtime: RuntimeDep, batch: str) -> tuple[UUID, str] | None:
    """The batch a form names and its status as shown; None when there is no such batch."""
    batch_id = _batch_id(batch)
    if batch_id is None:
        return None
    with runtime.dbs.hq.connection() as conn:
        try:
            return batch_id, board_line(conn, batch_id).status
        except LookupError:
            return None


def _notice(code: str, released: int, resent: int) -> str | None:
    text = NOTICES.get(code)
    if code == "retried" and text:
        text += f" {max(released, 0):,} row(s) are being retried."
    if code == "resumed" and text:
        text += (
            f" {max(released, 0):,} interrupted item-step(s) went back to the queue;"
            f" {max(resent, 0):,} call(s) nobody could answer any more were sent again."
        )
    return text


@router.get("/batches/{batch}", response_class=HTMLResponse)
def batch_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    batch: str,
    notice: str = "",
    released: int = 0,
    resent: int = 0,
) -> Response:
    batch_id = _batch_id(batch)
    if batch_id is None:
        # The first characters, as the batches table shows them: the page of that batch.
        with runtime.dbs.hq.connection() as conn:
            try:
                full = resolve_batch(conn, batch)
            except BatchRefError:
                return _not_found(request, batch)
        return RedirectResponse(f"/ui/batches/{full}", status_code=303)
    context = _view_context(runtime, batch_id, with_forecast=True)
    if context is None:
        return _not_found(request, batch)
    shown = _notice(notice, released, resent)
    return render(request, "batch.html", section="batches", notice=shown, **context)


@router.get("/batches/{batch}/live", response_class=HTMLResponse)
def batch_live(
    request: Request, runtime: RuntimeDep, session: SessionDep, batch: str
) -> HTMLResponse:
    batch_id = _batch_id(batch)
    context = _view_context(runtime, batch_id) if batch_id else None
    if context is None:
        return _not_found(request, batch)
    return render(request, "_batch_live.html", **context)


@router.post("/batches/{batch}/retry")
def retry_group(
    request: Request,
    runtime: RuntimeDep,
    session: CsrfDep,
    batch: str,
    step: Annotated[str, Form(max_length=200)],
    reason: Annotated[str, Form(max_length=500)],
) -> Response:
    batch_id = _batch_id(batch)
    if batch_id is None:
        return _not_found(request, batch)
    if not retryable(step, reason):
        text = (
            f"The rows that failed with “{reason}” at {step} failed for their own data: a"
            " retry would fail the same way. Fix the file and upload it again."
        )
        return message_page(request, "Not retried", text, 422)
    items = retry_failure_group(runtime.dbs, batch_id, step, reason)
    if items:
        runtime.trigger.request(batch_id)
    notice = urlencode({"notice": "retried" if items else "nothing", "released": items})
    return RedirectResponse(f"/ui/batches/{batch_id}?{notice}", status_code=303)


@router.post("/batches/{batch}/resume")
def resume(
    request: Request,
    runtime: RuntimeDep,
    session: CsrfDep,
    batch: str,
    resend_now: Annotated[bool, Form()] = False,
) -> Response:
    found = _status(runtime, batch)
    if found is None:
        return _not_found(request, batch)
    batch_id, status = found
    if status not in RESUMABLE:
        return RedirectResponse(f"/ui/batches/{batch_id}?notice=not-paused", status_code=303)
    report = prepare_resume(runtime.dbs, batch_id, resend_now=resend_now)
    runtime.trigger.request(batch_id)
    counts = urlencode(
        {"notice": "resumed", "released": report.item_steps, "resent": report.resent}
    )
    return RedirectResponse(f"/ui/batches/{batch_id}?{counts}", status_code=303)


@router.post("/batches/{batch}/launch")
def launch(
    request: Request,
    runtime: RuntimeDep,
    session: CsrfDep,
    batch: str,
    reuse: Annotated[bool, Form()] = False,
) -> Response:
    found = _status(runtime, batch)
    if found is None:
        return _not_found(request, batch)
    batch_id, status = found
    try:
        launch_batch(runtime.dbs, batch_id, reuse=reuse)
    except NotHeldError:
        return _not_held(request, status)
    runtime.trigger.request(batch_id)
    return RedirectResponse(f"/ui/batches/{batch_id}?notice=launched", status_code=303)


def _not_held(request: Request, status: str) -> HTMLResponse:
    text = (
        f"Nothing was launched: this batch is not waiting for a launch (it is {status})."
        " Only a batch uploaded with “Hold for launch” waits for one, and it is launched once."
        " Its page shows what it is doing."
    )
    return message_page(request, "Not launched", text, 409)


@router.get("/batches/{batch}/export/{kind}.csv")
def export(
    request: Request, runtime: RuntimeDep, session: SessionDep, batch: str, kind: str
) -> Response:
    batch_id = _batch_id(batch)
    if batch_id is None:
        return _not_found(request, batch)
    if kind not in ("leads", "failed"):
        text = "A batch exports its leads (leads.csv) or its failed rows (failed.csv)."
        return message_page(request, "No such download", text, 404)
    with runtime.dbs.hq.connection() as conn:
        if not conn.execute("SELECT 1 FROM upload_batches WHERE id = %s", (batch_id,)).fetchone():
            return _not_found(request, batch)
    chosen: ExportKind = "leads" if kind == "leads" else "failed"
    name = f"batch-{str(batch_id)[:8]}-{chosen}.csv"
    return StreamingResponse(
        csv_chunks(runtime.dbs, batch_id, chosen),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"', **PAGE_HEADERS},
    )
