"""`POST /receivers/{workflow_slug}`: where Clay's HTTP-API column sends results.

The route only adapts HTTP to `orchestrator.callbacks.receive`, which decides. Adapting
includes reading the body within `MAX_CALLBACK_BYTES` as it streams in: a chunked body has no
Content-Length to check first, and must not be buffered whole to learn that it is too long.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from orchestrator.callbacks.receive import (
    MAX_CALLBACK_BYTES,
    MAX_JSON_DEPTH,
    ReceiverRuntime,
    receive,
    refuse_too_large,
)

# Sent with a body refused unread: the server then closes the connection instead of reading
# (and dropping) the rest of the body to keep the connection open for another request.
_CLOSE = {"connection": "close"}


def _declared_too_large(request: Request) -> bool:
    declared = request.headers.get("content-length", "")
    return declared.isdigit() and int(declared) > MAX_CALLBACK_BYTES


async def _read_within_limit(request: Request) -> tuple[bytes, bool]:
    """The body and True; or, for a body longer than the limit, its first `MAX_CALLBACK_BYTES`
    and False, with nothing read after the chunk that crossed the limit."""
    if _declared_too_large(request):
        return b"", False
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_CALLBACK_BYTES:
            return bytes(body[:MAX_CALLBACK_BYTES]), False
    return bytes(body), True


async def receive_request(
    runtime: ReceiverRuntime, workflow_slug: str, request: Request
) -> JSONResponse:
    """One callback request through `receive`, answered as JSON (the Modal endpoints too)."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    body, whole = await _read_within_limit(request)
    if not whole:
        refused = await refuse_too_large(runtime, workflow_slug, headers, body)
        return JSONResponse(refused.body, status_code=refused.status_code, headers=_CLOSE)
    result = await receive(runtime, workflow_slug, headers, body)
    return JSONResponse(result.body, status_code=result.status_code)


def add_receiver_routes(app: FastAPI) -> None:
    @app.post(
        "/receivers/{workflow_slug}",
        tags=["receivers"],
        summary="Receive an enrichment result from Clay (or another async provider)",
        responses={
            200: {"description": "Stored, or a duplicate of a callback already answered"},
            401: {"description": "Missing/wrong shared secret or callback token"},
            404: {"description": "Unknown workflow or entity"},
            413: {"description": f"Body longer than {MAX_CALLBACK_BYTES} bytes"},
            422: {
                "description": "Malformed body, or arrays and objects nested deeper than "
                f"{MAX_JSON_DEPTH} levels"
            },
        },
    )
    async def receive_callback(workflow_slug: str, request: Request) -> Any:
        return await receive_request(request.app.state.runtime, workflow_slug, request)
