"""The report of bench/peer_queue.py: the sweep, every run, and the best run of each side."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console

import peer_pgqueuer
import peer_procrastinate
from common import fmt, table
from peer_shared import STEPS

TITLES = {"ours": "ours (orchestrator)", peer_pgqueuer.NAME: "PgQueuer",
          peer_procrastinate.NAME: "Procrastinate"}  # fmt: skip


def cpu_total(cpu: dict[str, float]) -> float:
    """CPU seconds of every process measured (the meter's keys ending in ' cpu s')."""
    return sum(v for k, v in cpu.items() if k.endswith(" cpu s"))


def _setting_text(report: dict[str, Any], side: str) -> str:
    settings = report["settings"]
    if side == peer_pgqueuer.NAME:
        knobs = settings["pgqueuer"]
        return f"{knobs['workers']} processes, batch {knobs['batch_size']}"
    if side == peer_procrastinate.NAME:
        return f"concurrency {report['concurrency']}, pool {settings['pool_max_size']}"
    return f"dispatch_workers {settings['dispatch_workers']}, pool {settings['pool_max_size']}"


def render(console: Console, report: dict[str, Any]) -> None:
    sides = ["ours", *report["peers"]]
    versions = report["versions"]
    described = "; ".join(
        f"{TITLES[side]}{' ' + versions[side] if side in versions else ''}:"
        f" {_setting_text(report, side)}"
        for side in sides
    )
    console.print(
        f"[bold]Peer queue[/]: {report['items']:,} items x {report['steps']} no-op steps ="
        f" {report['item_steps']:,} item-steps; {described}; best of {report['repeat']}"
    )
    if report["settings"]["pgqueuer"]:
        knobs = ", ".join(f"{k} {v}" for k, v in report["settings"]["pgqueuer"]["defaults"].items())
        console.print(f"[bold]PgQueuer defaults kept[/]: {knobs}")
    console.print(f"[bold]Server[/]: {report['server']['kind']}: {report['server']['version']}")
    console.print(f"[bold]Source[/]: {report['source']}")
    console.print(f"[bold]Machine before[/]: {report['machine_before']}")
    console.print(f"[bold]Machine after[/]:  {report['machine_after']}")
    sweep = report["pgqueuer_sweep"]
    if sweep["runs"]:
        console.print(_sweep_table(sweep))
        won = max(sweep["runs"], key=lambda r: float(r["item_steps_per_s"]))
        console.print(
            f"[bold]Sweep winner[/]: {won['setting']}, {won['item_steps_per_s']:,.0f} jobs/s"
        )
    lines = [
        (r["side"], fmt(r["wall_s"], 2), f"{r['item_steps']:,}", fmt(r["item_steps_per_s"], 0),
         fmt(r["transactions_per_item_step"], 3))
        for side in sides
        for r in report["runs"][side]
    ]  # fmt: skip
    columns = ("run", "wall s", "item-steps", "item-steps/s", "commits/item-step")
    console.print(table("Every run", columns, lines))
    console.print(_best_table(report, sides))


def _sweep_table(sweep: dict[str, Any]) -> Any:
    lines = [
        (r["setting"] + ("  (best)" if r["setting"] == sweep["best"] else ""),
         fmt(r["wall_s"], 2), fmt(r["item_steps_per_s"], 0),
         fmt(r["transactions_per_item_step"], 3), fmt(cpu_total(r["cpu"]), 1))
        for r in sweep["runs"]
    ]  # fmt: skip
    title = f"PgQueuer sweep: {sweep['items']:,} items x {len(STEPS)} steps, each setting once"
    return table(title, ("setting", "wall s", "jobs/s", "commits/job", "CPU s (all)"), lines)


def _best_table(report: dict[str, Any], sides: Sequence[str]) -> Any:
    best = [report["best"][side] for side in sides]

    def row(name: str, key: str, digits: int) -> tuple[str, ...]:
        return (name, *(fmt(r[key], digits) for r in best))

    def ours_only(name: str, value: str) -> tuple[str, ...]:
        return (name, value, *("-" for _ in sides[1:]))

    keys = list(dict.fromkeys(k for r in best for k in r["cpu"] if k.endswith(" cpu s")))
    cpu = [
        (f"CPU s: {k.removesuffix(' cpu s')}", *(fmt(r["cpu"][k], 1) if k in r["cpu"] else "-"
                                                 for r in best))
        for k in keys
    ]  # fmt: skip
    cpu.append(("CPU s: all measured", *(fmt(cpu_total(r["cpu"]), 1) for r in best)))
    ours = best[0]
    lines = [
        row("item-steps per second", "item_steps_per_s", 0),
        row("wall seconds", "wall_s", 2),
        row("item-steps done", "item_steps", 0),
        row("commits (pg_stat_database)", "transactions", 0),
        row("commits per item-step", "transactions_per_item_step", 3),
        ours_only("SQL statements / item-step", fmt(ours["statements_per_item_step"], 3)),
        ours_only("passes / step calls", f"{ours['passes']} / {ours['step_calls']}"),
        ("first jobs enqueued s (untimed)", "(upload)",
         *(fmt(r["initial_enqueue_s"], 2) for r in best[1:])),
        ("setting", *(_setting_text(report, side) for side in sides)),
        *cpu,
        ("ours / peer throughput", "",
         *(fmt(report["ratio_ours_over_peer"][side], 2) for side in sides[1:])),
    ]  # fmt: skip
    return table("Best run", ("metric", *(TITLES[side] for side in sides)), lines)
