"""The `enrich` command."""

from __future__ import annotations

import typer

from cli import db_commands

app = typer.Typer(
    help="Enrich Apollo lead exports: upload, normalize, dedupe, enrich via Clay, consolidate.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(db_commands.app, name="db")


if __name__ == "__main__":
    app()
