"""`POST /receivers/{workflow_slug}`: where Clay's HTTP-API column sends results.

The route only moves bytes: the plain receiver function does the work in a worker thread, so
the event loop keeps accepting callbacks while Postgres is written, and concurrent callbacks
share the runtime's group commit.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from orchestrator.receivers import receive_callback

MAX_CALLBACK_BYTES = 5 * 1024 * 1024


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
    async def receive(workflow_slug: str, request: Request) -> Any:
        declared = request.headers.get("content-length", "0")
        if declared.isdigit() and int(declared) > MAX_CALLBACK_BYTES:
            return JSONResponse({"error": "callback body too large"}, status_code=413)
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        runtime = request.app.state.runtime
        result = await run_in_threadpool(
            receive_callback,
            runtime.dbs,
            runtime.receiver_config,
            runtime.trigger,
            workflow_slug,
            headers,
            body,
            runtime.callback_writer,
        )
        return JSONResponse(result.body, status_code=result.status_code)
