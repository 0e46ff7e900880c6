"""Our orchestrator against Postgres job queues (PgQueuer, Procrastinate) on five no-op steps.

    python bench/peer_queue.py [--items 10000] [--repeat 2] [--concurrency 4] [--json]
        [--peers pgqueuer,procrastinate] [--pgqueuer-workers 1,2,4]
        [--pgqueuer-batch 10,50,200] [--sweep-items 2000]

The same work on the same PostgreSQL server: `--items` items through five steps that do
nothing but finish.

* ours: five internal workflows `noop_1..noop_5` (registry rows with provider 'internal', a
  play `bench-noop`), whose step function, added by this script to the runtime's step table,
  only completes its chunk of items (`orchestrator.engine.calls.complete_items`). The items
  come from an upload on that play (not timed); timed is `LocalRuntime.run_batch` from 10,000
  PENDING first steps to the pass that finds the batch done, with `dispatch_workers=--concurrency`.
* procrastinate (bench/peer_procrastinate.py): async tasks `noop_1..noop_5`, one job per item
  per step, each job deferring the item's next step's job, in a database of its own; one worker
  in this process, `concurrency=--concurrency`, a pool the size of ours.
* pgqueuer (bench/peer_pgqueuer.py): entrypoints `noop_1..noop_5`, one job per item per step,
  each job enqueueing the item's next step's job, in a database of its own; W worker processes,
  each a QueueManager on its own psycopg connection, run with batch size B. W and B come from
  a sweep first: every `--pgqueuer-workers` x `--pgqueuer-batch` setting once on
  `--sweep-items` items; the one with the most jobs per second runs the comparison.

A peer's first `--items` jobs are enqueued in one batch (timed separately, not counted); timed
is from its workers' start until all items x 5 jobs are done. Ours and the peers run
alternating, `--repeat` times each; the best of each is reported, with ours / peer. Commits are
pg_stat_database.xact_commit of each side's database, read after its connections are closed
(closing flushes the backends' statistics), so they cover the run (and a few set-up statements).
CPU seconds: this process, the embedded server's processes, and PgQueuer's worker processes.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import peer_pgqueuer
import peer_procrastinate
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
    log,
    machine_state,
    parse_counts,
    run_benchmark,
    scalar,
    source_fingerprint,
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
from peer_pgqueuer import Setting
from peer_report import render
from peer_shared import STEPS, side_result

PLAY = "bench-noop"
PEERS = (peer_pgqueuer.NAME, peer_procrastinate.NAME)
DATABASES = {peer_pgqueuer.NAME: peer_pgqueuer.DATABASE,
             peer_procrastinate.NAME: peer_procrastinate.DATABASE}  # fmt: skip


def _positive_ints(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"needs integers of at least 1: {text!r}")
    return values


def _peers(text: str) -> list[str]:
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = sorted(set(names) - set(PEERS))
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"peers are {', '.join(PEERS)}; not {unknown or text!r}")
    return list(dict.fromkeys(names))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__, "runs per side; best is reported")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument(
        "--concurrency", type=int, default=4,
        help="Procrastinate's worker concurrency = our dispatch_workers",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    parser.add_argument("--peers", type=_peers, default=list(PEERS), help="comma-separated")
    parser.add_argument(
        "--pgqueuer-workers", type=_positive_ints, default=[1, 2, 4],
        help="worker processes to sweep (comma-separated)",
    )  # fmt: skip
    parser.add_argument(
        "--pgqueuer-batch", type=_positive_ints, default=[10, 50, 200],
        help="QueueManager.run batch sizes to sweep (comma-separated)",
    )  # fmt: skip
    parser.add_argument(
        "--sweep-items", type=int, default=2000, help="items per PgQueuer sweep run"
    )
    return parse_counts(parser, argv, "items", "concurrency", "sweep_items")


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
    result = side_result("ours", done, wall, transactions(server.conninfo) - before, cpu_used)
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


# --------------------------------------------------------------------------- main flow


def run_peer(
    peer: str, server: BenchServer, conninfo: str, args: argparse.Namespace, pool_size: int,
    setting: Setting | None,
) -> dict[str, Any]:  # fmt: skip
    if peer == peer_pgqueuer.NAME:
        assert setting is not None
        return peer_pgqueuer.run(server, conninfo, setting, args.items, args.timeout)
    return peer_procrastinate.run(
        server, conninfo, args.items, args.concurrency, pool_size, args.timeout
    )


def install_peer(peer: str, conninfo: str) -> str:
    """Install a peer's schema in its database; returns the peer's version."""
    if peer == peer_pgqueuer.NAME:
        return peer_pgqueuer.install_schema(conninfo)
    return peer_procrastinate.install_schema(conninfo)


def measure(server: BenchServer, args: argparse.Namespace, path: Path) -> dict[str, Any]:
    settings = server.settings(dispatch_workers=args.concurrency)
    add_noop_play(server.conninfo)
    conninfo = {peer: server.database_conninfo(DATABASES[peer]) for peer in args.peers}
    setting: Setting | None = None
    sweep: list[dict[str, Any]] = []
    try:
        versions = {peer: install_peer(peer, conninfo[peer]) for peer in args.peers}
        for peer, version in versions.items():
            log(f"{peer} {version} schema in database {DATABASES[peer]} on the same server")
        if peer_pgqueuer.NAME in args.peers:
            log(f"pgqueuer knobs left at their defaults: {peer_pgqueuer.KNOBS}")
            grid = [Setting(w, b) for w in args.pgqueuer_workers for b in args.pgqueuer_batch]
            setting, sweep = peer_pgqueuer.sweep(
                server, conninfo[peer_pgqueuer.NAME], grid, args.sweep_items, args.timeout
            )
        runs = {side: Runs("item_steps_per_s") for side in ("ours", *args.peers)}
        for i in range(args.repeat):
            log(f"run {i + 1}/{args.repeat}: ours")
            runs["ours"].runs.append(run_ours(server, settings, path, args.timeout))
            for peer in args.peers:
                log(f"run {i + 1}/{args.repeat}: {peer}")
                runs[peer].runs.append(
                    run_peer(peer, server, conninfo[peer], args, settings.pool_max_size, setting)
                )
    finally:
        for peer in args.peers:
            server.drop_database(DATABASES[peer])
    return {"runs": runs, "settings": settings, "versions": versions, "setting": setting,
            "sweep": sweep}  # fmt: skip


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
    setting: Setting | None = measured["setting"]
    ours = best["ours"]["item_steps_per_s"]
    procrastinate = None
    if peer_procrastinate.NAME in args.peers:
        procrastinate = {"concurrency": args.concurrency, "pool_max_size": settings.pool_max_size}
    pgqueuer = None
    if setting is not None:
        pgqueuer = {"workers": setting.workers, "batch_size": setting.batch_size,
                    "defaults": peer_pgqueuer.KNOBS}  # fmt: skip
    return {
        "benchmark": "peer_queue",
        "items": args.items,
        "steps": len(STEPS),
        "item_steps": args.items * len(STEPS),
        "server": server_json,
        "peers": args.peers,
        "versions": measured["versions"],
        "concurrency": args.concurrency,
        "settings": {
            "dispatch_workers": settings.dispatch_workers,
            "pool_max_size": settings.pool_max_size,
            "procrastinate": procrastinate,
            "pgqueuer": pgqueuer,
        },
        "pgqueuer_sweep": {
            "items": args.sweep_items,
            "workers": args.pgqueuer_workers,
            "batch_sizes": args.pgqueuer_batch,
            "runs": measured["sweep"],
            "best": setting.describe() if setting else None,
        },
        "repeat": args.repeat,
        "source": source,
        "machine_before": before.describe(),
        "machine_after": after.describe(),
        "best": best,
        "ratio_ours_over_peer": {p: ours / best[p]["item_steps_per_s"] for p in args.peers},
        "runs": {k: r.runs for k, r in runs.items()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark("peer", parse_args(argv), benchmark, render)


if __name__ == "__main__":
    sys.exit(main())
