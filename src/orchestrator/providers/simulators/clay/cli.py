"""Standalone entry point: `python -m orchestrator.providers.simulators.clay`."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import threading
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from orchestrator.providers.simulators.clay.billing import ClayPrice, prices_from_json
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
    p.add_argument("--rate-burst", type=int, default=None, help="burst of --rate-limit")
    p.add_argument(
        "--workspace-rate",
        type=float,
        default=None,
        help="rows/second across every webhook name (Clay: 10); 429 + Retry-After beyond",
    )
    p.add_argument(
        "--workspace-burst", type=int, default=None, help="burst of --workspace-rate (Clay: 20)"
    )
    p.add_argument(
        "--max-payload-bytes", type=int, default=None, help="413 above this (Clay: 100000)"
    )
    p.add_argument(
        "--lifetime-limit",
        type=int,
        default=None,
        help="accepted submissions per webhook name, ever; 410 beyond (Clay: 50000)",
    )
    p.add_argument(
        "--clay-limits",
        action="store_true",
        help="enforce Clay's real limits wherever the four options above are not given",
    )
    p.add_argument("--stats-file", type=Path, default=None, help="write /stats here at exit")
    p.add_argument("--drop-rate", type=float, default=0.0)
    p.add_argument("--duplicate-rate", type=float, default=0.0)
    p.add_argument("--submit-failure-rate", type=float, default=0.0)
    p.add_argument("--callback-failure-rate", type=float, default=0.0)
    p.add_argument(
        "--no-result-rate",
        type=float,
        default=0.0,
        help="share of rows whose enrichment finds nothing (data callback, every field null)",
    )
    p.add_argument(
        "--prices",
        type=Path,
        default=None,
        metavar="FILE.json",
        help='what rows cost, per workflow_slug: {"slug": {"actions_per_run": n,'
        ' "callback_actions": n, "data_credits": {"field": n}}}; other slugs are free',
    )
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
        rate_limit_burst=args.rate_burst,
        workspace_rate_per_second=args.workspace_rate,
        workspace_burst=args.workspace_burst,
        max_payload_bytes=args.max_payload_bytes,
        webhook_lifetime_limit=args.lifetime_limit,
        callback_delay_seconds=args.delay,
        callback_jitter_seconds=args.jitter,
        drop_rate=args.drop_rate,
        duplicate_rate=args.duplicate_rate,
        submit_failure_rate=args.submit_failure_rate,
        callback_failure_rate=args.callback_failure_rate,
        no_result_rate=args.no_result_rate,
        fail_first_n_submissions=args.fail_first,
        seed=args.seed,
        callback_secret_header=args.callback_secret_header,
        callback_secret=args.callback_secret,
        callback_workers=args.workers,
        prices=_load_prices(args.prices),
    )


def _load_prices(path: Path | None) -> dict[str, ClayPrice]:
    """The --prices file; ValueError naming the file and what is wrong with it."""
    if path is None:
        return {}
    try:
        # Decimal, not float: a price is kept exactly as written in the file.
        document = json.loads(path.read_text(), parse_float=Decimal, parse_int=Decimal)
        return prices_from_json(document)
    except OSError as error:
        raise ValueError(f"--prices {path}: cannot read it: {error.strerror or error}") from None
    except ValueError as error:  # bad JSON and bad prices alike
        raise ValueError(f"--prices {path}: {error}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM, then print a summary line and return 0.

    The first stdout line is machine-readable, `Clay simulator listening on
    http://HOST:PORT (POST rows to ...)`: parse the base URL with the regular
    expression `listening on (http://\\S+)`. The last line is the summary
    `accepted=N rejected={...} callbacks sent=N failed=N dropped=N billed actions=X
    data_credits=Y` (amounts as exact decimals).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = _config_from_args(args)
        if args.clay_limits:
            config = config.with_clay_limits()
    except ValueError as error:
        parser.error(str(error))
    simulator = ClaySimulator(config)
    stop = threading.Event()
    # Explicit handlers: a shell-backgrounded process ignores SIGINT by default,
    # and SIGTERM (docker, supervisors) should stop it just as cleanly.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with simulator:
        url = simulator.url
        print(
            f"Clay simulator listening on {url} (POST rows to {url}/webhooks/<name>,"
            f" stats at {url}/stats)",
            flush=True,
        )
        while not stop.wait(0.2):
            pass
        stats = simulator.stats()
    if args.stats_file is not None:
        args.stats_file.write_text(json.dumps(stats, indent=2) + "\n")
    with contextlib.suppress(OSError):  # the reader of stdout may be gone
        print(_summary(simulator), flush=True)
    return 0


def _summary(simulator: ClaySimulator) -> str:
    actions, data_credits = simulator.billed()
    return (
        f"accepted={simulator.submission_count()} rejected={dict(simulator.rejected)} "
        f"callbacks sent={simulator.callbacks_sent} failed={simulator.callbacks_failed} "
        f"dropped={simulator.callbacks_dropped} "
        f"billed actions={actions:f} data_credits={data_credits:f}"
    )
