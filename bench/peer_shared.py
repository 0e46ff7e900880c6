"""What bench/peer_queue.py's sides share: the five steps, a side's result, its commits.

`bench/peer_queue.py` (ours), `bench/peer_procrastinate.py` and `bench/peer_pgqueuer.py` import
this module; like `common.py` it is found on `sys.path` because the script runs from `bench/`.
"""

from __future__ import annotations

import time
from typing import Any

from common import admin_connection, log, transactions

STEPS = tuple(f"noop_{i}" for i in range(1, 6))


def side_result(
    side: str, done: int, wall: float, xacts: int, cpu: dict[str, float]
) -> dict[str, Any]:
    """One timed run of one side, logged as it ends."""
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


def commits_since(conninfo: str, before: int, timeout: float = 30.0) -> int:
    """pg_stat_database.xact_commit of conninfo's database now, minus `before`.

    Read once the side's connections are gone: a backend flushes its statistics as it exits,
    which can be a moment after the client closed the connection, so this first waits until
    no other backend is connected to that database.
    """
    deadline = time.monotonic() + timeout
    with admin_connection(conninfo) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
            if row is None or int(row[0]) == 0:
                break
            time.sleep(0.05)
    return transactions(conninfo) - before
