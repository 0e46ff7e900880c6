"""`enrich sample | upload | run | status`: the batch lifecycle from the terminal."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console

from entities.apollo_sample import write_csv
from orchestrator.cli.display import StepProgressBars, print_batches, print_summary
from orchestrator.db.pool import Databases, open_databases
from orchestrator.engine.recovery import prepare_resume
from orchestrator.reports.batches import list_batches, resolve_batch
from orchestrator.reports.summary import BatchSummary, summarize
from orchestrator.runtimes.service import LocalService
from orchestrator.state.progress import read_progress
from orchestrator.state.registry import DEFAULT_PLAY
from orchestrator.upload.csv_reader import UploadError
from orchestrator.upload.ingest import UploadResult, ingest_upload

console = Console()
err = Console(stderr=True)

FileArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]
ClientOpt = Annotated[str, typer.Option("--client", help="Client the batch belongs to.")]
PlayOpt = Annotated[str, typer.Option("--play", help="Play (ordered steps) to run.")]
BatchRef = Annotated[
    str, typer.Argument(help="Batch id, or a unique prefix of it (see `enrich batches`).")
]
DupOpt = Annotated[
    bool, typer.Option("--allow-duplicate", help="Upload a file already uploaded again.")
]


def sample(
    output: Annotated[Path, typer.Argument(dir_okay=False, writable=True)],
    rows: Annotated[int, typer.Option(min=1)] = 1000,
    companies: Annotated[int, typer.Option(min=1)] = 200,
    seed: int = 0,
) -> None:
    """Write a synthetic Apollo export (messy websites, email-only rows, duplicates)."""
    with output.open("w", encoding="utf-8", newline="") as fh:
        stats = write_csv(fh, rows, companies, seed)
    err.print(
        f"wrote {output}: {stats.rows} rows, {stats.distinct_domains} companies,"
        f" {stats.duplicate_rows} duplicate rows, {stats.underivable_rows} without a company"
    )


def _upload(dbs: Databases, path: Path, client: str, play: str, allow_dup: bool) -> UploadResult:
    try:
        with path.open("rb") as fh:
            return ingest_upload(
                dbs,
                fh,
                file_name=path.name,
                client_name=client,
                play_name=play,
                allow_duplicate=allow_dup,
            )
    except UploadError as exc:
        err.print(f"[red]error:[/red] {path.name}: {exc}")
        err.print("nothing was stored; fix the file and upload it again")
        raise typer.Exit(1) from None


def upload(
    file: FileArg,
    client: ClientOpt = "default",
    play: PlayOpt = DEFAULT_PLAY,
    allow_duplicate: DupOpt = False,
) -> None:
    """Store a CSV as a new batch (it runs when `enrich resume` or the server drives it)."""
    with open_databases() as dbs:
        result = _upload(dbs, file, client, play, allow_duplicate)
    if result.existing:
        console.print(f"{file.name} was already uploaded as batch {result.batch_id}")
    else:
        console.print(f"batch {result.batch_id}: {result.rows} rows")
    console.print(f"run it with: enrich resume {result.batch_id}")


def run(
    file: FileArg,
    client: ClientOpt = "default",
    play: PlayOpt = DEFAULT_PLAY,
    allow_duplicate: DupOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Upload a CSV and drive its batch to the end, then print a summary."""
    started = time.monotonic()
    with LocalService() as service:
        result = _upload(service.dbs, file, client, play, allow_duplicate)
        if result.existing:
            # The same file again continues its batch instead of starting a second one.
            prepare_resume(service.dbs, result.batch_id)
            if not as_json:
                err.print(f"{file.name} is batch {result.batch_id}; resuming it")
        drive_and_report(service, result.batch_id, started, as_json)


def drive_and_report(service: LocalService, batch_id: UUID, started: float, as_json: bool) -> None:
    _report(_drive(service, batch_id, started, show_progress=not as_json), as_json)


def _drive(
    service: LocalService, batch_id: UUID, started: float, show_progress: bool
) -> BatchSummary:
    runtime = service.runtime
    with runtime.dbs.hq.connection() as conn:
        items = summarize(conn, batch_id).items
    if show_progress:
        with StepProgressBars(err, items) as bars:
            runtime.run_batch(batch_id, on_progress=bars.update)
    else:
        runtime.run_batch(batch_id)
    with runtime.dbs.hq.connection() as conn:
        return summarize(conn, batch_id, seconds=time.monotonic() - started)


# `run`, `resume` and `retry` exit with: 0 the batch completed and enriched something; 1 it
# ended in another state; 3 every item failed, so nothing was enriched (Clay unreachable, ...).
NOTHING_ENRICHED = 3


def _report(summary: BatchSummary, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary.as_json(), default=str))
    else:
        print_summary(console, summary)
    if summary.items and not summary.completed:
        err.print("[red]nothing was enriched:[/red] every item failed (reasons above)")
        raise typer.Exit(NOTHING_ENRICHED)
    if summary.status != "COMPLETED":
        raise typer.Exit(1)


def status(batch: BatchRef) -> None:
    """Per-step counts of a batch."""
    with open_databases() as dbs, dbs.hq.connection() as conn:
        batch_id = resolve_batch(conn, batch)
        summary = summarize(conn, batch_id)
        progress = read_progress(conn, batch_id)
    for step in progress.steps:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(step.counts.items()))
        console.print(f"{step.step_number}. {step.step_name:<40} {counts}")
    print_summary(console, summary)


def batches(
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 50,
) -> None:
    """List batches: id, client, file, items, status, done/failed, credits, age."""
    with open_databases() as dbs, dbs.hq.connection() as conn:
        lines = list_batches(conn, limit)
    if not lines:
        console.print("no batches yet; `enrich run FILE.csv` uploads and runs one")
        return
    print_batches(console, lines)
