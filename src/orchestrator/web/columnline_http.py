"""How `/api/columnline/` reads a request and answers it.

Before a route's body is parsed: the API key (401), a JSON Content-Type (415), the size
(413, counted while reading) and the nesting depth and storable values (422), so no body can
reach the database unless it can be stored, and none is parsed for a caller without the key.
Then each route runs one function of `orchestrator.columnline` in one HQ transaction
(`answer`), honouring the Idempotency-Key header on writes, and maps its errors to HTTP.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from datetime import timedelta
from email.message import Message
from typing import Any, Concatenate, ParamSpec, TypeVar
from uuid import UUID

import psycopg
from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope

from orchestrator.columnline import errors, idempotency
from orchestrator.columnline.fields import MAX_BODY_BYTES, MAX_JSON_DEPTH, Loc, json_problem
from orchestrator.db.pool import Conn
from orchestrator.web.auth import require_api_key, runtime_of

# How much of a rejected input a 422 echoes back.
MAX_ECHO_DEPTH = 8
MAX_ECHO_ITEMS = 20
MAX_ECHO_CHARS = 200
IDEMPOTENCY_HEADER = "Idempotency-Key"

P = ParamSpec("P")
T = TypeVar("T")

STATUS = {
    errors.BadRequestError: 400,
    errors.NotFoundError: 404,
    errors.ConflictError: 409,
    errors.TooLargeError: 413,
    errors.UnprocessableError: 422,
}


def error_response(status_code: int, error: str, message: str, **context: object) -> JSONResponse:
    detail = {
        "error": error,
        "message": message,
        "context": {k: str(v) for k, v in context.items()},
    }
    return JSONResponse({"detail": detail}, status_code=status_code)


def _field_errors(*problems: tuple[Loc, str, str]) -> JSONResponse:
    # Shaped like FastAPI's own validation errors, so a client handles every 422 alike.
    detail = [{"loc": ["body", *loc], "msg": msg, "type": kind} for loc, msg, kind in problems]
    return JSONResponse({"detail": detail}, status_code=422)


class AnsweredEarlyError(Exception):
    """A request answered before its route runs."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _printable(value: Any, depth: int = 0) -> Any:
    """`value` made safe to render as UTF-8 JSON (strings, finite numbers), and short: bounded
    depth, items and characters, so a refusal never echoes a 10 MB body back."""
    if depth > MAX_ECHO_DEPTH:
        return "..."
    if isinstance(value, dict):
        items = list(value.items())
        shown = {
            str(_printable(k, depth)): _printable(v, depth + 1) for k, v in items[:MAX_ECHO_ITEMS]
        }
        if len(items) > MAX_ECHO_ITEMS:
            shown["..."] = f"{len(items) - MAX_ECHO_ITEMS} more keys"
        return shown
    if isinstance(value, list | tuple):
        listed = [_printable(v, depth + 1) for v in value[:MAX_ECHO_ITEMS]]
        return listed + (
            [f"... {len(value) - MAX_ECHO_ITEMS} more"] if len(value) > MAX_ECHO_ITEMS else []
        )
    if isinstance(value, str):
        if len(value) > MAX_ECHO_CHARS:
            value = f"{value[:MAX_ECHO_CHARS]}... ({len(value):,} characters)"
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


# --- reading the body ----------------------------------------------------------------------


class ReadRequest(Request):
    """A request whose body was read and parsed already: the route's handler gets these."""

    def __init__(self, scope: Scope, receive: Receive, raw: bytes, parsed: Any) -> None:
        super().__init__(scope, receive)
        self._raw = raw
        self._parsed = parsed

    async def body(self) -> bytes:
        return self._raw

    async def json(self) -> Any:
        return self._parsed


def _is_json(content_type: str) -> bool:
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _check_content_type(request: Request) -> None:
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise AnsweredEarlyError(
            error_response(
                415,
                "unsupported_media_type",
                f"the Content-Encoding header is {encoding!r}: send the body uncompressed",
                content_encoding=encoding,
            )
        )
    content_type = request.headers.get("content-type")
    has_body = request.headers.get("content-length", "0") != "0" or (
        "transfer-encoding" in request.headers
    )
    if content_type is None and not has_body:
        return
    if content_type is None or not _is_json(content_type):
        given = "missing" if content_type is None else repr(content_type)
        raise AnsweredEarlyError(
            error_response(
                415,
                "unsupported_media_type",
                f"the Content-Type header is {given}: the body must be JSON, sent with"
                " Content-Type: application/json (in Make's HTTP module: Body type Raw, Content"
                " type JSON (application/json))",
                content_type=content_type or "",
            )
        )


def _too_large(size: str) -> AnsweredEarlyError:
    return AnsweredEarlyError(
        error_response(
            413,
            "body_too_large",
            f"the body is {size}: at most {MAX_BODY_BYTES:,} bytes ({MAX_BODY_BYTES // 2**20} MiB)"
            " are accepted; keep large documents elsewhere and send a link to them",
            max_body_bytes=MAX_BODY_BYTES,
        )
    )


async def _read_limited(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large(f"{int(declared):,} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large(f"over {MAX_BODY_BYTES:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class _BodyProblemError(ValueError):
    """What the JSON parser's hooks refuse: the message says what, for the 422."""


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Python keeps the last of two equal keys; the caller meant one of them, we cannot tell which.
    found = dict(pairs)
    if len(found) != len(pairs):
        keys = [key for key, _ in pairs]
        repeated = next(key for key in keys if keys.count(key) > 1)
        raise _BodyProblemError(f"the key {repeated[:100]!r} appears twice in one object")
    return found


def _loads(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_no_repeated_keys)


def _parse(raw: bytes) -> Any:
    """The body as JSON, checked for what cannot be stored; refusals name where."""
    try:
        # JSON is UTF-8 (RFC 8259): no guessing at UTF-16 from the first bytes.
        parsed = _loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise AnsweredEarlyError(
            error_response(400, "body_not_utf8", "the body is not UTF-8 text: send JSON in UTF-8")
        ) from None
    except json.JSONDecodeError as exc:
        raise AnsweredEarlyError(
            _field_errors(((exc.pos,), f"JSON decode error: {exc.msg}", "json_invalid"))
        ) from None
    except RecursionError:
        message = f"nested deeper than {MAX_JSON_DEPTH} levels"
        raise AnsweredEarlyError(_field_errors(((), message, "json_too_deep"))) from None
    except _BodyProblemError as exc:
        raise AnsweredEarlyError(_field_errors(((), str(exc), "value_error"))) from None
    except ValueError:
        # Python refuses to read integers of more than 4,300 digits (sys.int_info).
        message = "a number in the body has more than 4,300 digits"
        raise AnsweredEarlyError(_field_errors(((), message, "value_error"))) from None
    problem = json_problem(parsed, MAX_JSON_DEPTH)
    if problem is not None:
        loc, message = problem
        raise AnsweredEarlyError(_field_errors((loc, message, "value_error")))
    return parsed


async def _read_body(request: Request) -> Request:
    _check_content_type(request)
    raw = await _read_limited(request)
    # A large body takes a while to parse and check: in a worker thread, so the requests
    # beside it are not held up.
    parsed = await run_in_threadpool(_parse, raw) if raw else None
    return ReadRequest(request.scope, request.receive, raw, parsed)


def _check_api_key(request: Request) -> None:
    try:
        require_api_key(runtime_of(request), request.headers.get("x-api-key"))
    except HTTPException as exc:
        raise AnsweredEarlyError(
            JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        ) from None


class ColumnlineRoute(APIRoute):
    """A route that checks the key and reads the body itself before FastAPI parses it, and
    answers its validation errors in FastAPI's format with a printable copy of the input
    (FastAPI's own handler fails with a 500 on exactly the values the models reject: lone
    surrogates, NaN)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        reads_body = self.body_field is not None

        async def handle(request: Request) -> Response:
            try:
                _check_api_key(request)
                if reads_body:
                    request = await _read_body(request)
                return await handler(request)
            except AnsweredEarlyError as refused:
                return refused.response
            except ClientDisconnect:
                # The caller hung up mid-body (a Make timeout): nobody reads an answer.
                return Response(status_code=400)
            except RequestValidationError as exc:
                return JSONResponse({"detail": _printable(exc.errors())}, status_code=422)

        return handle


# --- running a route's work ----------------------------------------------------------------


def _http_error(exc: errors.ColumnlineError) -> HTTPException:
    if isinstance(exc, errors.UnprocessableError):
        # Every 422 of the API has FastAPI's shape: a list of what is wrong, and where.
        where = ["header", IDEMPOTENCY_HEADER]
        return HTTPException(422, detail=[{"loc": where, "msg": exc.message, "type": exc.error}])
    detail = {"error": exc.error, "message": exc.message, "context": exc.context}
    return HTTPException(STATUS[type(exc)], detail=detail)


def _invalid_value(exc: psycopg.DataError) -> HTTPException:
    message = exc.diag.message_primary or str(exc)
    return HTTPException(422, detail=[{"loc": ["body"], "msg": message, "type": "invalid_value"}])


def read(
    request: Request, work: Callable[Concatenate[Conn, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run one function of the API in one HQ transaction; its errors become HTTP errors."""
    try:
        with runtime_of(request).dbs.hq.connection() as conn:
            return work(conn, *args, **kwargs)
    except errors.ColumnlineError as exc:
        raise _http_error(exc) from None
    except psycopg.DataError as exc:
        # The models reject what Postgres would refuse; this is the backstop for anything they
        # miss (a value out of a column's range, an encoding problem): the client's fault.
        raise _invalid_value(exc) from None


def _scope(request: Request, run_id: UUID | None) -> idempotency.Scope | None:
    header = request.headers.get(IDEMPOTENCY_HEADER)
    if header is None or not header.strip():
        # An empty header is how Make.com sends a key mapped from an empty variable: no key.
        return None
    try:
        key = idempotency.parse_key(header)
    except idempotency.InvalidKeyError as exc:
        raise _http_error(errors.BadRequestError("idempotency_key_invalid", str(exc))) from None
    route = request.scope["route"].path
    return idempotency.Scope(f"{request.method} {route}", run_id, key)


def _keep(request: Request) -> timedelta:
    return timedelta(hours=runtime_of(request).settings.columnline_idempotency_hours)


def _answer(result: BaseModel | None, status_code: int) -> idempotency.Answer:
    body = b"" if result is None else result.model_dump_json().encode()
    return idempotency.Answer(status_code, body)


def _response(answer: idempotency.Answer, *, replayed: bool = False) -> Response:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    media_type = "application/json" if answer.body else None
    return Response(answer.body, answer.status_code, headers=headers, media_type=media_type)


def write(
    request: Request,
    body: BaseModel | None,
    work: Callable[[Conn], BaseModel | None],
    *,
    status_code: int | Callable[[Any], int],
    run_id: UUID | None = None,
) -> Response:
    """Run a write in one HQ transaction and answer it; with an Idempotency-Key, the same key
    and request answer the first answer again instead (within the route and `run_id`)."""
    scope = _scope(request, run_id)

    def keyed(conn: Conn) -> tuple[idempotency.Answer, bool]:
        if scope is not None:
            asked = {
                "path": dict(request.path_params),
                "body": None if body is None else body.model_dump(mode="json"),
            }
            digest = idempotency.fingerprint(asked)
            kept = idempotency.claim(conn, scope, digest, _keep(request))
            if kept is not None:
                return kept, True
        result = work(conn)
        code = status_code if isinstance(status_code, int) else status_code(result)
        answer = _answer(result, code)
        if scope is not None:
            idempotency.remember(conn, scope, answer)
        return answer, False

    answer, replayed = read(request, keyed)
    return _response(answer, replayed=replayed)
