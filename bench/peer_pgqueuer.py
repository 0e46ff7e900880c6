"""The PgQueuer side of bench/peer_queue.py, and the sweep that picks its setting.

Entrypoints `noop_1..noop_5`, one job per item per step, in a database of its own on the same
server (`bench_peer_pgqueuer`, schema from `Queries(driver).install()`, PgQueuer's default
durable tables). Each job, when it runs, enqueues the item's next step's job through its
worker's `Queries` (the natural way to chain); the fifth only counts. The first `items` jobs
are enqueued in one batch `Queries.enqueue([...])` (timed separately, not counted).

Workers: `workers` processes (multiprocessing, spawned), each with one psycopg
`AsyncConnection` (autocommit, as `PsycopgDriver` requires) and its own `QueueManager`, running
`QueueManager.run(batch_size=...)` on uvloop, as `pgq run` does when uvloop is installed. Every
other knob is PgQueuer's default (see KNOBS). The workers connect and register first; timed is
from the signal that starts them until all `items x 5` jobs are processed. (1.6's
`PsycopgDriver` waits for notifications holding the connection's lock, for up to 1 s when none
comes, so a worker's queries can stall that long, as seen at a worker's start: measured as is.)

Completion is counted exactly and cheaply: the fifth step adds one to a shared counter (a
multiprocessing Value, no SQL) and the worker that brings it to `items` sets an Event the bench
process waits on; then the bench process polls `SELECT count(*) FROM pgqueuer_log WHERE status =
'successful'` (a handful of times) until it is `items x 5`: PgQueuer writes one such log row per
finished job, from each worker's buffered `log_jobs`, and never deletes it (aggregation into
`pgqueuer_statistics` only marks it). A run with any job logged 'exception' is an error.

CPU: the bench process, the server, and the worker processes (psutil, read while they live, at
the start and the end of the timed part). Commits: pg_stat_database of PgQueuer's database,
read after the workers are gone, from before the first enqueue.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from multiprocessing.context import SpawnProcess
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event, Semaphore
from typing import Any

import psycopg

from common import BenchServer, CpuMeter, admin_connection, checkpoint, log, scalar, transactions
from peer_shared import STEPS, commits_since, side_result

try:
    from pgqueuer.db import PsycopgDriver
    from pgqueuer.domain.settings import db_settings
    from pgqueuer.models import Job
    from pgqueuer.qm import QueueManager
    from pgqueuer.queries import Queries
except ImportError:  # the peer is a benchmark-only dependency
    sys.exit("bench/peer_queue.py needs the bench extra: .venv/bin/pip install -e '.[bench]'")

try:
    import uvloop
except ImportError:  # not on Windows
    uvloop = None  # type: ignore[assignment]

NAME = "pgqueuer"
DATABASE = "bench_peer_pgqueuer"
# What this benchmark leaves at PgQueuer 1.6's defaults (1.6 has no `retry_timer`: a stale
# job is re-picked after `heartbeat_timeout`).
KNOBS = {
    "dequeue_timeout": "30 s",
    "max_concurrent_tasks": "unlimited",
    "entrypoint concurrency_limit": "0 (unlimited)",
    "heartbeat_timeout": "30 s",
    "log_aggregation_interval": "30 s",
    "log buffer": "flush at batch_size entries or 0.1 s",
    "durability": "durable (all tables logged)",
    "event loop": "uvloop" if uvloop is not None else "asyncio",
}


@dataclass(frozen=True)
class Setting:
    workers: int
    batch_size: int

    def describe(self) -> str:
        return f"{self.workers} worker{'s' if self.workers > 1 else ''}, batch {self.batch_size}"


@dataclass
class _Signals:
    """Between the bench process and its workers (passed to each at spawn)."""

    ready: Semaphore
    go: Event
    stop: Event
    all_finished: Event
    finished: Synchronized[int]


# --------------------------------------------------------------------------- worker process


def _worker(conninfo: str, batch_size: int, items: int, signals: _Signals) -> None:
    work = _work(conninfo, batch_size, items, signals)
    if uvloop is not None:
        uvloop.run(work)
    else:
        asyncio.run(work)


async def _work(conninfo: str, batch_size: int, items: int, signals: _Signals) -> None:
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        queries = Queries(PsycopgDriver(conn))
        manager = QueueManager(queries)
        for index, name in enumerate(STEPS):
            manager.entrypoint(name)(_step(queries, index, items, signals))
        signals.ready.release()
        signals.go.wait()  # nothing else runs on this loop yet
        stopper = asyncio.create_task(_stop_when_told(signals.stop, manager))
        try:
            await manager.run(batch_size=batch_size)
        finally:
            stopper.cancel()


def _step(
    queries: Queries, index: int, items: int, signals: _Signals
) -> Callable[[Job], Awaitable[None]]:
    if index + 1 < len(STEPS):
        following = STEPS[index + 1]

        async def chain(job: Job) -> None:
            await queries.enqueue(following, job.payload)

        return chain

    async def last(job: Job) -> None:
        with signals.finished.get_lock():
            signals.finished.value += 1
            if signals.finished.value >= items:
                signals.all_finished.set()

    return last


async def _stop_when_told(stop: Event, manager: QueueManager) -> None:
    while not stop.is_set():
        await asyncio.sleep(0.05)
    manager.shutdown.set()


# --------------------------------------------------------------------------- bench process


def run(
    server: BenchServer, conninfo: str, setting: Setting, items: int, timeout: float
) -> dict[str, Any]:
    """One timed run; its result as `peer_shared.side_result` makes it, plus its setting."""
    reset(conninfo)
    context = multiprocessing.get_context("spawn")
    signals = _Signals(
        context.Semaphore(0), context.Event(), context.Event(), context.Event(),
        context.Value("q", 0),
    )  # fmt: skip
    procs = [
        context.Process(
            target=_worker, args=(conninfo, setting.batch_size, items, signals),
            name=f"pgqueuer-worker-{i}", daemon=True,
        )
        for i in range(setting.workers)
    ]  # fmt: skip
    for proc in procs:
        proc.start()
    try:
        _wait_ready(procs, signals.ready, timeout=120.0)
        before = transactions(conninfo)
        enqueue = asyncio.run(_enqueue_first(conninfo, items))
        checkpoint(conninfo)
        cpu = CpuMeter(
            server.postgres_pid, {f"worker {i}": p.pid or 0 for i, p in enumerate(procs)}
        )
        cpu.start()
        started = time.perf_counter()
        signals.go.set()
        _wait_processed(conninfo, procs, signals.all_finished, items, started + timeout)
        wall = time.perf_counter() - started
        cpu_used = _workers_summed(cpu.stop())
    finally:
        signals.stop.set()
        signals.go.set()
        _join(procs)
    # The initial enqueue is one of these commits; each worker statement is one (autocommit).
    commits = commits_since(conninfo, before)
    done = _logged(conninfo, "successful")
    failed = _logged(conninfo, "exception")
    if failed or done != items * len(STEPS):
        raise RuntimeError(f"pgqueuer: {done:,} jobs logged successful, {failed:,} exception")
    result = side_result(NAME, done, wall, commits, cpu_used)
    result.update(
        {"initial_enqueue_s": enqueue, "workers": setting.workers,
         "batch_size": setting.batch_size, "setting": setting.describe()}
    )  # fmt: skip
    return result


def _wait_ready(procs: Sequence[SpawnProcess], ready: Semaphore, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for _ in procs:
        while not ready.acquire(timeout=0.5):
            _check_alive(procs)
            if time.monotonic() > deadline:
                raise TimeoutError("pgqueuer workers did not start")


def _check_alive(procs: Sequence[SpawnProcess]) -> None:
    dead = [f"{p.name} (exit {p.exitcode})" for p in procs if not p.is_alive()]
    if dead:
        raise RuntimeError(f"pgqueuer worker process ended early: {', '.join(dead)}")


async def _enqueue_first(conninfo: str, items: int) -> float:
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        queries = Queries(PsycopgDriver(conn))
        started = time.perf_counter()
        await queries.enqueue(
            [STEPS[0]] * items, [str(i).encode() for i in range(items)], [0] * items
        )
        return time.perf_counter() - started


def _wait_processed(
    conninfo: str, procs: Sequence[SpawnProcess], all_finished: Event, items: int, deadline: float
) -> None:
    """Until the last step ran for every item, then until every job's 'successful' is logged."""
    while not all_finished.wait(0.5):
        _check_alive(procs)
        if time.perf_counter() > deadline:
            raise TimeoutError("pgqueuer: the last step did not run for every item in time")
    log_table = db_settings().qualified.queue_table_log
    count = f"SELECT count(*) FROM {log_table} WHERE status = 'successful'"
    with admin_connection(conninfo) as conn:
        while True:
            row = conn.execute(count.encode()).fetchone()
            if row is not None and int(row[0]) >= items * len(STEPS):
                return
            if time.perf_counter() > deadline:
                raise TimeoutError("pgqueuer: not every job was logged successful in time")
            time.sleep(0.01)


def _workers_summed(cpu: dict[str, float]) -> dict[str, float]:
    workers = [k for k in cpu if k.startswith("worker ")]
    out = {k: v for k, v in cpu.items() if k not in workers}
    out["worker processes cpu s"] = round(sum(cpu[k] for k in workers), 2)
    return out


def _join(procs: Sequence[SpawnProcess]) -> None:
    for proc in procs:
        proc.join(timeout=30)
        if proc.is_alive():
            log(f"  {proc.name} did not stop; terminating it")
            proc.terminate()
            proc.join(timeout=10)
        elif proc.exitcode:
            log(f"  {proc.name} exited with {proc.exitcode} after it was told to stop")


def _logged(conninfo: str, status: str) -> int:
    log_table = db_settings().qualified.queue_table_log
    query = f"SELECT count(*) FROM {log_table} WHERE status = %s"
    return int(scalar(conninfo, query, (status,)))


# --------------------------------------------------------------------------- sweep and set-up


def sweep(
    server: BenchServer, conninfo: str, settings: Sequence[Setting], items: int, timeout: float
) -> tuple[Setting, list[dict[str, Any]]]:
    """Each setting once on `items` items; the one with the most jobs per second wins."""
    if len(settings) == 1:
        log(f"pgqueuer: one setting ({settings[0].describe()}), no sweep")
        return settings[0], []
    results = []
    for number, setting in enumerate(settings, start=1):
        log(f"sweep {number}/{len(settings)}: pgqueuer, {setting.describe()}, {items:,} items")
        results.append(run(server, conninfo, setting, items, timeout))
    best = max(results, key=lambda r: float(r["item_steps_per_s"]))
    winner = Setting(int(best["workers"]), int(best["batch_size"]))
    log(f"sweep: best is {winner.describe()}: {best['item_steps_per_s']:,.0f} jobs/s")
    return winner, results


def install_schema(conninfo: str) -> str:
    """Install PgQueuer's schema (what `pgq install` does); returns its version."""

    async def apply() -> None:
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
            queries = Queries(PsycopgDriver(conn))
            if not await queries.schema_is_installed():
                await queries.install()

    asyncio.run(apply())
    return version("pgqueuer")


def reset(conninfo: str) -> None:
    """Empty the queue, its log and statistics (PgQueuer's own clear calls), and vacuum."""

    async def clear() -> None:
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
            queries = Queries(PsycopgDriver(conn))
            await queries.clear_queue()
            await queries.clear_queue_log()
            await queries.clear_statistics_log()

    asyncio.run(clear())
    with admin_connection(conninfo) as conn:
        conn.execute("VACUUM ANALYZE")
