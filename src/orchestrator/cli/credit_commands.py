"""`enrich estimate`: what a file will cost before anything is sent."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.cli.batch_commands import ClientOpt, FileArg, PlayOpt, ReuseOpt
from orchestrator.cli.errors import fail
from orchestrator.db.pool import open_databases
from orchestrator.settings import get_settings
from orchestrator.state.registry import DEFAULT_PLAY
from orchestrator.upload.csv_reader import UploadError
from orchestrator.upload.forecast import Forecast, forecast_file

console = Console(soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the forecast as JSON.")]


def estimate(
    file: FileArg,
    client: ClientOpt = "default",
    play: PlayOpt = DEFAULT_PLAY,
    reuse: ReuseOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Forecast what a CSV will cost (calls, Actions, data credits, Clay time); stores nothing."""
    rate = get_settings().clay_rate_per_second
    with open_databases() as dbs:
        try:
            with file.open("rb") as fh:
                forecast = forecast_file(
                    dbs,
                    fh,
                    client_name=client,
                    play_name=play,
                    reuse=reuse,
                    file_name=file.name,
                    clay_rate_per_second=rate,
                )
        except UploadError as exc:
            fail(f"{file.name}: {exc}; no estimate was made (and nothing stored)")
    if as_json:
        typer.echo(json.dumps(forecast.as_json()))
        return
    print_forecast(console, forecast)


def print_forecast(out: Console, forecast: Forecast) -> None:
    table = Table(
        title=f"Forecast for {forecast.file_name} (client {forecast.client_name},"
        f" play {forecast.play_name})",
        show_header=False,
    )
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column(style="dim")
    table.add_row("rows", f"{forecast.rows:,}", _invalid(forecast))
    table.add_row("valid items", f"{forecast.items:,}", "")
    table.add_row("unique companies", f"{forecast.companies:,}", "")
    table.add_row("unique people", f"{forecast.people:,}", "")
    reuse_note = "the client's fresh results" if forecast.reuse else "off (--no-reuse)"
    table.add_row("reusable", f"{forecast.reusable:,}", reuse_note)
    table.add_section()
    for step in forecast.steps:
        table.add_row(
            f"step {step.step_number}: {step.entity_type} credits",
            _credits(step.credits_expected),
            f"{step.workflow_slug}\n{step.calls:,} calls{_reused(step.reusable)} ·"
            f" {_split(step.actions_expected, step.data_credits_expected)}",
        )
    table.add_section()
    table.add_row(
        "credits expected",
        _credits(forecast.credits_expected),
        _split(forecast.actions_expected, forecast.data_credits_expected),
    )
    table.add_row("saved by dedupe", _credits(forecast.saved_by_dedupe), "")
    table.add_row("saved by reuse", _credits(forecast.saved_by_reuse), "")
    table.add_row(
        "Clay time",
        _duration(forecast.clay_seconds),
        f"{forecast.clay_calls:,} calls at {forecast.clay_rate_per_second:g} rows/s"
        if forecast.paced
        else f"{forecast.clay_calls:,} calls, unpaced",
    )
    out.print(table)
    out.print(
        "[dim]Credits expected are a ceiling: every priced data type found. An answer without"
        " one costs less. Nothing was stored.[/dim]"
    )


def _invalid(forecast: Forecast) -> str:
    if not forecast.invalid_rows:
        return ""
    reasons = ", ".join(f"{n:,} {reason}" for reason, n in forecast.invalid.items())
    return f"{forecast.invalid_rows:,} will not be enriched: {reasons}"


def _reused(entities: int) -> str:
    return f" ({entities:,} reused)" if entities else ""


def _credits(value: Decimal) -> str:
    return f"{value:,.2f}".removesuffix(".00")


def _split(actions: Decimal, data_credits: Decimal) -> str:
    return f"{_credits(actions)} Actions · {_credits(data_credits)} data credits"


def _duration(seconds: float) -> str:
    """2 h 5 min, 3 min 20 s, 45 s: the two largest units (as the dashboard shows times,
    whose helper lives in `web`, out of the command's reach)."""
    # A part of a second still takes that second.
    left = math.ceil(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if left >= size or (unit == "s" and not parts):
            parts.append(f"{left // size} {unit}")
            left %= size
    return " ".join(parts[:2])
