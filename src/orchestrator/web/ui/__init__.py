"""The dashboard: server-rendered pages under /ui/ (Jinja2 templates, htmx vendored as a static
file, no build step), served by the same app as the API, locally and on Modal."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from orchestrator.web.refusals import refused_request
from orchestrator.web.ui import batch_pages, lead_pages, play_pages, sign_in
from orchestrator.web.ui.render import STATIC_DIR, message_page
from orchestrator.web.ui.session import BadInputError, CsrfRefused, SignInRequired, sign_in_url

# Every router of the dashboard; tests walk their routes to check each one.
ROUTERS: tuple[APIRouter, ...] = (
    sign_in.router,
    batch_pages.router,
    play_pages.router,
    lead_pages.router,
)


def _signed_out(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    target = sign_in_url(exc.next_path)
    if request.headers.get("hx-request"):
        # htmx follows a 303 inside its request and would paste the sign-in page into the
        # fragment; HX-Redirect makes it load the sign-in page instead.
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _csrf_refused(request: Request, exc: Exception) -> HTMLResponse:
    text = (
        "This form was not sent from a page of this dashboard, or it is out of date (you signed"
        " in again since). Nothing was changed: reload the page and try again."
    )
    return message_page(request, "Action refused", text, 403)


def _bad_input(request: Request, exc: Exception) -> HTMLResponse:
    return message_page(request, "Bad request", str(exc), 400)


def _on_ui(request: Request) -> bool:
    return request.url.path.startswith("/ui/")


async def _not_valid(request: Request, exc: Exception) -> Response:
    """A query or form value of the wrong kind: on the dashboard a page saying which."""
    assert isinstance(exc, RequestValidationError)
    if not _on_ui(request):
        return refused_request(exc)
    wrong = "; ".join(
        f"{'.'.join(str(p) for p in error['loc'][1:]) or 'the request'}: {error['msg']}"
        for error in exc.errors()[:3]
    )
    text = f"This address or form has a value the page cannot use ({wrong}). Follow the"
    return message_page(request, "Bad request", text + " page's own links and forms.", 422)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if not _on_ui(request) or exc.status_code not in (404, 405):
        return await http_exception_handler(request, exc)
    text = "There is no such page. The links at the top lead to every page of the dashboard."
    if exc.status_code == 405:
        text = "This address takes a form, not a visit: go back to the page that sends it."
    return message_page(request, "Page not found", text, exc.status_code)


def add_ui_routes(app: FastAPI) -> None:
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
    app.add_exception_handler(SignInRequired, _signed_out)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
    app.add_exception_handler(BadInputError, _bad_input)
    app.add_exception_handler(RequestValidationError, _not_valid)
    app.add_exception_handler(HTTPException, _http_error)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)

    for router in ROUTERS:
        app.include_router(router)
