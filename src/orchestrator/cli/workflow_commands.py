"""`enrich step run | integrity | workflows`: DB-driven workflows and their plays."""

from __future__ import annotations

import time
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.cli.errors import explained_errors, fail
from orchestrator.db.pool import open_databases
from orchestrator.engine.plays import run_play_step, step_states
from orchestrator.reports import integrity as integrity_check
from orchestrator.reports.batches import resolve_batch
from orchestrator.reports.workflows import check_workflows
from orchestrator.runtimes.service import LocalService
from orchestrator.state.registry import RegistryError

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
step_app = typer.Typer(help="Run one step of a play by hand.", no_args_is_help=True)


def _company_ids(text: str) -> list[UUID]:
    try:
        return [UUID(c.strip()) for c in text.split(",") if c.strip()]
    except ValueError:
        fail(f"--companies takes comma-separated normalized_companies ids, got {text[:80]!r}")


@step_app.command("run")
@explained_errors
def step_run(
    play: Annotated[str, typer.Argument(help="Play name, e.g. company-research.")],
    step: Annotated[int, typer.Argument(help="Step number within the play.")],
    companies: Annotated[
        str | None, typer.Option(help="Comma-separated normalized_companies ids.")
    ] = None,
    batch: Annotated[
        str | None, typer.Option(help="Every company of this batch (id or unique prefix).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Run again for companies already done.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for results.")] = 300,
) -> None:
    """Run STEP of PLAY for companies, like clicking "Run Step" in the UI."""
    ids = _company_ids(companies) if companies else None
    with LocalService() as service:
        batch_id = None
        if batch is not None:
            with service.dbs.hq.connection() as conn:
                batch_id = resolve_batch(conn, batch)
        try:
            run = run_play_step(
                service.dbs,
                service.runtime.dispatcher,
                play,
                step,
                company_ids=ids,
                batch_id=batch_id,
                force=force,
            )
        except (RegistryError, ValueError) as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
        states = _wait(service, run, timeout)
    table = Table("company", "status", "error", title=f"{play} step {step}: {run.workflow.title}")
    for row in states:
        table.add_row(str(row["domain"]), str(row["status"]), str(row["error"] or ""))
    console.print(table)
    if any(r["status"] != "COMPLETED" for r in states):
        raise typer.Exit(1)


def _wait(service: LocalService, run: object, timeout: float) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    service.runtime.dispatcher.wait_idle(timeout)
    while True:
        states = step_states(service.dbs, run)  # type: ignore[arg-type]
        pending = [s for s in states if s["status"] in (None, "PENDING", "IN_PROGRESS")]
        if not pending or time.monotonic() > deadline:
            return states
        time.sleep(0.25)


def integrity(
    fix: Annotated[bool, typer.Option("--fix", help="Delete the orphaned completions.")] = False,
) -> None:
    """Cross-check step completions against their destination data (HQ and Workspace)."""
    with open_databases() as dbs:
        report = integrity_check.check(dbs)
        for orphan in report.orphans:
            console.print(
                f"orphan: {orphan.play_name} step {orphan.step_number} ({orphan.workflow_slug})"
                f" company {orphan.company_id}: {orphan.reason}"
            )
        console.print(f"{report.checked} completions checked, {len(report.orphans)} orphaned")
        if fix and report.orphans:
            console.print(f"deleted {integrity_check.fix(dbs, report)} orphaned completions")
        elif report.orphans:
            raise typer.Exit(1)


def workflows() -> None:
    """List the registry and check each workflow's destination table and columns."""
    with open_databases() as dbs:
        checks = check_workflows(dbs)
    for check in checks:
        issues = check.problems
        mark = "[green]ok[/green]" if not issues else "[red]" + "; ".join(issues) + "[/red]"
        console.print(f"{check.slug}: {mark}")
    if any(c.problems for c in checks):
        raise typer.Exit(1)
