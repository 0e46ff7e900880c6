"""Leads: `final_leads` searched and filtered, and the headline filter, people who used to work
at the client's customers; the customer list is uploaded here too."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from orchestrator.db.pool import Conn
from orchestrator.reports import leads
from orchestrator.reports.batches import BatchRefError, resolve_batch
from orchestrator.upload.customers import CustomerFileError, upload_customers
from orchestrator.web.auth import RuntimeDep
from orchestrator.web.ui.render import render
from orchestrator.web.ui.session import CsrfDep, SessionDep

router = APIRouter(prefix="/ui", include_in_schema=False)
PAGE = 50
_NO_BATCH = UUID(int=0)


def _filter(
    conn: Conn, client: str, batch: str, company: str, title: str, q: str, alumni: bool
) -> tuple[leads.LeadFilter, str | None]:
    """The filter the query asks for, and what is wrong with it (shown, not raised)."""
    batch_id = None
    problem = None
    if batch.strip():
        try:
            batch_id = resolve_batch(conn, batch)
        except BatchRefError as exc:
            # No lead rather than every lead: a filter that names nothing must not widen.
            problem, batch_id = str(exc), _NO_BATCH
    if alumni and not client.strip() and batch_id is None:
        problem = "Choose a client: the alumni filter matches the leads of one client."
        alumni = False
    chosen = leads.LeadFilter(
        client=client.strip() or None,
        batch_id=batch_id,
        company=company.strip() or None,
        title=title.strip() or None,
        search=q.strip() or None,
        alumni=alumni,
    )
    return chosen, problem


def _page(
    request: Request,
    runtime: RuntimeDep,
    params: dict[str, str],
    alumni: bool,
    after: str = "",
    status_code: int = 200,
    **context: object,
) -> HTMLResponse:
    with runtime.dbs.hq.connection() as conn:
        chosen, problem = _filter(
            conn,
            params["client"],
            params["batch"],
            params["company"],
            params["title"],
            params["q"],
            alumni,
        )
        try:
            page = leads.find_leads(conn, chosen, after=after or None, limit=PAGE)
        except ValueError as exc:
            problem, page = str(exc), leads.find_leads(conn, chosen, limit=PAGE)
        clients = leads.clients(conn)
        customers = leads.customer_count(conn, chosen.client) if chosen.client else 0
        matched = leads.alumni_count(conn, chosen) if chosen.alumni else None
    following = ""
    if page.next_cursor:
        query = {**params, "after": page.next_cursor}
        if chosen.alumni:
            query["alumni"] = "1"
        following = "/ui/leads?" + urlencode(query)
    context.setdefault("upload_error", None)
    context.setdefault("uploaded", None)
    context["unknown_client"] = bool(chosen.client) and chosen.client not in clients
    return render(
        request,
        "leads.html",
        status_code=status_code,
        section="leads",
        page=page,
        params=params,
        alumni=chosen.alumni,
        problem=problem,
        clients=clients,
        customers=customers,
        matched=matched,
        next_page=following,
        **context,
    )


@router.get("/leads", response_class=HTMLResponse)
def leads_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    client: str = "",
    batch: str = "",
    company: str = "",
    title: str = "",
    q: str = "",
    alumni: bool = False,
    after: str = "",
    uploaded: int | None = None,
) -> HTMLResponse:
    params = {"client": client, "batch": batch, "company": company, "title": title, "q": q}
    return _page(request, runtime, params, alumni, after, uploaded=uploaded)


@router.post("/customers", response_class=HTMLResponse)
def customers_upload(
    request: Request,
    runtime: RuntimeDep,
    session: CsrfDep,
    file: Annotated[UploadFile, File()],
    client: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    params = {"client": client.strip(), "batch": "", "company": "", "title": "", "q": ""}
    if not params["client"]:
        error: dict[str, object] = {"message": "Name the client whose customers these are."}
        return _page(request, runtime, params, False, status_code=422, upload_error=error)
    try:
        result = upload_customers(runtime.dbs, file.file, params["client"])
    except CustomerFileError as exc:
        error = {"message": str(exc)}
        return _page(request, runtime, params, False, status_code=422, upload_error=error)
    target = urlencode({"client": params["client"], "alumni": "1", "uploaded": result.customers})
    return RedirectResponse(f"/ui/leads?{target}", status_code=303)
