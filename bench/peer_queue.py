"""Our orchestrator against a Postgres job queue (Procrastinate) on five no-op steps.

    python bench/peer_queue.py [--items 10000] [--repeat 2] [--concurrency 4] [--json]

The same work on the same PostgreSQL server: `--items` items through five steps that do
nothing but finish.

* ours: five internal workflows `noop_1..noop_5` (registry rows with provider 'internal', a
  play `bench-noop`), whose step function, added by this script to the runtime's step table,
  only completes its chunk of items (`orchestrator.engine.calls.complete_items`). The items
  come from an upload on that play (not timed); timed is `LocalRuntime.run_batch` from 10,000
  PENDING first steps to the pass that finds the batch done, with `dispatch_workers=--concurrency`.
* peer: Procrastinate (async tasks `noop_1..noop_5`, one job per item per step; each job, when
  it runs, defers the item's next step's job: the queue's natural way to chain), in a database
  of its own on the same server, a worker with `concurrency=--concurrency` and a pool of the
  same size as ours (`pool_max_size`). The 10,000 first jobs are deferred in one
  `batch_defer_async` (timed separately, not counted); timed is the worker from its start until
  every job has succeeded.

Both run in this process, alternating, `--repeat` times each; the best of each is reported.
Transactions are pg_stat_database.xact_commit of each side's database, read after its pool is
closed (closing flushes the backends' statistics), so they cover the run (and a few set-up
statements).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from rich.console import Console

from common import (
    BenchServer,
    CpuMeter,
    Runs,
    StatementsByThread,
    admin_connection,
    bench_parser,
    bench_server,
    checkpoint,
    delete_batch,
    fmt,
    log,
    machine_state,
    parse_counts,
    run_benchmark,
    scalar,
    source_fingerprint,
    table,
    transactions,
    upload_file,
    write_sample,
)
from orchestrator.engine.calls import complete_items
from orchestrator.engine.context import StepContext
from orchestrator.engine.dispatch import StepCall
from orchestrator.runtimes.local import LocalRuntime
from orchestrator.settings import Settings
from orchestrator.state.registry import WorkflowConfig
from orchestrator.steps.table import step_table

try:
    import procrastinate
except ImportError:  # the peer is a benchmark-only dependency
    sys.exit("bench/peer_queue.py needs the bench extra: .venv/bin/pip install -e '.[bench]'")

STEPS = tuple(f"noop_{i}" for i in range(1, 6))
PLAY = "bench-noop"
PEER_DATABASE = "bench_peer_queue"
QUEUE = "bench"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__, "runs per side; best is reported")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument(
        "--concurrency", type=int, default=4, help="peer worker concurrency = our dispatch_workers"
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    return parse_counts(parser, argv, "items", "concurrency")


# --------------------------------------------------------------------------- ours


class CallCount:
    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.value += 1


STEP_CALLS = CallCount()


def noop_step(ctx: StepContext, workflow: WorkflowConfig, call: StepCall) -> None:
    """Does nothing but finish: completes the chunk's item-steps."""
    STEP_CALLS.add()
    complete_items(ctx, call.step_name, list(call.item_ids))


NOOP_STEPS = step_table().with_internal(dict.fromkeys(STEPS, noop_step))


def add_noop_play(conninfo: str) -> None:
    with admin_connection(conninfo) as conn, conn.transaction():
        for number, slug in enumerate(STEPS, start=1):
            conn.execute(
                "INSERT INTO db_driven_enrichment_workflows (workflow_slug, title,"
                " overall_step_number, provider, entity_type, timeout_seconds, max_attempts)"
                " VALUES (%s, %s, %s, 'internal', 'item', 600, 3)"
                " ON CONFLICT (workflow_slug) DO NOTHING",
                (slug, f"No-op step {number} (benchmark)", 900 + number),
            )
            conn.execute(
                "INSERT INTO play_steps (play_name, step_number, workflow_slug)"
                " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (PLAY, number, slug),
            )


def run_ours(server: BenchServer, settings: Settings, path: Path, timeout: float) -> dict[str, Any]:
    with server.open(settings) as dbs:
        batch_id = upload_file(dbs, path, PLAY).batch_id
    checkpoint(server.conninfo)
    before = transactions(server.conninfo)
    statements, calls = StatementsByThread(), STEP_CALLS.value
    with server.open(settings) as dbs, LocalRuntime(settings, dbs, steps=NOOP_STEPS) as runtime:
        cpu = CpuMeter(server.postgres_pid).start()
        with statements.measure():
            started = time.perf_counter()
            progress = runtime.run_batch(batch_id, timeout=timeout)
            wall = time.perf_counter() - started
        cpu_used = cpu.stop()
        passes, calls = runtime.trigger.passes, STEP_CALLS.value - calls
    assert progress.done, f"batch {batch_id} is not done"
    done = _completed_item_steps(server.conninfo, batch_id)
    result = _side_result("ours", done, wall, transactions(server.conninfo) - before, cpu_used)
    result.update(
        {"passes": passes, "step_calls": calls, "statements": dict(statements.counts),
         "statements_per_item_step": statements.total / max(done, 1)}
    )  # fmt: skip
    delete_batch(server.conninfo, batch_id)
    return result


def _completed_item_steps(conninfo: str, batch_id: UUID) -> int:
    return int(
        scalar(
            conninfo,
            "SELECT count(*) FROM workflow_states WHERE batch_id = %s AND status = 'COMPLETED'",
            (batch_id,),
        )
    )


def _side_result(
    side: str, done: int, wall: float, xacts: int, cpu: dict[str, float]
) -> dict[str, Any]:
    log(f"  {side}: {done:,} item-steps in {wall:.2f}s = {done / wall:,.0f}/s, {xacts:,} commits")
    return {
        "side": side,
        "item_steps": done,
        "wall_s": wall,
        "item_steps_per_s": done / wall,
        "transactions": xacts,
        "transactions_per_item_step": xacts / max(done, 1),
        "cpu": cpu,
    }


# --------------------------------------------------------------------------- peer


@dataclass
class Peer:
    app: procrastinate.App
    tasks: list[Any] = field(default_factory=list)
    finished: int = 0
    all_finished: asyncio.Event = field(default_factory=asyncio.Event)
    items: int = 0


def build_peer(conninfo: str, pool_size: int, items: int) -> Peer:
    connector = procrastinate.PsycopgConnector(conninfo=conninfo, min_size=1, max_size=pool_size)
    peer = Peer(procrastinate.App(connector=connector), items=items)
    for index, name in enumerate(STEPS):
        peer.tasks.append(peer.app.task(name=name, queue=QUEUE)(_peer_step(peer, index)))
    return peer


def _peer_step(peer: Peer, index: int) -> Any:
    async def step(item: int) -> None:
        if index + 1 < len(peer.tasks):
            await peer.tasks[index + 1].defer_async(item=item)
            return
        peer.finished += 1
        if peer.finished >= peer.items:
            peer.all_finished.set()

    step.__name__ = STEPS[index]
    return step


async def _wait_all_succeeded(conninfo: str, expected: int) -> None:
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        while True:
            cur = await conn.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
            )
            row = await cur.fetchone()
            if row is not None and int(row[0]) >= expected:
                return
            await asyncio.sleep(0.01)


async def _peer_run(peer: Peer, conninfo: str, concurrency: int, timeout: float) -> float:
    """Run the worker until every job succeeded; returns the seconds from its start."""
    started = time.perf_counter()
    worker = asyncio.create_task(
        peer.app.run_worker_async(
            queues=[QUEUE], concurrency=concurrency, wait=True, install_signal_handlers=False,
            listen_notify=True, delete_jobs="never",
        )
    )  # fmt: skip
    await asyncio.wait_for(peer.all_finished.wait(), timeout)
    await _wait_all_succeeded(conninfo, peer.items * len(STEPS))
    wall = time.perf_counter() - started
    worker.cancel()
    await asyncio.gather(worker, return_exceptions=True)
    return wall


async def _peer_once(
    conninfo: str, args: argparse.Namespace, pool_size: int, cpu: CpuMeter
) -> tuple[float, float, dict[str, float]]:
    peer = build_peer(conninfo, pool_size, args.items)
    async with peer.app.open_async():
        started = time.perf_counter()
        await peer.tasks[0].batch_defer_async(*({"item": i} for i in range(args.items)))
        enqueue = time.perf_counter() - started
        checkpoint(conninfo)
        cpu.start()
        wall = await _peer_run(peer, conninfo, args.concurrency, args.timeout)
        return wall, enqueue, cpu.stop()


def run_peer(
    server: BenchServer, conninfo: str, args: argparse.Namespace, pool_size: int
) -> dict[str, Any]:
    reset_peer(conninfo)
    before = transactions(conninfo)
    cpu = CpuMeter(server.postgres_pid)
    wall, enqueue, cpu_used = asyncio.run(_peer_once(conninfo, args, pool_size, cpu))
    done = int(
        scalar(conninfo, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'")
    )
    # The initial batch_defer is one of these commits (and a few worker bookkeeping ones).
    result = _side_result("peer", done, wall, transactions(conninfo) - before, cpu_used)
    result.update({"initial_enqueue_s": enqueue, "concurrency": args.concurrency})
    return result


def install_peer_schema(conninfo: str) -> str:
    async def apply() -> None:
        connector = procrastinate.PsycopgConnector(conninfo=conninfo)
        async with procrastinate.App(connector=connector).open_async() as app:
            await app.schema_manager.apply_schema_async()

    asyncio.run(apply())
    return str(procrastinate.__version__)


def reset_peer(conninfo: str) -> None:
    with admin_connection(conninfo) as conn:
        conn.execute("TRUNCATE procrastinate_jobs, procrastinate_events RESTART IDENTITY CASCADE")
        conn.execute("VACUUM ANALYZE")


# --------------------------------------------------------------------------- main flow


def measure(server: BenchServer, args: argparse.Namespace, path: Path) -> dict[str, Any]:
    # Its warning that the App lives in __main__ does not apply to a one-process benchmark.
    logging.getLogger("procrastinate").setLevel(logging.ERROR)
    settings = server.settings(dispatch_workers=args.concurrency)
    add_noop_play(server.conninfo)
    peer_conninfo = server.database_conninfo(PEER_DATABASE)
    try:
        version = install_peer_schema(peer_conninfo)
        log(f"procrastinate {version} schema in database {PEER_DATABASE} on the same server")
        runs = {"ours": Runs("item_steps_per_s"), "peer": Runs("item_steps_per_s")}
        for i in range(args.repeat):
            log(f"run {i + 1}/{args.repeat}: ours")
            runs["ours"].runs.append(run_ours(server, settings, path, args.timeout))
            log(f"run {i + 1}/{args.repeat}: peer (procrastinate)")
            runs["peer"].runs.append(run_peer(server, peer_conninfo, args, settings.pool_max_size))
    finally:
        server.drop_database(PEER_DATABASE)
    return {"runs": runs, "settings": settings, "procrastinate": version}


def benchmark(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    source = source_fingerprint()
    before = machine_state()
    log(f"machine: {before.describe()}")
    path = tmp / "apollo.csv"
    write_sample(path, args.items, max(1, args.items // 5), duplicate_fraction=0.0)
    with bench_server("peer-queue") as server:
        measured = measure(server, args, path)
        server_json = server.to_json()
    after = machine_state()
    runs: dict[str, Runs] = measured["runs"]
    best = {k: r.best for k, r in runs.items()}
    settings: Settings = measured["settings"]
    return {
        "benchmark": "peer_queue",
        "items": args.items,
        "steps": len(STEPS),
        "item_steps": args.items * len(STEPS),
        "server": server_json,
        "procrastinate": measured["procrastinate"],
        "concurrency": args.concurrency,
        "settings": {
            "dispatch_workers": settings.dispatch_workers,
            "pool_max_size": settings.pool_max_size,
            "peer_pool_max_size": settings.pool_max_size,
        },
        "repeat": args.repeat,
        "source": source,
        "machine_before": before.describe(),
        "machine_after": after.describe(),
        "best": best,
        "ratio_ours_over_peer": best["ours"]["item_steps_per_s"] / best["peer"]["item_steps_per_s"],
        "runs": {k: r.runs for k, r in runs.items()},
    }


# --------------------------------------------------------------------------- report


def render(console: Console, report: dict[str, Any]) -> None:
    console.print(
        f"[bold]Peer queue[/]: {report['items']:,} items x {report['steps']} no-op steps ="
        f" {report['item_steps']:,} item-steps; ours: LocalRuntime, dispatch_workers="
        f"{report['settings']['dispatch_workers']}, pool {report['settings']['pool_max_size']};"
        f" peer: Procrastinate {report['procrastinate']}, worker concurrency="
        f"{report['concurrency']}, pool {report['settings']['peer_pool_max_size']};"
        f" best of {report['repeat']}"
    )
    console.print(f"[bold]Server[/]: {report['server']['kind']}: {report['server']['version']}")
    console.print(f"[bold]Source[/]: {report['source']}")
    console.print(f"[bold]Machine before[/]: {report['machine_before']}")
    console.print(f"[bold]Machine after[/]:  {report['machine_after']}")
    lines = [
        (r["side"], fmt(r["wall_s"], 2), f"{r['item_steps']:,}", fmt(r["item_steps_per_s"], 0),
         fmt(r["transactions_per_item_step"], 3))
        for side in ("ours", "peer")
        for r in report["runs"][side]
    ]  # fmt: skip
    columns = ("run", "wall s", "item-steps", "item-steps/s", "commits/item-step")
    console.print(table("Every run", columns, lines))
    console.print(_best_table(report))


def _best_table(report: dict[str, Any]) -> Any:
    ours, peer = report["best"]["ours"], report["best"]["peer"]

    def both(name: str, key: str, digits: int) -> tuple[str, str, str]:
        return name, fmt(ours[key], digits), fmt(peer[key], digits)

    cpu_keys = [k for k in ours["cpu"] if k.endswith(" cpu s")]
    cpu = [
        (f"CPU s: {k.removesuffix(' cpu s')}", fmt(ours["cpu"][k], 1), fmt(peer["cpu"][k], 1))
        for k in cpu_keys
    ]
    lines = [
        both("item-steps per second", "item_steps_per_s", 0),
        both("wall seconds", "wall_s", 2),
        both("item-steps done", "item_steps", 0),
        both("commits (pg_stat_database)", "transactions", 0),
        both("commits per item-step", "transactions_per_item_step", 3),
        ("SQL statements per item-step", fmt(ours["statements_per_item_step"], 3), "-"),
        ("orchestrator passes / step calls", f"{ours['passes']} / {ours['step_calls']}", "-"),
        ("first jobs deferred, s (not timed)", "(upload)", fmt(peer["initial_enqueue_s"], 2)),
        *cpu,
        ("ours / peer throughput", fmt(report["ratio_ours_over_peer"], 2), ""),
    ]
    return table("Best run", ("metric", "ours (orchestrator)", "peer (Procrastinate)"), lines)


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark("peer", parse_args(argv), benchmark, render)


if __name__ == "__main__":
    sys.exit(main())
