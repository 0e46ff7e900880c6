"""`enrich sweep | retry | resume`: nothing stuck, nothing lost."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console

from orchestrator.cli.driving import drive_and_report
from orchestrator.db.pool import open_databases
from orchestrator.engine.recovery import RecoveryReport, prepare_resume, prepare_retry
from orchestrator.engine.sweeper import sweep as sweep_expired
from orchestrator.reports.batches import resolve_batch
from orchestrator.runtimes.service import LocalService

console = Console(soft_wrap=True)
BatchArg = Annotated[
    str, typer.Argument(help="Batch id, or a unique prefix of it (see `enrich batches`).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]


def sweep() -> None:
    """Retry or fail work whose lease expired (what the scheduled sweeper does)."""
    with open_databases() as dbs:
        report = sweep_expired(dbs)
    if report.skipped is not None:
        console.print(f"nothing done: {report.skipped}", highlight=False)
        return
    if not report.changed:
        console.print("nothing past its lease")
        return
    for what, counts in (("entities", report.entities), ("item-steps", report.items)):
        for status, n in sorted(counts.items()):
            console.print(f"{what}: {n} -> {status}")


ResendOpt = Annotated[
    bool,
    typer.Option(
        "--resend-now",
        help="Send again now the calls a real provider accepted from a process that is gone,"
        " instead of waiting for their leases (they may still be answered; this costs credits).",
    ),
]


def resume(batch: BatchArg, as_json: JsonOpt = False, resend_now: ResendOpt = False) -> None:
    """Drive an interrupted batch to the end (Ctrl-C, kill -9, power loss)."""
    with _service_for(batch) as (service, batch_id, started):
        report = prepare_resume(service.dbs, batch_id, resend_now=resend_now)
        if not as_json:
            for line in resume_lines(report, batch_id):
                console.print(line)
        drive_and_report(service, batch_id, started, as_json, {"recovery": report.as_json()})


def resume_lines(report: RecoveryReport, batch_id: UUID) -> list[str]:
    """What resuming took over, and what it has to wait for."""
    lines = [
        f"resuming: {report.item_steps} interrupted item-step(s) released;"
        f" {report.resent} entity call(s) that can never be answered (not accepted, or"
        " accepted by the simulator of a process that is gone) go out again"
    ]
    wait = report.waiting
    if wait.calls and wait.earliest and wait.latest:
        window = f"{wait.earliest:%H:%M:%S}" + (
            f" to {wait.latest:%H:%M:%S}" if wait.latest != wait.earliest else ""
        )
        lines.append(
            f"waiting for {wait.calls} callback(s) from Clay that a stopped process asked for:"
            f" their leases expire {window}, then they are sent again."
        )
        lines.append(
            f"to send them again now instead: enrich resume {batch_id} --resend-now"
            f" (about {wait.credits:,.1f} credits)"
        )
    return lines


def retry(batch: BatchArg, as_json: JsonOpt = False) -> None:
    """Run a batch's FAILED items again; entities that succeeded are not sent to Clay again."""
    with _service_for(batch) as (service, batch_id, started):
        report = prepare_retry(service.dbs, batch_id)
        if not as_json:
            console.print(
                f"retrying {report.item_steps} failed item-step(s), {report.entities} entities"
            )
        drive_and_report(service, batch_id, started, as_json)


@contextmanager
def _service_for(batch: str) -> Iterator[tuple[LocalService, UUID, float]]:
    """The running service, the batch the argument names, and when the command started."""
    started = time.monotonic()
    with LocalService() as service:
        with service.dbs.hq.connection() as conn:
            batch_id = resolve_batch(conn, batch)
        yield service, batch_id, started
