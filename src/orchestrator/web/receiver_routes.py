"""`POST /receivers/{workflow_slug}`: where Clay's HTTP-API column sends results.

The route only adapts HTTP to `orchestrator.callbacks.receive`, which decides.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from orchestrator.callbacks.receive import ReceiverRuntime, receive

MAX_CALLBACK_BYTES = 5 * 1024 * 1024


async def receive_request(
    runtime: ReceiverRuntime, workflow_slug: str, request: Request
) -> JSONResponse:
    """One callback request through `receive`, answered as JSON (the Modal endpoints too)."""
    declared = request.headers.get("content-length", "0")
    if declared.isdigit() and int(declared) > MAX_CALLBACK_BYTES:
        return JSONResponse({"error": "callback body too large"}, status_code=413)
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    result = await receive(runtime, workflow_slug, headers, body)
    return JSONResponse(result.body, status_code=result.status_code)


def add_receiver_routes(app: FastAPI) -> None:
    @app.post(
        "/receivers/{workflow_slug}",
        tags=["receivers"],
        summary="Receive an enrichment result from Clay (or another async provider)",
        responses={
            200: {"description": "Stored, or a duplicate of a stored callback"},
            401: {"description": "Missing/wrong shared secret or callback token"},
            404: {"description": "Unknown workflow or entity"},
            413: {"description": "Body too large"},
            422: {"description": "Malformed body"},
        },
    )
    async def receive_callback(workflow_slug: str, request: Request) -> Any:
        return await receive_request(request.app.state.runtime, workflow_slug, request)
