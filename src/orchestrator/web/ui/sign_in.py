"""Signing in with the API key, and out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from orchestrator.web.auth import runtime_of
from orchestrator.web.ui.render import render
from orchestrator.web.ui.session import (
    CsrfDep,
    end_session,
    key_matches,
    read_session,
    safe_next,
    start_session,
)

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, next: str = "/ui/") -> Response:
    if read_session(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "sign_in.html", next=safe_next(next), error=None)


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request,
    api_key: Annotated[str, Form(max_length=500)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/ui/",
) -> Response:
    target = safe_next(next)
    if not key_matches(runtime_of(request), api_key):
        error = "Enter the API key." if not api_key.strip() else "That API key is not right."
        return render(request, "sign_in.html", status_code=401, next=target, error=error)
    response = RedirectResponse(target, status_code=303)
    start_session(request, response)
    return response


@router.post("/sign-out")
def sign_out(request: Request, session: CsrfDep) -> Response:
    response = RedirectResponse("/ui/sign-in", status_code=303)
    end_session(request, response, session)
    return response
