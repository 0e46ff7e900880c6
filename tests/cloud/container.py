"""One container of the stand-in: `python -m cloud.container ROLE --name NAME --control URL`.

Roles, as `src/worker.py` declares the deployment:
    steps      `Steps.run_step` inputs, one at a time (no @modal.concurrent):
               CloudRuntime.run_step(StepCall.from_json(call))
    pass       `orchestrator_pass` inputs: CloudRuntime.orchestrator_pass(UUID(batch_id))
    sweeper    the cron: CloudRuntime.sweep() every --interval seconds
    receivers  the `api` app, create_app(lambda: runtime), under uvicorn on --port: Clay's
               callbacks (POST /receivers/<slug>) and uploads (POST /batches)

Each builds one CloudRuntime from its environment (`Settings()`), as `worker.runtime()` does,
with spawn functions that post to the control plane instead of Modal. Logs go to stderr, which
the harness sends to a file per process. SIGTERM lets the input in hand finish, then closes the
runtime, as Modal's @modal.exit does.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from uuid import UUID

import requests

from cloud.control import ORCHESTRATOR_PASS, RUN_STEP, ControlClient
from orchestrator.engine.dispatch import StepCall
from orchestrator.runtimes.cloud import CloudRuntime
from orchestrator.settings import Settings

log = logging.getLogger("container")
ROLES = ("steps", "pass", "sweeper", "receivers")


def serve_inputs(
    client: ControlClient, functions: Mapping[str, Callable[..., object]], stop: threading.Event
) -> None:
    """Take inputs one at a time until stopped; an input that raises is reported failed."""
    while not stop.is_set():
        try:
            item = client.take(list(functions), wait=2.0)
        except requests.RequestException as exc:
            log.warning("control plane unreachable: %s", exc)
            stop.wait(0.5)
            continue
        if item is None:
            continue
        label = f"{item['id']} {item['function']} attempt {item['attempt']}"
        started = time.monotonic()
        log.info("input %s: start %s", label, _describe(item))
        try:
            functions[item["function"]](*item["args"])
        except Exception as exc:
            log.exception("input %s failed after %.2fs", label, time.monotonic() - started)
            client.done(item["id"], False, f"{type(exc).__name__}: {exc}"[:500])
        else:
            log.info("input %s: done in %.2fs", label, time.monotonic() - started)
            client.done(item["id"], True)


def _describe(item: dict[str, Any]) -> str:
    args = item["args"]
    if item["function"] == RUN_STEP and args and isinstance(args[0], dict):
        ids = args[0].get("item_ids") or args[0].get("entity_ids") or []
        return f"{args[0].get('step_name')} x{len(ids)}"
    return str(args)[:80]


def sweep_forever(runtime: CloudRuntime, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        try:
            report = runtime.sweep()
        except Exception:
            log.exception("sweep failed")
            continue
        if report.changed:
            log.info("sweep: entities %s items %s", dict(report.entities), dict(report.items))


def listening_socket(port: int) -> socket.socket:
    """The api's socket, bound with SO_REUSEPORT: a redeploy starts the new receivers on the
    same port before the old one stops, as Modal keeps an endpoint's URL answering while it
    replaces the containers behind it (Clay's callbacks would otherwise find nobody)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.set_inheritable(True)
    return sock


def serve_api(runtime: CloudRuntime, client: ControlClient, port: int) -> None:
    import uvicorn

    from orchestrator.web.app import create_app

    web = create_app(lambda: runtime)
    web.state.runtime = runtime
    config = uvicorn.Config(
        web, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)

    def announce() -> None:
        # `started`: this process listens (a GET could be answered by the one it replaces).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not server.should_exit:
            try:
                if server.started and requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                    client.ready("receivers", os.getpid())
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)

    threading.Thread(target=announce, name="announce", daemon=True).start()
    server.run(sockets=[listening_socket(port)])  # uvicorn handles SIGTERM/SIGINT itself


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cloud.container")
    parser.add_argument("role", choices=ROLES)
    parser.add_argument("--name", required=True)
    parser.add_argument("--control", required=True, help="control plane URL")
    parser.add_argument("--interval", type=float, default=5.0, help="sweeper period, seconds")
    parser.add_argument("--port", type=int, default=0, help="receivers: port to serve on")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s {args.name} %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("psycopg.pool").setLevel(logging.WARNING)
    client = ControlClient(args.control, args.name)
    log.info("starting %s (pid %d)", args.role, os.getpid())
    runtime = CloudRuntime(Settings(), client.spawn_step, client.spawn_pass)
    stop = threading.Event()
    try:
        if args.role == "receivers":
            serve_api(runtime, client, args.port)
            return 0
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        client.ready(args.role, os.getpid())
        if args.role == "steps":
            steps = {RUN_STEP: lambda call: runtime.run_step(StepCall.from_json(call))}
            serve_inputs(client, steps, stop)
        elif args.role == "pass":
            passes = {ORCHESTRATOR_PASS: lambda b: runtime.orchestrator_pass(UUID(b))}
            serve_inputs(client, passes, stop)
        else:
            sweep_forever(runtime, args.interval, stop)
    finally:
        log.info("closing the runtime")
        runtime.close()
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
