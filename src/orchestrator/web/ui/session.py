"""Dashboard sessions: the API key, entered once, buys a signed cookie; every action checks a
CSRF token kept in that cookie.

The cookie is HttpOnly and SameSite=Strict (a page of another site cannot send it), Secure
when the app is served over HTTPS, and signed with a key derived from the API key: changing
the key signs everybody out. The CSRF token travels in each form (`csrf_token`) or, for htmx
requests, in the `X-CSRF-Token` header, and must equal the session's.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

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


@dataclass(frozen=True)
class Session:
    csrf_token: str


def _serializer(runtime: AppRuntime) -> URLSafeTimedSerializer:
    # A key of its own for cookies, so a cookie never reveals anything about the API key.
    key = hmac.new(runtime.api_key.encode(), b"dashboard-session", hashlib.sha256).hexdigest()
    return URLSafeTimedSerializer(key, salt="enrich-dashboard")


def key_matches(runtime: AppRuntime, api_key: str) -> bool:
    return secrets.compare_digest(api_key.strip().encode(), runtime.api_key.encode())


def start_session(request: Request, response: Response) -> Session:
    """Set a fresh session cookie on the response."""
    session = Session(secrets.token_urlsafe(32))
    value = _serializer(runtime_of(request)).dumps({"csrf": session.csrf_token})
    response.set_cookie(
        COOKIE,
        value,
        max_age=MAX_AGE_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return session


def end_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


def read_session(request: Request) -> Session | None:
    value = request.cookies.get(COOKIE)
    if not value:
        return None
    try:
        data = _serializer(runtime_of(request)).loads(value, max_age=MAX_AGE_SECONDS)
    except BadSignature:
        return None
    token = data.get("csrf") if isinstance(data, dict) else None
    return Session(token) if isinstance(token, str) and token else None


def sign_in_url(next_path: str) -> str:
    return f"{SIGN_IN_PATH}?next={quote(next_path, safe='/')}"


def safe_next(next_path: str | None) -> str:
    """Where to go after signing in: only a path of the dashboard, never another site."""
    if next_path and next_path.startswith("/ui/") and not next_path.startswith("/ui//"):
        return next_path
    return "/ui/"


def require_session(request: Request) -> Session:
    session = read_session(request)
    if session is None:
        path = request.url.path
        if request.url.query:
            path += "?" + request.url.query
        raise SignInRequired(path)
    return session


SessionDep = Annotated[Session, Depends(require_session)]


async def require_csrf(request: Request, session: SessionDep) -> Session:
    """For every POST of the dashboard: the token of the form or header equals the session's."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not secrets.compare_digest(sent.encode(), session.csrf_token.encode()):
        raise CsrfRefused()
    return session


CsrfDep = Annotated[Session, Depends(require_csrf)]
