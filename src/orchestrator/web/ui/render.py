"""Rendering the dashboard's templates, with the few filters its pages share."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from orchestrator.web.ui.session import CSRF_FIELD, read_session

NOTHING = "\u2013"  # an en dash: no value
# Pages hold leads' personal data: no copy kept by the browser (Back after signing out shows
# nothing), and no framing by another site (clickjacking).
PAGE_HEADERS = {
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
    "referrer-policy": "same-origin",
}

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")

# Status word -> the colour class a pill of it gets; every state reads in word and colour.
_TONES = {
    "COMPLETED": "ok",
    "RUNNING": "busy",
    "IN_PROGRESS": "busy",
    "SENT": "busy",
    "SENDING": "busy",
    "PENDING": "idle",
    "UPLOADED": "idle",
    "PAUSED": "warn",
    "HELD": "warn",
    "FAILED": "bad",
}


def tone(status: str) -> str:
    return _TONES.get(status.upper(), "idle")


def number(value: int | float | Decimal | None) -> str:
    if value is None:
        return NOTHING
    if isinstance(value, Decimal | float) and value != int(value):
        return f"{value:,.2f}"
    return f"{int(value):,}"


def duration(seconds: float | None) -> str:
    """2 h 5 min, 3 min 20 s, 45 s: the two largest units."""
    if seconds is None:
        return NOTHING
    sign = "-" if seconds < 0 else ""
    left = int(abs(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if left >= size or (unit == "s" and not parts):
            parts.append(f"{left // size} {unit}")
            left %= size
    return sign + " ".join(parts[:2])


def age(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    return duration((datetime.now(UTC) - moment).total_seconds()) + " ago"


def when(moment: datetime | None) -> str:
    return NOTHING if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


for _name, _filter in (
    ("tone", tone),
    ("number", number),
    ("duration", duration),
    ("age", age),
    ("when", when),
):
    templates.env.filters[_name] = _filter


def render(request: Request, template: str, **context: Any) -> HTMLResponse:
    """A page or fragment (`status_code` defaults to 200); every template gets the session's
    CSRF token and the nav section."""
    status_code = int(context.pop("status_code", 200))
    session = read_session(request)
    context.setdefault("section", "")
    context.update(
        csrf_token=session.csrf_token if session else "",
        csrf_field=CSRF_FIELD,
        signed_in=session is not None,
    )
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    response.headers.update(PAGE_HEADERS)
    return response


def message_page(request: Request, title: str, message: str, status_code: int) -> HTMLResponse:
    """A page that says one thing: what went wrong, or that nothing was done, and why."""
    return render(request, "message.html", status_code=status_code, title=title, message=message)
