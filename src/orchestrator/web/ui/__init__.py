"""The dashboard: server-rendered pages under /ui/ (Jinja2 templates, htmx vendored as a static
file, no build step), served by the same app as the API, locally and on Modal."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from orchestrator.web.ui import batch_pages, lead_pages, play_pages, sign_in
from orchestrator.web.ui.render import STATIC_DIR, render
from orchestrator.web.ui.session import CsrfRefused, SignInRequired, sign_in_url

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
    return render(
        request,
        "message.html",
        status_code=403,
        title="Action refused",
        message="This form was not sent from a page of this dashboard, or it is out of date"
        " (you signed in again since). Nothing was changed: reload the page and try again.",
    )


def add_ui_routes(app: FastAPI) -> None:
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
    app.add_exception_handler(SignInRequired, _signed_out)
    app.add_exception_handler(CsrfRefused, _csrf_refused)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)

    for router in ROUTERS:
        app.include_router(router)
