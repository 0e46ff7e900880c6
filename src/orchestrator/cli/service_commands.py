"""`enrich serve`: the HTTP API (uploads, status, receivers, dashboard) with the local runtime
behind it; `enrich db migrate`: the databases it needs."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from orchestrator.db.migrate import MigrationError, migrate_all
from orchestrator.db.urls import ConfigurationError, require_session, resolve_database_urls
from orchestrator.runtimes.local import LocalRuntime
from orchestrator.runtimes.service import runtime_app, start_providers, targets_line
from orchestrator.settings import get_settings

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)
db_app = typer.Typer(help="Database set-up.", no_args_is_help=True)


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the API with uvicorn; Clay is the simulator unless webhooks are configured."""
    runtime = LocalRuntime()
    base = runtime.settings.public_base_url or f"http://{host}:{port}"
    providers = start_providers(runtime, base)
    console.print(targets_line(providers, runtime.dbs), highlight=False)
    console.print(f"dashboard on http://{host}:{port}/ui/  (sign in with the API key)")
    console.print(f"API on http://{host}:{port}  (docs: /docs)")
    console.print(f"API key (the header x-api-key): {runtime.api_key}")
    for name, simulator in providers.simulators.items():
        console.print(f"{name} simulator at {simulator.url}")
    # uvicorn shuts down gracefully on SIGTERM, then raises it again: as an exit, not a kill,
    # so the runtime, the providers and the embedded server's last user all clean up.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with runtime:
        try:
            uvicorn.run(runtime_app(runtime), host=host, port=port)
        finally:
            _stop_sending(runtime)
            providers.close()
    console.print("stopped")


def _stop_sending(runtime: LocalRuntime) -> None:
    """Send nothing more and let the calls being made finish, before the providers (the
    simulators) go: a call cut off by a stopped provider would fail its entity. What was not
    sent is sent by `enrich resume` or the next `enrich serve`."""
    console.print("stopping: nothing new is sent")
    runtime.stop_claiming()
    runtime.dispatcher.wait_idle(timeout=runtime.settings.interrupt_grace_seconds)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@db_app.command("migrate")
def migrate_command() -> None:
    """Apply pending migrations to the HQ and Workspace databases (embedded when unset)."""
    try:
        urls = require_session(resolve_database_urls(get_settings()))
        if urls.embedded is not None:
            out.print(f"[dim]embedded Postgres at {urls.embedded.pgdata}[/dim]")
        reports = migrate_all(urls.hq, urls.workspace)
    except (ConfigurationError, MigrationError) as exc:
        out.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    for report in reports:
        if report.applied:
            out.print(f"{report.database}: applied {len(report.applied)} migration(s)")
            for name in report.applied:
                out.print(f"  + {name}")
        else:
            out.print(f"{report.database}: up to date ({report.already_applied} already applied)")
