"""The `enrich` command."""

from __future__ import annotations

import logging

import typer

from orchestrator.cli import (
    batch_commands,
    credit_commands,
    customer_commands,
    recovery_commands,
    report_commands,
    service_commands,
    workflow_commands,
)
from orchestrator.cli.errors import explained_errors

app = typer.Typer(
    help="Enrich Apollo lead exports: upload, normalize, dedupe, enrich via Clay, consolidate.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(service_commands.db_app, name="db")
app.add_typer(workflow_commands.step_app, name="step")
app.add_typer(customer_commands.app, name="customers")
for command in (
    batch_commands.sample,
    batch_commands.upload,
    batch_commands.run,
    credit_commands.estimate,
    batch_commands.status,
    batch_commands.batches,
    report_commands.verify,
    report_commands.consolidate,
    report_commands.export,
    recovery_commands.sweep,
    recovery_commands.resume,
    recovery_commands.retry,
    recovery_commands.launch,
    recovery_commands.budget,
    workflow_commands.integrity,
    workflow_commands.workflows,
    service_commands.serve,
):
    app.command()(explained_errors(command))


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log details.")) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


if __name__ == "__main__":
    app()
