"""Terminal output: live per-step progress bars and the end-of-run summary."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from orchestrator.reports.batches import BatchLine
from orchestrator.reports.summary import BatchSummary
from orchestrator.state.progress import BatchProgress


class StepProgressBars:
    """One bar per pipeline step: finished (COMPLETED or FAILED) items out of all items."""

    def __init__(self, console: Console, total_items: int) -> None:
        self.total = total_items
        self.progress = Progress(
            TextColumn("{task.description:<40}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed"),
            # Work handed out and not back yet (for the Clay steps: callbacks awaited), so a
            # bar that does not move says what it waits for.
            TextColumn("[dim]{task.fields[in_flight]}"),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> StepProgressBars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, batch: BatchProgress) -> None:
        expected = self.total
        for step in batch.steps:
            task = self._tasks.get(step.step_name)
            if task is None:
                task = self.progress.add_task(
                    step.step_name, total=expected, failed=0, in_flight=""
                )
                self._tasks[step.step_name] = task
            done = step.counts["FAILED"]
            running = step.counts["IN_PROGRESS"]
            self.progress.update(
                task,
                total=expected,
                completed=step.finished,
                failed=done,
                in_flight=f"{running} in flight" if running else "",
            )
            # Items that failed a step never reach the next one.
            if step.counts["PENDING"] + step.counts["IN_PROGRESS"] == 0:
                expected = step.counts["COMPLETED"]


def print_summary(console: Console, summary: BatchSummary) -> None:
    table = Table(title=f"Batch {summary.batch_id}", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    rows: list[tuple[str, object]] = [
        ("status", summary.status),
        ("items", summary.items),
        ("unique companies", summary.companies),
        ("unique people", summary.people),
        ("completed", summary.completed),
        ("failed", summary.failed),
        ("seconds", f"{summary.seconds:.1f}"),
    ]
    extra = dict(summary.extra)
    provider_error = extra.pop("first_provider_error", None)
    for key, value in extra.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        rows.append((key.replace("_", " "), value))
    for key, value in rows:
        table.add_row(key, str(value))
    console.print(table)
    if provider_error:
        console.print(f"[bold]First provider error[/bold]  {escape(str(provider_error))}")
    if summary.top_failure_reasons:
        console.print("[bold]Top failure reasons[/bold]")
        for reason in summary.top_failure_reasons:
            console.print(f"  {reason.items:>6}  {reason.step}: {reason.reason}")


def _age(created_at: datetime) -> str:
    seconds = max((datetime.now(UTC) - created_at).total_seconds(), 0)
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


_STATUS_STYLE = {
    "COMPLETED": "green",
    "FAILED": "red",
    "RUNNING": "yellow",
    "UPLOADED": "cyan",
    "PAUSED": "magenta",
}


def print_batches(console: Console, lines: list[BatchLine]) -> None:
    table = Table(title="Batches, newest first (commands take the id or its first characters)")
    table.add_column("batch", no_wrap=True)
    for name in ("client", "file"):
        table.add_column(name, overflow="fold")
    table.add_column("items", justify="right")
    table.add_column("status", no_wrap=True)
    for name in ("done", "failed", "spent", "saved: dedupe", "reuse", "age"):
        table.add_column(name, justify="right", no_wrap=True)
    for line in lines:
        style = _STATUS_STYLE.get(line.status, "")
        table.add_row(
            str(line.batch_id)[:8],
            line.client_name,
            line.file_name,
            f"{line.items:,}",
            f"[{style}]{line.status}[/{style}]" if style else line.status,
            f"{line.done:,}",
            f"{line.failed:,}",
            f"{line.credits.spent:,.1f}",
            f"{line.credits.saved_by_dedupe:,.1f}",
            f"{line.credits.saved_by_reuse:,.1f}",
            _age(line.created_at),
        )
    console.print(table)
