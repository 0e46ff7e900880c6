"""Standalone entry point: `python -m orchestrator.providers.simulators.clay`."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Sequence

from orchestrator.providers.simulators.clay.config import (
    DEFAULT_CALLBACK_SECRET_HEADER,
    SimulatorConfig,
)
from orchestrator.providers.simulators.clay.simulator import ClaySimulator


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m orchestrator.providers.simulators.clay",
        description="Run a local Clay webhook simulator.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--delay", type=float, default=0.0, help="callback delay, seconds")
    p.add_argument("--jitter", type=float, default=0.0, help="extra random delay, seconds")
    p.add_argument("--auth-token", default=None, help="require x-clay-webhook-auth")
    p.add_argument("--rate-limit", type=float, default=None, help="rows/second per webhook")
    p.add_argument("--drop-rate", type=float, default=0.0)
    p.add_argument("--duplicate-rate", type=float, default=0.0)
    p.add_argument("--submit-failure-rate", type=float, default=0.0)
    p.add_argument("--callback-failure-rate", type=float, default=0.0)
    p.add_argument("--fail-first", type=int, default=0, help="answer 503 to the first N rows")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--callback-secret", default=None)
    p.add_argument("--callback-secret-header", default=DEFAULT_CALLBACK_SECRET_HEADER)
    p.add_argument("--workers", type=int, default=8, help="parallel callback senders")
    return p


def _config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    return SimulatorConfig(
        host=args.host,
        port=args.port,
        auth_token=args.auth_token,
        rate_limit_per_second=args.rate_limit,
        callback_delay_seconds=args.delay,
        callback_jitter_seconds=args.jitter,
        drop_rate=args.drop_rate,
        duplicate_rate=args.duplicate_rate,
        submit_failure_rate=args.submit_failure_rate,
        callback_failure_rate=args.callback_failure_rate,
        fail_first_n_submissions=args.fail_first,
        seed=args.seed,
        callback_secret_header=args.callback_secret_header,
        callback_secret=args.callback_secret,
        callback_workers=args.workers,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    simulator = ClaySimulator(_config_from_args(args))
    stop = threading.Event()
    # Explicit handlers: a shell-backgrounded process ignores SIGINT by default,
    # and SIGTERM (docker, supervisors) should stop it just as cleanly.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with simulator:
        print(f"Clay simulator: POST rows to {simulator.webhook_url('<name>')}", flush=True)
        while not stop.wait(0.5):
            pass
        print(_summary(simulator), flush=True)
    return 0


def _summary(simulator: ClaySimulator) -> str:
    return (
        f"accepted={simulator.submission_count()} rejected={dict(simulator.rejected)} "
        f"callbacks sent={simulator.callbacks_sent} failed={simulator.callbacks_failed} "
        f"dropped={simulator.callbacks_dropped}"
    )
