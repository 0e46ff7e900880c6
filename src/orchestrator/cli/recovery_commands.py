"""`enrich sweep | retry | resume | launch | budget`: nothing stuck, nothing lost, nothing
spent that was not meant to be."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from shlex import quote
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console

from orchestrator.cli.batch_commands import ReuseOpt, credits_value
from orchestrator.cli.driving import drive_and_report
from orchestrator.cli.errors import fail
from orchestrator.db.pool import Conn, open_databases
from orchestrator.db.queries import query
from orchestrator.engine.recovery import (
    NotHeldError,
    RecoveryReport,
    launch_batch,
    prepare_resume,
    prepare_retry,
)
from orchestrator.engine.sweeper import sweep as sweep_expired
from orchestrator.reports.batches import resolve_batch
from orchestrator.reports.credits import batch_credits
from orchestrator.runtimes.service import LocalService
from orchestrator.state.credit_caps import client_has_batches, set_batch_cap, set_client_cap
from orchestrator.state.progress import HELD_FOR_LAUNCH
from orchestrator.upload.ingest import UploadOptionError, checked_label

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


def launch(batch: BatchArg, reuse: ReuseOpt = True, as_json: JsonOpt = False) -> None:
    """Launch a batch uploaded with --hold (after `enrich estimate`), and drive it to the end."""
    with _service_for(batch, launching=True) as (service, batch_id, started):
        try:
            launch_batch(service.dbs, batch_id, reuse=reuse)
        except NotHeldError as exc:
            fail(str(exc))
        drive_and_report(service, batch_id, started, as_json)


def budget(
    credits: Annotated[
        Decimal | None,
        typer.Option(
            "--credits",
            parser=credits_value,
            metavar="CREDITS",
            help="The cap: Actions + data credits.",
        ),
    ] = None,
    batch: Annotated[str | None, typer.Option("--batch", help="Cap one batch.")] = None,
    client: Annotated[
        str | None, typer.Option("--client", help="Cap all of a client's batches together.")
    ] = None,
    no_cap: Annotated[bool, typer.Option("--no-cap", help="Remove the cap.")] = False,
) -> None:
    """Set, raise or remove a credit cap; a batch held at its cap then goes on (resume it)."""
    if (batch is None) == (client is None):
        fail("give one of --batch ID (one batch's cap) or --client NAME (a client's)")
    if (credits is None) == (not no_cap):
        fail("give one of --credits N (set or change the cap) or --no-cap (remove it)")
    cap = None if no_cap else credits
    shown = "no cap" if cap is None else f"a cap of {cap.normalize():,f} credits"
    with open_databases() as dbs, dbs.hq.connection() as conn:
        if batch is not None:
            batch_id = resolve_batch(conn, batch)
            set_batch_cap(conn, batch_id, cap)
            console.print(f"batch {batch_id} now has {shown}", highlight=False)
            waiting = [batch_id]
        else:
            assert client is not None
            try:
                client = checked_label(client, "client name")
            except UploadOptionError as exc:
                fail(str(exc))
            waiting = set_client_cap(conn, client, cap)
            console.print(f"client {client!r} now has {shown} over all its batches")
            if cap is not None and not client_has_batches(conn, client):
                console.print(
                    f"(no batch of client {client!r} yet: the cap applies to its batches to"
                    " come; client names must match exactly, `enrich batches` lists them)"
                )
        for batch_id in waiting:
            console.print(_after_cap(conn, batch_id, cap), highlight=False)


def _after_cap(conn: Conn, batch_id: UUID, cap: Decimal | None) -> str:
    """What the batch does under its new cap, and the command that makes it go on."""
    status = conn.execute(query("batch_play"), {"batch_id": batch_id}).fetchone()
    spent = batch_credits(conn, [batch_id])[batch_id].spent
    if status is None or status["status"] in ("COMPLETED", "FAILED"):
        return f"batch {batch_id} is finished; it spent {spent.normalize():,f} credits"
    if cap is not None and spent >= cap:
        return (
            f"batch {batch_id} spent {spent.normalize():,f} credits already, the cap or more:"
            " it sends nothing more until the cap is above that"
        )
    if status["status"] == HELD_FOR_LAUNCH:
        return f"batch {batch_id} waits for its launch: enrich launch {batch_id}"
    return f"batch {batch_id}: if nothing runs it, resume it with: enrich resume {batch_id}"


@contextmanager
def _service_for(
    batch: str, *, launching: bool = False
) -> Iterator[tuple[LocalService, UUID, float]]:
    """The running service, the batch the argument names, and when the command started; a
    batch held for launch is only driven by `launch`."""
    started = time.monotonic()
    with LocalService() as service:
        with service.dbs.hq.connection() as conn:
            batch_id = resolve_batch(conn, batch)
            held = conn.execute(query("held_for_launch"), {"batch_id": batch_id}).fetchone()
        if held is not None and not launching:
            estimate = (
                f"enrich estimate {quote(held['file_name'])} --client {quote(held['client_name'])}"
            )
            fail(
                f"batch {batch_id} is held for launch: read what it will cost on its dashboard"
                f" page or with `{estimate}`, then launch it with: enrich launch {batch_id}"
            )
        yield service, batch_id, started
