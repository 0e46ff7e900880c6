"""The stand-in's own parts, without PgBouncer or a database: Modal's queue and the log scan."""

from __future__ import annotations

from pathlib import Path

from cloud.control import ControlPlane
from cloud.processes import scan_log


def test_the_queue_retries_the_input_of_a_dead_container_then_gives_up() -> None:
    plane = ControlPlane(max_retries=2, retry_delay=0.0)
    plane.spawn("run_step", [{"step_name": "split", "item_ids": ["a", "b"]}])
    first = plane.take("steps-0", ["run_step"], wait=1)
    assert first is not None and first.summary == "split x2"
    assert plane.container_died("steps-0") is not None
    second = plane.take("steps-1", ["run_step"], wait=1)
    assert second is not None and (second.id, second.attempt) == (first.id, 2)
    plane.done("steps-1", second.id, ok=False, error="boom")
    third = plane.take("steps-2", ["run_step"], wait=1)
    assert third is not None and third.attempt == 3
    plane.done("steps-2", third.id, ok=False, error="boom")
    assert plane.take("steps-0", ["run_step"], wait=0.1) is None
    assert [(i.id, why) for i, why in plane.gave_up] == [(first.id, "error: boom")]
    assert [(r.container, r.outcome) for r in plane.runs] == [
        ("steps-0", "container died"),
        ("steps-1", "error: boom"),
        ("steps-2", "error: boom"),
    ]


def test_a_log_scan_counts_tracebacks_and_statement_errors(tmp_path: Path) -> None:
    log = tmp_path / "steps-0.log"
    log.write_text(
        "2026-12-02 00:00:00 steps-0 INFO container: input in-1: start split x5\n"
        "2026-12-02 00:00:01 steps-0 ERROR container: input in-1 failed after 0.1s\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        'psycopg.errors.InvalidSqlStatementName: prepared statement "_pg3_6" does not exist\n'
    )
    scan = scan_log("steps-0", log)
    assert (scan.tracebacks, scan.statement_errors, scan.prepared_statement) == (1, 1, 1)
    assert scan.error_lines == 1 and not scan.clean
    assert scan.samples == [
        'psycopg.errors.InvalidSqlStatementName: prepared statement "_pg3_6" does not exist'
    ]
