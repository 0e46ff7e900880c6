"""`enrich sweep | retry | resume`: nothing stuck, nothing lost."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console

from orchestrator.cli.batch_commands import drive_and_report
from orchestrator.db.pool import Databases, open_databases
from orchestrator.engine.recovery import RecoveryReport, prepare_resume, prepare_retry
from orchestrator.engine.sweeper import sweep as sweep_expired
from orchestrator.reports.batches import resolve_batch
from orchestrator.runtimes.service import LocalService

console = Console()
BatchArg = Annotated[
    str, typer.Argument(help="Batch id, or a unique prefix of it (see `enrich batches`).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]


def sweep() -> None:
    """Retry or fail work whose lease expired (what the scheduled sweeper does)."""
    with open_databases() as dbs:
        report = sweep_expired(dbs)
    if not report.changed:
        console.print("nothing past its lease")
        return
    for what, counts in (("entities", report.entities), ("item-steps", report.items)):
        for status, n in sorted(counts.items()):
            console.print(f"{what}: {n} -> {status}")


def resume(batch: BatchArg, as_json: JsonOpt = False) -> None:
    """Drive an interrupted batch to the end (Ctrl-C, kill -9, power loss)."""
    _recover(
        batch, as_json, prepare_resume, "resuming: {0.item_steps} interrupted item-step(s) released"
    )


def retry(batch: BatchArg, as_json: JsonOpt = False) -> None:
    """Run a batch's FAILED items again; entities that succeeded are not sent to Clay again."""
    _recover(
        batch,
        as_json,
        prepare_retry,
        "retrying {0.item_steps} failed item-step(s), {0.entities} entities",
    )


def _recover(
    batch: str,
    as_json: bool,
    prepare: Callable[[Databases, UUID], RecoveryReport],
    message: str,
) -> None:
    """Prepare the batch (in the service's databases), say what was done, drive it."""
    started = time.monotonic()
    with LocalService() as service:
        with service.dbs.hq.connection() as conn:
            batch_id = resolve_batch(conn, batch)
        report = prepare(service.dbs, batch_id)
        if not as_json:
            console.print(message.format(report))
        drive_and_report(service, batch_id, started, as_json)
