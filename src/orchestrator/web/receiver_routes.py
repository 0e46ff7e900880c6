"""`POST /receivers/{workflow_slug}`: where Clay's HTTP-API column sends results.

A verified result is handed to the runtime's group commit and awaited on the event loop, so a
burst of callbacks costs no thread per request; anything that needs the database to be judged
(refusals, races, registry cache misses) runs the plain receiver in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any, Protocol

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from orchestrator.callbacks.group_commit import GroupCommitWriter
from orchestrator.callbacks.receive import (
    CallbackResult,
    ReceiverConfig,
    answer_in_memory,
    receive_callback,
)
from orchestrator.db.pool import Databases
from orchestrator.engine.context import Trigger

MAX_CALLBACK_BYTES = 5 * 1024 * 1024


class ReceiverRuntime(Protocol):
    @property
    def dbs(self) -> Databases: ...

    @property
    def receiver_config(self) -> ReceiverConfig: ...

    @property
    def trigger(self) -> Trigger: ...

    @property
    def callback_writer(self) -> GroupCommitWriter: ...


async def handle_callback(
    runtime: ReceiverRuntime, workflow_slug: str, headers: Mapping[str, str], body: bytes
) -> CallbackResult:
    """`receive_callback` for an event loop; `headers` must have lower-case names."""
    dbs, config, trigger = runtime.dbs, runtime.receiver_config, runtime.trigger
    writer = runtime.callback_writer
    answer = answer_in_memory(dbs, config, workflow_slug, headers, body)
    stored = None
    if answer is not None:
        # Data Postgres cannot store is refused, with its dead letter, by the plain receiver.
        with contextlib.suppress(psycopg.DataError):
            stored = await asyncio.wrap_future(writer.submit(answer))
    if stored is None:
        return await run_in_threadpool(
            receive_callback, dbs, config, trigger, workflow_slug, headers, body, writer
        )
    if stored.batch_id is not None:
        trigger.request(stored.batch_id)
    return CallbackResult(200, stored.body, stored.batch_id)


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
        result = await handle_callback(request.app.state.runtime, workflow_slug, headers, body)
        return JSONResponse(result.body, status_code=result.status_code)
