"""The Procrastinate side of bench/peer_queue.py.

Async tasks `noop_1..noop_5`, one job per item per step; each job, when it runs, defers the
item's next step's job (the queue's natural way to chain). In a database of its own on the same
server, one worker in this process with `concurrency=--concurrency` and a pool of the same size
as ours (`pool_max_size`). The first `--items` jobs are deferred in one `batch_defer_async`
(timed separately, not counted); timed is the worker from its start until every job has
succeeded: the last step counts in this process, then `procrastinate_jobs` is polled until all
`items x 5` rows are 'succeeded'.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

from common import BenchServer, CpuMeter, admin_connection, checkpoint, scalar, transactions
from peer_shared import STEPS, commits_since, side_result

try:
    import procrastinate
except ImportError:  # the peer is a benchmark-only dependency
    sys.exit("bench/peer_queue.py needs the bench extra: .venv/bin/pip install -e '.[bench]'")

NAME = "procrastinate"
DATABASE = "bench_peer_queue"
QUEUE = "bench"


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
    conninfo: str, items: int, concurrency: int, timeout: float, pool_size: int, cpu: CpuMeter
) -> tuple[float, float, dict[str, float]]:
    peer = build_peer(conninfo, pool_size, items)
    async with peer.app.open_async():
        started = time.perf_counter()
        await peer.tasks[0].batch_defer_async(*({"item": i} for i in range(items)))
        enqueue = time.perf_counter() - started
        checkpoint(conninfo)
        cpu.start()
        wall = await _peer_run(peer, conninfo, concurrency, timeout)
        return wall, enqueue, cpu.stop()


def run(
    server: BenchServer, conninfo: str, items: int, concurrency: int, pool_size: int,
    timeout: float,
) -> dict[str, Any]:  # fmt: skip
    """One timed run; its result as `peer_shared.side_result` makes it, plus its settings."""
    reset(conninfo)
    before = transactions(conninfo)
    cpu = CpuMeter(server.postgres_pid)
    wall, enqueue, cpu_used = asyncio.run(
        _peer_once(conninfo, items, concurrency, timeout, pool_size, cpu)
    )
    # The initial batch_defer is one of these commits (and a few worker bookkeeping ones).
    commits = commits_since(conninfo, before)
    done = int(
        scalar(conninfo, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'")
    )
    result = side_result(NAME, done, wall, commits, cpu_used)
    result.update(
        {"initial_enqueue_s": enqueue, "concurrency": concurrency, "pool_max_size": pool_size}
    )
    return result


def install_schema(conninfo: str) -> str:
    """Apply Procrastinate's schema; returns its version."""
    # Its warning that the App lives in __main__ does not apply to a one-process benchmark.
    logging.getLogger("procrastinate").setLevel(logging.ERROR)

    async def apply() -> None:
        connector = procrastinate.PsycopgConnector(conninfo=conninfo)
        async with procrastinate.App(connector=connector).open_async() as app:
            await app.schema_manager.apply_schema_async()

    asyncio.run(apply())
    return str(procrastinate.__version__)


def reset(conninfo: str) -> None:
    with admin_connection(conninfo) as conn:
        conn.execute("TRUNCATE procrastinate_jobs, procrastinate_events RESTART IDENTITY CASCADE")
        conn.execute("VACUUM ANALYZE")
