"""Fixtures of the cloud stand-in: PgBouncer (skipped with one line when it is missing) and
`standin`, which builds a running `StandIn` and prints every process's log tail on failure."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud.config import StandInConfig
from cloud.harness import StandIn
from support.pgbouncer import pgbouncer, pgbouncer_binary
from support.postgres import PostgresServer

__all__ = ["pgbouncer", "pgbouncer_binary"]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    item.stash.setdefault(FAILED, False)
    if report.failed:
        item.stash[FAILED] = True
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def standin(
    pg_server: PostgresServer,
    pgbouncer_binary: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., StandIn]]:
    """`standin(**config)`: a started stand-in (see `StandInConfig`), closed after the test."""
    opened: list[StandIn] = []

    def start(**config: Any) -> StandIn:
        run_dir = tmp_path / f"run{len(opened)}"
        built = StandIn(
            pg_server.admin_conninfo,
            StandInConfig(**config),
            run_dir,
            pgbouncer_binary=pgbouncer_binary,
            say=lambda message: print(message, flush=True),
        )
        opened.append(built)
        built.start()
        return built

    try:
        yield start
    finally:
        for built in opened:
            if request.node.stash.get(FAILED, False):
                print(f"\n===== process logs of {built.run_dir} =====")
                print(built.processes.tails(40))
                if built.bouncer is not None:
                    print(f"----- pgbouncer: {built.bouncer.log_path}")
                    print("\n".join(built.bouncer.log_text().splitlines()[-15:]))
            built.close()
