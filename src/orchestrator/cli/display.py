"""Terminal output: live per-step progress bars and the end-of-run summary."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

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
                task = self.progress.add_task(step.step_name, total=expected, failed=0)
                self._tasks[step.step_name] = task
            done = step.counts["FAILED"]
            self.progress.update(task, total=expected, completed=step.finished, failed=done)
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
    for key, value in summary.extra.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        rows.append((key.replace("_", " "), value))
    for key, value in rows:
        table.add_row(key, str(value))
    console.print(table)
    if summary.top_failure_reasons:
        console.print("[bold]Top failure reasons[/bold]")
        for reason in summary.top_failure_reasons:
            console.print(f"  {reason.items:>6}  {reason.step}: {reason.reason}")
