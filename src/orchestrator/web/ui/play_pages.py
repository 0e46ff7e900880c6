"""Step queues of a play ("Manual GTM Enrichment Stages") with "Run step N", the company
pipeline ("X / N steps completed"), and the workflow registry."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from orchestrator.db.pool import Conn
from orchestrator.db.queries import query
from orchestrator.engine.plays import run_play_step
from orchestrator.reports import queues
from orchestrator.reports.batches import BatchRefError, resolve_batch
from orchestrator.reports.workflows import check_workflows
from orchestrator.state.registry import DEFAULT_PLAY, RegistryError
from orchestrator.web.auth import RuntimeDep
from orchestrator.web.ui.render import message_page, render
from orchestrator.web.ui.session import CsrfDep, SessionDep

router = APIRouter(prefix="/ui", include_in_schema=False)
PAGE = 100
MAX_RUN = 500  # companies one click runs (a page of the queue holds 100)


def _uuid(text: str | None) -> UUID | None:
    try:
        return UUID(text) if text else None
    except ValueError:
        return None


def _batch_filter(conn: Conn, text: str) -> UUID | None:
    """The batch a filter names (a full id, or a unique prefix as the batches page shows);
    None for no filter. A filter that names nothing raises BatchRefError: it must not quietly
    widen to every client's companies."""
    return resolve_batch(conn, text) if text.strip() else None


def _chosen_step(steps: list[queues.QueueStep], step: int | None) -> queues.QueueStep | None:
    runnable = [s for s in steps if s.runnable]
    for candidate in runnable:
        if candidate.step_number == step:
            return candidate
    return runnable[0] if runnable else None


@router.get("/plays", response_class=HTMLResponse)
def plays(request: Request, runtime: RuntimeDep, session: SessionDep, play: str = "") -> Response:
    with runtime.dbs.hq.connection() as conn:
        names = queues.play_names(conn)
    if play not in names:
        play = DEFAULT_PLAY if DEFAULT_PLAY in names or not names else names[0]
    return RedirectResponse(f"/ui/plays/{quote(play, safe='')}", status_code=303)


@router.get("/plays/{play}", response_class=HTMLResponse)
def play_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    play: str,
    step: int | None = None,
    batch: str = "",
    q: str = "",
    after: str = "",
    ran: int = 0,
    skipped: int = 0,
) -> HTMLResponse:
    with runtime.dbs.hq.connection() as conn:
        names = queues.play_names(conn)
        if play not in names:
            return message_page(request, "No such play", f"There is no play “{play[:80]}”.", 404)
        try:
            batch_id = _batch_filter(conn, batch)
        except BatchRefError as exc:
            return message_page(request, "No such batch", str(exc), 404)
        steps = queues.queue_steps(conn, play, batch_id)
        chosen = _chosen_step(steps, step)
        try:
            companies = (
                queues.queued_companies(
                    conn, play, chosen, batch_id=batch_id, search=q, after=after, limit=PAGE
                )
                if chosen
                else []
            )
        except ValueError as exc:
            return message_page(request, "Bad page link", str(exc), 400)
    following = ""
    if len(companies) == PAGE:
        last = companies[-1]
        params = {"step": chosen.step_number if chosen else "", "batch": batch, "q": q}
        params["after"] = queues.cursor_of(last.domain, last.id)
        following = f"/ui/plays/{play}?{urlencode(params)}"
    return render(
        request,
        "play.html",
        section="plays",
        play=play,
        plays=names,
        steps=steps,
        chosen=chosen,
        companies=companies,
        batch=batch,
        q=q,
        next_page=following,
        ran=max(ran, 0),
        skipped=max(skipped, 0),
    )


@router.get("/plays/{play}/pills", response_class=HTMLResponse)
def play_pills(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    play: str,
    step: int | None = None,
    batch: str = "",
) -> HTMLResponse:
    with runtime.dbs.hq.connection() as conn:
        try:
            batch_id = _batch_filter(conn, batch)
        except BatchRefError:
            batch_id = None  # the page said so; the pills count every company meanwhile
        steps = queues.queue_steps(conn, play, batch_id)
    return render(
        request,
        "_pills.html",
        play=play,
        steps=steps,
        chosen=_chosen_step(steps, step),
        batch=batch,
    )


def _companies(values: list[str]) -> list[UUID] | str:
    """The chosen companies, or what is wrong with the choice."""
    ids = [_uuid(v) for v in values]
    if any(i is None for i in ids):
        return "The form named a company that is not an id: reload the page and choose again."
    chosen = list(dict.fromkeys(i for i in ids if i is not None))
    if not chosen:
        return "Choose at least one company (tick its box) before running a step."
    if len(chosen) > MAX_RUN:
        return f"At most {MAX_RUN:,} companies run in one click; {len(chosen):,} were chosen."
    return chosen


def _choice(
    runtime: RuntimeDep, play: str, step_number: int, values: list[str]
) -> tuple[list[dict[str, object]], int] | str:
    """The chosen companies that exist and have not completed the step, and how many chosen
    ones already have; or what is wrong with the choice."""
    chosen = _companies(values)
    if isinstance(chosen, str):
        return chosen
    params = {"play_name": play, "step_number": step_number, "ids": chosen}
    with runtime.dbs.hq.connection() as conn:
        rows = [dict(r) for r in conn.execute(query("run_candidates"), params)]
    if not rows:
        return (
            "The chosen companies do not exist (none of them): reload the queue and choose again."
        )
    pending = [r for r in rows if not r["done"]]
    return pending, len(rows) - len(pending)


def _step_of(runtime: RuntimeDep, play: str, step_number: int) -> queues.QueueStep | None:
    with runtime.dbs.hq.connection() as conn:
        steps = queues.queue_steps(conn, play)
    return next((s for s in steps if s.step_number == step_number and s.runnable), None)


@router.post("/plays/{play}/steps/{step_number}/confirm", response_class=HTMLResponse)
def confirm_run(
    request: Request,
    runtime: RuntimeDep,
    session: CsrfDep,
    play: str,
    step_number: int,
    company: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies defaults
    batch: Annotated[str, Form(max_length=100)] = "",
    q: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    step = _step_of(runtime, play, step_number)
    if step is None:
        return message_page(
            request,
            "No such step",
            f"The play “{play[:80]}” has no company step {step_number}.",
            404,
        )
    choice = _choice(runtime, play, step_number, company)
    if isinstance(choice, str):
        return message_page(request, "Nothing to run", choice, 422)
    pending, skipped = choice
    return render(
        request,
        "confirm_run.html",
        section="plays",
        play=play,
        step=step,
        companies=pending,
        skipped=skipped,
        credits=step.call_ceiling * len(pending),
        batch=batch,
        q=q,
    )


@router.post("/plays/{play}/steps/{step_number}/run")
def run_step(
    request: Request,
    runtime: RuntimeDep,
    session: CsrfDep,
    play: str,
    step_number: int,
    company: Annotated[list[str], Form()] = [],  # noqa: B006
    batch: Annotated[str, Form(max_length=100)] = "",
    q: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    choice = _choice(runtime, play, step_number, company)
    if isinstance(choice, str):
        return message_page(request, "Nothing to run", choice, 422)
    rows, skipped = choice
    pending = [UUID(str(r["id"])) for r in rows]
    if not pending:
        text = (
            f"All {skipped:,} chosen companies already completed step {step_number}:"
            " nothing was sent and no credits were spent."
        )
        return message_page(request, "Nothing to run", text, 200)
    try:
        run_play_step(runtime.dbs, runtime.dispatcher, play, step_number, company_ids=pending)
    except RegistryError as exc:
        return message_page(request, "This step cannot run", str(exc), 422)
    # Back to the queue as it was filtered: never to every client's companies.
    query_text = urlencode(
        {"step": step_number, "batch": batch, "q": q, "ran": len(pending), "skipped": skipped}
    )
    return RedirectResponse(f"/ui/plays/{quote(play, safe='')}?{query_text}", status_code=303)


@router.get("/companies", response_class=HTMLResponse)
def companies_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    play: str = DEFAULT_PLAY,
    q: str = "",
    after: str = "",
) -> HTMLResponse:
    with runtime.dbs.hq.connection() as conn:
        names = queues.play_names(conn)
        steps = [s for s in queues.queue_steps(conn, play) if s.runnable]
        try:
            lines = queues.pipeline_list(conn, play, search=q, after=after, limit=PAGE)
        except ValueError as exc:
            return message_page(request, "Bad page link", str(exc), 400)
    following = ""
    if len(lines) == PAGE:
        cursor = queues.cursor_of(lines[-1].domain, lines[-1].id)
        following = "/ui/companies?" + urlencode({"play": play, "q": q, "after": cursor})
    return render(
        request,
        "companies.html",
        section="companies",
        play=play,
        plays=names,
        steps=steps,
        lines=lines,
        q=q,
        next_page=following,
    )


@router.get("/companies/{company_id}", response_class=HTMLResponse)
def company_page(
    request: Request, runtime: RuntimeDep, session: SessionDep, company_id: str
) -> HTMLResponse:
    ident = _uuid(company_id)
    try:
        if ident is None:
            raise LookupError(company_id)
        with runtime.dbs.hq.connection() as conn:
            found = queues.company(conn, ident)
    except LookupError:
        text = f"There is no company “{company_id[:80]}”. The companies page lists them."
        return message_page(request, "No such company", text, 404)
    pipelines = queues.company_pipelines(runtime.dbs, ident)
    return render(request, "company.html", section="companies", company=found, pipelines=pipelines)


@router.get("/workflows", response_class=HTMLResponse)
def workflows_page(request: Request, runtime: RuntimeDep, session: SessionDep) -> HTMLResponse:
    return render(
        request, "workflows.html", section="workflows", checks=check_workflows(runtime.dbs)
    )
