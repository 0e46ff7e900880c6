"""Driving a batch from the terminal (`run`, `resume`, `retry`, `launch`): progress while it
runs, the summary when it ends, and what an interrupt leaves behind.

Exit codes: 0 the batch completed and enriched something; 1 it ended in another state; 3 every
item failed, so nothing was enriched (Clay unreachable, ...); 4 it stopped sending because a
workflow's webhooks are spent or the batch reached its credit cap (the message says what to
do, then `enrich resume`), or the batch is held for launch (`enrich launch`); 130 interrupted
(Ctrl-C or SIGTERM), with the command that resumes it.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, NoReturn
from uuid import UUID

import typer
from rich.console import Console

from orchestrator.cli.display import StepProgressBars, print_summary
from orchestrator.reports.batches import callbacks_stored_since, database_now
from orchestrator.reports.summary import BatchSummary, summarize
from orchestrator.runtimes.service import LocalService

NOTHING_ENRICHED = 3
HELD = 4
INTERRUPTED = 130

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def drive_and_report(
    service: LocalService,
    batch_id: UUID,
    started: float,
    as_json: bool,
    notes: dict[str, Any] | None = None,
) -> None:
    """Drive the batch to its end and print the summary (`notes` join its JSON form)."""
    err.print(service.targets_line(), highlight=False)
    with _sigterm_as_interrupt():
        try:
            summary = _drive(service, batch_id, started, show_progress=not as_json)
        except KeyboardInterrupt:
            _interrupted(service, batch_id, as_json)
    held = service.runtime.progress(batch_id).held
    if held:
        _report_held(summary, held, as_json, notes or {})
    _report(summary, as_json, notes or {})


def _report_held(
    summary: BatchSummary, held: dict[str, str], as_json: bool, notes: dict[str, Any]
) -> NoReturn:
    """The batch stopped sending (held for launch, for want of webhooks, at its credit cap):
    what was done, and what to do."""
    verb = "launch" if "launch" in held else "resume"
    resume = f"enrich {verb} {summary.batch_id}"
    if as_json:
        typer.echo(
            json.dumps(
                summary.as_json() | notes | {"status": "HELD", "held": held, "resume": resume},
                default=str,
            )
        )
    else:
        print_summary(console, summary)
    for reason in dict.fromkeys(held.values()):  # one line per hold, not per step it holds
        err.print(f"[red]stopped sending:[/red] {reason}", highlight=False)
    err.print(f"batch {summary.batch_id} waits: {verb} it with: {resume}")
    raise typer.Exit(HELD)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    # A process started in the background by a shell without job control inherits SIGINT
    # ignored, and Python then never turns it into KeyboardInterrupt: a run must stop on it.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def _interrupted(service: LocalService, batch_id: UUID, as_json: bool) -> NoReturn:
    """Stop claiming and sending, keep storing callbacks for the grace period, then exit 130
    saying how to resume; a second interrupt exits at once."""
    grace = service.runtime.settings.interrupt_grace_seconds
    resume = f"enrich resume {batch_id}"
    err.print(
        f"interrupted: nothing new is sent; callbacks are still received for up to {grace:g} s"
        " (press Ctrl-C again to stop at once)"
    )
    with service.dbs.hq.connection() as conn:
        since = database_now(conn)
    try:
        with _sigterm_as_interrupt():
            service.wind_down(grace)
    except KeyboardInterrupt:
        err.print(f"stopped at once; batch {batch_id} is paused; resume it with: {resume}")
        os._exit(INTERRUPTED)
    with service.dbs.hq.connection() as conn:
        stored = callbacks_stored_since(conn, batch_id, since)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "batch_id": str(batch_id),
                    "status": "PAUSED",
                    "callbacks_stored_while_stopping": stored,
                    "resume": resume,
                }
            )
        )
    err.print(
        f"stopped: {stored} callback(s) that arrived meanwhile were stored."
        f" Batch {batch_id} is paused; resume it with: {resume}"
    )
    raise typer.Exit(INTERRUPTED)


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


def _report(summary: BatchSummary, as_json: bool, notes: dict[str, Any]) -> None:
    if as_json:
        typer.echo(json.dumps(summary.as_json() | notes, default=str))
    else:
        print_summary(console, summary)
    if summary.items and not summary.completed:
        err.print("[red]nothing was enriched:[/red] every item failed (reasons above)")
        raise typer.Exit(NOTHING_ENRICHED)
    if summary.status != "COMPLETED":
        raise typer.Exit(1)
