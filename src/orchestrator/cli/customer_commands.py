"""`enrich customers upload | list`: a client's customer list, which the alumni filter matches
its leads' past jobs against."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.cli.errors import explained_errors, fail
from orchestrator.db.pool import open_databases
from orchestrator.reports.leads import customer_count, list_customers
from orchestrator.upload.customers import CustomerFileError, upload_customers

console = Console(soft_wrap=True)
app = typer.Typer(
    help="A client's customers: its leads who used to work at one are its alumni.",
    no_args_is_help=True,
)
ClientOpt = Annotated[str, typer.Option("--client", help="Client the list belongs to.")]


@app.command("upload")
@explained_errors
def upload(
    # Not checked by typer: a missing file is then one line (explained_errors), not a panel.
    file: Annotated[Path, typer.Argument(help="CSV with a name and/or domain column.")],
    client: ClientOpt,
) -> None:
    """Replace the client's customer list with the file's."""
    with open_databases() as dbs:
        try:
            with file.open("rb") as stream:
                result = upload_customers(dbs, stream, client)
        except CustomerFileError as exc:
            fail(f"{file.name}: {exc}; nothing was changed")
    console.print(
        f"client {result.client_name}: {result.customers} customers listed"
        f" ({result.duplicates} duplicates and {result.blank_rows} blank rows skipped)",
        highlight=False,
    )


@app.command("list")
@explained_errors
def list_command(
    client: ClientOpt,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Rows to show.")] = 20,
) -> None:
    """How many customers the client has, and the first of them by name."""
    with open_databases() as dbs, dbs.hq.connection() as conn:
        count = customer_count(conn, client)
        page = list_customers(conn, client, limit=limit)
    console.print(f"client {client}: {count} customers", highlight=False)
    if not page.rows:
        return
    table = Table("name", "domain")
    for customer in page.rows:
        table.add_row(customer.name, customer.domain or "")
    console.print(table)
    if page.next_cursor is not None:
        console.print(f"... and {count - len(page.rows)} more", highlight=False)
