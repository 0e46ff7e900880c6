"""`enrich verify | consolidate | export`: check, replay and take out a batch's results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console

from orchestrator.db.pool import open_databases
from orchestrator.engine.passes import UnknownBatchError
from orchestrator.reports.export import export_final_leads
from orchestrator.reports.verify import verify_batch
from orchestrator.steps.consolidate import consolidate_batch

console = Console()
err = Console(stderr=True)
BatchArg = Annotated[UUID, typer.Argument(help="Upload batch id.")]


def verify(batch_id: BatchArg) -> None:
    """Run the verification queries and the integrity rule; exit 1 if any fails."""
    with open_databases() as dbs:
        try:
            checks = verify_batch(dbs, batch_id)
        except UnknownBatchError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
    for check in checks:
        mark = "[green]PASS[/green]" if check.passed else "[red]FAIL[/red]"
        console.print(f"{mark}  {check.name}: {check.detail}")
    failed = [c for c in checks if not c.passed]
    console.print(f"{len(checks) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise typer.Exit(1)


def consolidate(batch_id: BatchArg) -> None:
    """Replay consolidation into final_leads and person_work_history (idempotent)."""
    with open_databases() as dbs:
        result = consolidate_batch(dbs, batch_id)
    console.print(f"final_leads: {result.leads} rows, person_work_history: {result.jobs} rows")


def export(
    batch_id: BatchArg,
    output: Annotated[Path, typer.Option("--output", "-o", dir_okay=False, help="CSV file.")],
) -> None:
    """Write the batch's final_leads as CSV."""
    with open_databases() as dbs:
        rows = export_final_leads(dbs, batch_id, output)
    console.print(f"wrote {rows} leads to {output}")
