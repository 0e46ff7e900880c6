"""One sweep at a time: a second one returns at once naming the holder, and a sweeper that
crashed or hung inside its transaction does not keep the lock."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import psycopg
import pytest

from conftest import DatabasePair
from orchestrator.db.pool import Databases
from orchestrator.engine.sweeper import SweepReport, sweep, take_sweep_lock


def _eventually(check: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_a_finished_sweep_lets_the_next_one_run(dbs: Databases) -> None:
    assert sweep(dbs).skipped is None
    assert sweep(dbs).skipped is None


def test_two_overlapping_sweeps_one_returns_at_once_naming_the_holder(
    dbs: Databases, db_urls: DatabasePair
) -> None:
    """Two threads sweep together; the runners table is locked so that whichever takes the
    sweep lock first stays inside its sweep until we let it go."""
    reports: dict[str, SweepReport] = {}
    returned: list[str] = []

    def run(name: str) -> None:
        reports[name] = sweep(dbs)
        returned.append(name)

    with psycopg.connect(db_urls.urls.hq) as blocker:
        blocker.execute("LOCK TABLE runners IN ACCESS EXCLUSIVE MODE")
        threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in ("a", "b")]
        for thread in threads:
            thread.start()
        assert _eventually(lambda: len(returned) == 1), "neither sweep came back"
        time.sleep(0.5)
        # The first back is the one that found the lock taken; the other still sweeps.
        (first,) = returned
        skipped = reports[first].skipped
        assert skipped is not None and "another sweep holds the sweep lock" in skipped
        assert "server process" in skipped
        assert not reports[first].changed
        waiting = blocker.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND datname = current_database()"
        ).fetchone()
        assert waiting is not None and waiting[0] == 1
        blocker.rollback()
    for thread in threads:
        thread.join(timeout=30)
    (second,) = {"a", "b"} - {first}
    assert reports[second].skipped is None
    assert returned == [first, second]


_CRASHING_HOLDER = """
import sys, time
import psycopg
from psycopg.rows import dict_row
from orchestrator.engine.sweeper import take_sweep_lock
conn = psycopg.connect(sys.argv[1], row_factory=dict_row)
assert take_sweep_lock(conn) is None
print("held", flush=True)
time.sleep(600)
"""


def test_a_crashed_sweepers_lock_ends_with_its_process(
    dbs: Databases, db_urls: DatabasePair
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_HOLDER, db_urls.urls.hq],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert sweep(dbs).skipped is not None
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        assert _eventually(lambda: sweep(dbs).skipped is None)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=10)


def test_a_sweeper_hung_inside_its_transaction_loses_the_lock(
    dbs: Databases, db_urls: DatabasePair
) -> None:
    from psycopg.rows import dict_row

    with psycopg.connect(db_urls.urls.hq, row_factory=dict_row) as hung:
        assert take_sweep_lock(hung, stuck_after=1.0) is None
        assert sweep(dbs).skipped is not None
        # It does nothing more: after a second idle the server ends its transaction.
        assert _eventually(lambda: sweep(dbs).skipped is None, timeout=10)
        with pytest.raises(psycopg.Error, match="idle-in-transaction timeout"):
            hung.execute("SELECT 1")
