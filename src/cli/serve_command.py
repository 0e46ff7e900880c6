"""`enrich serve`: the HTTP API with the local runtime behind it."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from orchestrator.runtime import LocalRuntime
from webapp.app import create_app


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the API (uploads, status, Clay receivers) with uvicorn."""
    runtime = LocalRuntime().__enter__()
    try:
        uvicorn.run(create_app(lambda: runtime), host=host, port=port)
    finally:
        runtime.close()
