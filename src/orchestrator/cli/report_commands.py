"""`enrich verify | consolidate | export`: check, replay and take out a batch's results."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from orchestrator.cli.errors import fail
from orchestrator.db.pool import open_databases
from orchestrator.reports.batches import resolve_batch
from orchestrator.reports.export import export_csv
from orchestrator.reports.verify import verify_batch
from orchestrator.steps.consolidate import consolidate_batch

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
BatchArg = Annotated[
    str, typer.Argument(help="Batch id, or a unique prefix of it (see `enrich batches`).")
]


def verify(batch: BatchArg) -> None:
    """Run the verification queries and the integrity rule; exit 1 if any fails."""
    with open_databases() as dbs:
        with dbs.hq.connection() as conn:
            batch_id = resolve_batch(conn, batch)
        checks = verify_batch(dbs, batch_id)
    for check in checks:
        mark = "[green]PASS[/green]" if check.passed else "[red]FAIL[/red]"
        console.print(f"{mark}  {check.name}: {check.detail}")
    failed = [c for c in checks if not c.passed]
    console.print(f"{len(checks) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise typer.Exit(1)


def consolidate(batch: BatchArg) -> None:
    """Replay consolidation into final_leads and person_work_history (idempotent)."""
    with open_databases() as dbs:
        with dbs.hq.connection() as conn:
            batch_id = resolve_batch(conn, batch)
        result = consolidate_batch(dbs, batch_id)
    console.print(f"final_leads: {result.leads} rows, person_work_history: {result.jobs} rows")


def export(
    batch: BatchArg,
    output: Annotated[
        str, typer.Option("--output", "-o", help="CSV file to write; - for standard output.")
    ] = "-",
    failed: Annotated[
        bool,
        typer.Option("--failed", help="Failed items with their step, reason and source row."),
    ] = False,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw",
            help="Keep cells starting with = + - @ as they are (unsafe to open in a spreadsheet).",
        ),
    ] = False,
) -> None:
    """Write the batch's final_leads (or, with --failed, its failed items) as CSV."""
    path = None if output == "-" else _writable(output)
    with open_databases() as dbs:
        with dbs.hq.connection() as conn:
            batch_id = resolve_batch(conn, batch)
        try:
            rows = export_csv(dbs, batch_id, path, "failed" if failed else "leads", raw)
        except BrokenPipeError:
            # The reader stopped (`| head`): what it wanted was written.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return
        except OSError as exc:
            fail(f"{path}: {exc.strerror or exc}")
    what = "failed item(s)" if failed else "lead(s)"
    err.print(f"wrote {rows} {what} to {path or 'standard output'}")


def _writable(output: str) -> Path:
    """The file to write, refused with the reason when it cannot or should not be replaced."""
    if not output.strip():
        fail("-o needs a file name, or - for standard output")
    path = Path(output).resolve()  # through a link: the file it names is the one replaced
    if not path.parent.is_dir():
        fail(f"{output}: folder {path.parent} does not exist")
    if path.is_dir():
        fail(f"{output} is a folder; give a file name")
    if path.exists() and not path.is_file():
        fail(f"{output} is not a regular file")
    if path.exists() and not path.stat().st_mode & 0o222:
        fail(f"{output} is read-only")
    return path
