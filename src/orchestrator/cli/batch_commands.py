"""`enrich sample | upload | run | status`: the batch lifecycle from the terminal."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from entities.apollo_sample import write_csv
from orchestrator.cli.display import print_batches, print_summary
from orchestrator.cli.driving import drive_and_report
from orchestrator.cli.errors import fail
from orchestrator.db.pool import Databases, open_databases
from orchestrator.engine.recovery import prepare_resume
from orchestrator.reports.batches import NOT_STARTED, STOPPED, list_batches, resolve_batch
from orchestrator.reports.summary import summarize
from orchestrator.runtimes.service import LocalService
from orchestrator.state.credit_caps import set_batch_cap, set_batch_reuse
from orchestrator.state.progress import read_progress
from orchestrator.state.registry import DEFAULT_PLAY
from orchestrator.upload.csv_reader import UploadError
from orchestrator.upload.ingest import Launch, UploadOptionError, UploadResult, ingest_upload

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

FileArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]
ClientOpt = Annotated[str, typer.Option("--client", help="Client the batch belongs to.")]
PlayOpt = Annotated[str, typer.Option("--play", help="Play (ordered steps) to run.")]
BatchRef = Annotated[
    str, typer.Argument(help="Batch id, or a unique prefix of it (see `enrich batches`).")
]
DupOpt = Annotated[
    bool, typer.Option("--allow-duplicate", help="Upload a file already uploaded again.")
]
ReuseOpt = Annotated[
    bool,
    typer.Option(
        "--reuse/--no-reuse",
        help="Reuse the client's fresh results where a workflow allows it (--no-reuse: call"
        " for every entity).",
    ),
]
MAX_CREDITS = Decimal("9999999999")


def credits_value(text: str) -> Decimal:
    """A number of credits as people type it: 0 to MAX_CREDITS, at most 4 decimals."""
    try:
        value = Decimal(text.replace(",", "").replace("_", ""))
    except ArithmeticError:
        value = Decimal("NaN")
    if not value.is_finite() or not 0 <= value <= MAX_CREDITS or value != round(value, 4):
        raise typer.BadParameter(
            f"{text!r} is not a number of credits from 0 to {MAX_CREDITS:,} (4 decimals at most)"
        )
    return value


CapOpt = Annotated[
    Decimal | None,
    typer.Option(
        "--credit-cap",
        parser=credits_value,
        metavar="CREDITS",
        help="Stop sending once the batch spent this many credits (Actions + data credits).",
    ),
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


def _upload(
    dbs: Databases, path: Path, client: str, play: str, allow_dup: bool, launch: Launch
) -> UploadResult:
    """Uploads the file, or returns the client's batch of it; says what was skipped (stderr)."""
    try:
        with path.open("rb") as fh:
            result = ingest_upload(
                dbs,
                fh,
                file_name=path.name,
                client_name=client,
                play_name=play,
                allow_duplicate=allow_dup,
                launch=launch,
            )
    except UploadOptionError as exc:
        fail(f"{exc}; nothing was stored")
    except UploadError as exc:
        fail(f"{path.name}: {exc}; nothing was stored, fix the file and upload it again")
    if result.repeated_headers:
        err.print(
            f"{path.name}: skipped {result.repeated_headers} repeated header row(s)"
            " (exports pasted together)",
            highlight=False,
        )
    return result


def upload(
    file: FileArg,
    client: ClientOpt = "default",
    play: PlayOpt = DEFAULT_PLAY,
    allow_duplicate: DupOpt = False,
    hold: Annotated[
        bool, typer.Option("--hold", help="Keep it from sending until `enrich launch`.")
    ] = False,
    reuse: ReuseOpt = True,
    credit_cap: CapOpt = None,
) -> None:
    """Store a CSV as a new batch (it runs when `enrich resume` or the server drives it)."""
    with open_databases() as dbs:
        launch = Launch(hold, reuse, credit_cap)
        result = _upload(dbs, file, client, play, allow_duplicate, launch)
    if result.existing:
        console.print(
            f"{file.name} was already uploaded as batch {result.batch_id}"
            f" ({result.rows} rows); no new batch was made",
            highlight=False,
        )
    else:
        console.print(f"batch {result.batch_id}: {result.rows} rows", highlight=False)
    if hold and not result.existing:
        console.print(
            f"held: nothing is sent until you launch it with: enrich launch {result.batch_id}"
        )
    else:
        console.print(f"run it with: enrich resume {result.batch_id}")


def run(
    file: FileArg,
    client: ClientOpt = "default",
    play: PlayOpt = DEFAULT_PLAY,
    allow_duplicate: DupOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    reuse: ReuseOpt = True,
    credit_cap: CapOpt = None,
) -> None:
    """Upload a CSV and drive its batch to the end, then print a summary."""
    started = time.monotonic()
    with LocalService() as service:
        launch = Launch(reuse=reuse, credit_cap=credit_cap)
        result = _upload(service.dbs, file, client, play, allow_duplicate, launch)
        if result.existing:
            # The same file again continues its batch instead of starting a second one; said
            # on stderr with --json too, where the summary alone would not tell.
            prepare_resume(service.dbs, result.batch_id)
            err.print(
                f"{file.name} was already uploaded as batch {result.batch_id}"
                f" ({result.rows} rows); continuing it{_relaunched(service.dbs, result, launch)}",
                highlight=False,
            )
        drive_and_report(service, result.batch_id, started, as_json)


def _relaunched(dbs: Databases, result: UploadResult, launch: Launch) -> str:
    """A cap or --no-reuse given with the file again applies to its batch; what changed."""
    changed = []
    with dbs.hq.connection() as conn:
        if launch.credit_cap is not None:
            set_batch_cap(conn, result.batch_id, launch.credit_cap)
            changed.append(f"its credit cap is now {launch.credit_cap.normalize():,f} credits")
        if not launch.reuse:
            set_batch_reuse(conn, result.batch_id, reuse=False)
            changed.append("it calls for every entity (--no-reuse)")
    return "".join(f"; {c}" for c in changed)


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
    for reason, slugs in _by_reason(progress.held).items():
        console.print(f"[red]stopped sending ({', '.join(slugs)}):[/red] {reason}", highlight=False)
    if summary.status in (NOT_STARTED, STOPPED) and not progress.held:
        console.print(f"no process is running it; run it with: enrich resume {batch_id}")


def _by_reason(held: dict[str, str]) -> dict[str, list[str]]:
    """The holds of a batch, each with the steps it holds (a cap holds every paid step)."""
    reasons: dict[str, list[str]] = {}
    for slug, reason in held.items():
        reasons.setdefault(reason, []).append(slug)
    return reasons


def batches(
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 50,
) -> None:
    """List batches: id, client, file, items, status, done/failed, credits spent and saved, age."""
    with open_databases() as dbs, dbs.hq.connection() as conn:
        lines = list_batches(conn, limit)
    if not lines:
        console.print("no batches yet; `enrich run FILE.csv` uploads and runs one")
        return
    print_batches(console, lines)
