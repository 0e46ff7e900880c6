"""What every route may ask of the app: the runtime it serves, and the API key check."""

from __future__ import annotations

import secrets
from typing import Annotated, Protocol

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader

from orchestrator.callbacks.receive import ReceiverRuntime
from orchestrator.engine.dispatch import Dispatcher
from orchestrator.settings import Settings


class AppRuntime(ReceiverRuntime, Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def dispatcher(self) -> Dispatcher: ...

    @property
    def api_key(self) -> str: ...


_api_key_header = APIKeyHeader(name="x-api-key", auto_error=False)


def runtime_of(request: Request) -> AppRuntime:
    runtime: AppRuntime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[AppRuntime, Depends(runtime_of)]


def require_api_key(
    runtime: RuntimeDep, api_key: Annotated[str | None, Depends(_api_key_header)]
) -> None:
    """Uploads and status need the runtime's API key in the x-api-key header."""
    if api_key is None or not secrets.compare_digest(api_key.encode(), runtime.api_key.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid x-api-key header")
