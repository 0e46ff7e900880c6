"""Runners: the processes that claim work, and which of them are dead.

A local runner registers when it starts, beats its heart while alive and says when it stops.
Work a dead runner held is taken over at once instead of after its lease: its claims are
released, and the calls its own built-in simulator accepted, which nobody will ever answer, are
sent again. A runner is dead when it said it stopped, when its heart has not beaten for
`STALE_AFTER` seconds, or, on this host, when its process is gone. Cloud containers do not
register: a pass's container ends while the step containers it spawned work on its claims,
so cloud work is judged by its leases alone.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime
from typing import Any
from uuid import UUID

import psutil

from orchestrator.db.pool import Conn, Databases
from orchestrator.db.queries import query

HEARTBEAT_SECONDS = 5.0
STALE_AFTER = 30.0
HOSTNAME = socket.gethostname()


def register(dbs: Databases, kind: str) -> UUID:
    with dbs.hq.connection() as conn:
        row = conn.execute(
            query("register_runner"), {"hostname": HOSTNAME, "pid": os.getpid(), "kind": kind}
        ).fetchone()
    assert row is not None
    return UUID(str(row["id"]))


def heartbeat(dbs: Databases, runner_id: UUID) -> None:
    with dbs.hq.connection() as conn:
        conn.execute(query("runner_heartbeat"), {"runner_id": runner_id})


def stopped(dbs: Databases, runner_id: UUID) -> None:
    with dbs.hq.connection() as conn:
        conn.execute(query("runner_stopped"), {"runner_id": runner_id})


def _gone(row: dict[str, Any]) -> bool:
    """A runner of this host whose process no longer exists, or is another process now."""
    if row["hostname"] != HOSTNAME:
        return False
    try:
        started = psutil.Process(int(row["pid"])).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return True
    registered: datetime = row["started_at"]
    # A pid reused by a process that started after the runner registered is not the runner.
    return started > registered.timestamp() + 1.0


def live_runners(conn: Conn) -> list[UUID]:
    """Runners that still answer for their work; any other runner's claims may be taken over."""
    rows = conn.execute(query("runners_alive"), {"stale_after": STALE_AFTER}).fetchall()
    return [UUID(str(r["id"])) for r in rows if not _gone(dict(r))]
