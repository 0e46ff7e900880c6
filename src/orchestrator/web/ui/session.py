"""Dashboard sessions: the API key, entered once, buys a session; every action checks the
session's CSRF token.

A session is a row of `dashboard_sessions` (signing out ends it for every copy of the cookie);
the cookie names it, signed with a key derived from the API key (changing the key signs
everybody out). The cookie is HttpOnly and SameSite=Strict (a page of another site cannot send
it), and Secure when the app is served over HTTPS. The CSRF token travels in each form
(`csrf_token`) or, for htmx requests, in the `X-CSRF-Token` header, and must equal the
session's.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlsplit
from uuid import UUID

from fastapi import Depends, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.routing import Match

from orchestrator.db.queries import query
from orchestrator.web.auth import AppRuntime, runtime_of

COOKIE = "enrich_session"
MAX_AGE_SECONDS = 12 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SIGN_IN_PATH = "/ui/sign-in"


class SignInRequired(Exception):  # noqa: N818 - control flow: answered with a redirect
    """No valid session: the request is answered with a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRefused(Exception):  # noqa: N818 - control flow: answered with a 403 page
    """An action without the session's CSRF token: refused, nothing done."""


class BadInputError(ValueError):
    """A value no page can take (a NUL character: Postgres text cannot hold one)."""


_NUL = "\x00"


def _refuse_nul(values: list[str], where: str) -> None:
    if any(_NUL in value for value in values):
        raise BadInputError(
            f"The {where} holds a NUL character (\\0), which no text here can contain: remove"
            " it and try again."
        )


@dataclass(frozen=True)
class Session:
    id: UUID
    csrf_token: str


def _serializer(runtime: AppRuntime) -> URLSafeTimedSerializer:
    # A key of its own for cookies, so a cookie never reveals anything about the API key.
    key = hmac.new(runtime.api_key.encode(), b"dashboard-session", hashlib.sha256).hexdigest()
    return URLSafeTimedSerializer(key, salt="enrich-dashboard")


def key_matches(runtime: AppRuntime, api_key: str) -> bool:
    return secrets.compare_digest(api_key.strip().encode(), runtime.api_key.encode())


def start_session(request: Request, response: Response) -> Session:
    """A new session, and its cookie on the response."""
    runtime = runtime_of(request)
    token = secrets.token_urlsafe(32)
    params = {"csrf_token": token, "seconds": MAX_AGE_SECONDS}
    with runtime.dbs.hq.connection() as conn:
        row = conn.execute(query("start_dashboard_session"), params).fetchone()
    assert row is not None
    session = Session(row["id"], token)
    response.set_cookie(
        COOKIE,
        _serializer(runtime).dumps({"sid": str(session.id)}),
        max_age=MAX_AGE_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return session


def end_session(request: Request, response: Response, session: Session) -> None:
    with runtime_of(request).dbs.hq.connection() as conn:
        conn.execute(query("end_dashboard_session"), {"id": session.id})
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


def _session_id(request: Request) -> UUID | None:
    value = request.cookies.get(COOKIE)
    if not value:
        return None
    try:
        data = _serializer(runtime_of(request)).loads(value, max_age=MAX_AGE_SECONDS)
        return UUID(data["sid"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return None


def read_session(request: Request) -> Session | None:
    """The request's live session (looked up once per request), or None."""
    if hasattr(request.state, "dashboard_session"):
        known: Session | None = request.state.dashboard_session
        return known
    session = None
    session_id = _session_id(request)
    if session_id is not None:
        with runtime_of(request).dbs.hq.connection() as conn:
            row = conn.execute(query("live_dashboard_session"), {"id": session_id}).fetchone()
        session = Session(session_id, str(row["csrf_token"])) if row else None
    request.state.dashboard_session = session
    return session


def sign_in_url(next_path: str) -> str:
    return f"{SIGN_IN_PATH}?next={quote(next_path, safe='/')}"


def safe_next(next_path: str | None) -> str:
    """Where to go after signing in: only a path of the dashboard, never another site."""
    if next_path and next_path.startswith("/ui/") and not next_path.startswith("/ui//"):
        return next_path
    return "/ui/"


def _local_path(url: str | None, request: Request) -> str | None:
    """The dashboard path of a URL of this very site, with its query; None for anything else."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.netloc and parts.netloc != request.url.netloc:
        return None
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return path if path.startswith("/ui/") and not path.startswith("/ui//") else None


def _is_page(request: Request, path: str) -> bool:
    """Whether a GET of the path reaches a route (a form's result page may take POST only)."""
    scope = {"type": "http", "method": "GET", "path": urlsplit(path).path}
    return any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes)


def return_path(request: Request) -> str:
    """Where to come back to after signing in. A page: itself. A fragment htmx polls: the page
    it is on. A form sent after the session ended: the page it was sent from (the action's URL
    only takes POST), or the batches page when that too was a form's result."""
    if request.headers.get("hx-request"):
        found = _local_path(request.headers.get("hx-current-url"), request)
    elif request.method != "GET":
        found = _local_path(request.headers.get("referer"), request)
    else:
        found = _local_path(str(request.url), request)
    return found if found and _is_page(request, found) else "/ui/"


def require_session(request: Request) -> Session:
    _refuse_nul([v for pair in request.query_params.multi_items() for v in pair], "address")
    session = read_session(request)
    if session is None:
        raise SignInRequired(return_path(request))
    return session


SessionDep = Annotated[Session, Depends(require_session)]


async def require_csrf(request: Request, session: SessionDep) -> Session:
    """For every POST of the dashboard: the token of the form or header equals the session's."""
    form = await request.form()
    _refuse_nul([v for _, v in form.multi_items() if isinstance(v, str)], "form")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not secrets.compare_digest(sent.encode(), session.csrf_token.encode()):
        raise CsrfRefused()
    return session


CsrfDep = Annotated[Session, Depends(require_csrf)]
