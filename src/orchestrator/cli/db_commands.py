"""`enrich db ...`: database set-up."""

from __future__ import annotations

import typer
from rich.console import Console

from orchestrator.db.migrate import MigrationError, migrate_all
from orchestrator.db.urls import ConfigurationError, require_session, resolve_database_urls
from orchestrator.settings import get_settings

app = typer.Typer(help="Database set-up.", no_args_is_help=True)
console = Console(soft_wrap=True)


@app.command("migrate")
def migrate_command() -> None:
    """Apply pending migrations to the HQ and Workspace databases (embedded when unset)."""
    try:
        urls = require_session(resolve_database_urls(get_settings()))
        if urls.embedded is not None:
            console.print(f"[dim]embedded Postgres at {urls.embedded.pgdata}[/dim]")
        reports = migrate_all(urls.hq, urls.workspace)
    except (ConfigurationError, MigrationError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    for report in reports:
        if report.applied:
            console.print(f"{report.database}: applied {len(report.applied)} migration(s)")
            for name in report.applied:
                console.print(f"  + {name}")
        else:
            console.print(
                f"{report.database}: up to date ({report.already_applied} already applied)"
            )
