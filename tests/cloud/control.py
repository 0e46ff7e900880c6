"""Modal's function-call queue, as a small HTTP server on a thread of the harness.

`spawn` (what `Function.spawn` does in `worker.py`) enqueues an input; container processes take
inputs one at a time (Modal without `@modal.concurrent`) and report each done. An input whose
call raised, or whose container died while running it, is queued again after a delay, as Modal
retries per `modal.Retries` (worker.py: max_retries=3, delay 2 s x 2^n); after the last retry
it is given up. Every attempt is kept as a `Run`: which container ran which input, and how it
ended.

HTTP, JSON bodies:
    POST /spawn {function, args}                 -> {id}
    POST /take  {container, functions, wait}     -> 200 {id, function, args, attempt} | 204
    POST /done  {container, id, ok, error}
    POST /ready {container, role, pid}
    GET  /status                                 -> queued, running, spawned by function
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

RUN_STEP = "run_step"
ORCHESTRATOR_PASS = "orchestrator_pass"


@dataclass
class Input:
    id: str
    function: str
    args: list[Any]
    attempt: int = 1
    not_before: float = 0.0

    @property
    def summary(self) -> str:
        """What the input is about: a step and its item count, or a pass's batch."""
        if self.function == RUN_STEP and self.args and isinstance(self.args[0], dict):
            call = self.args[0]
            ids = call.get("item_ids") or call.get("entity_ids") or []
            return f"{call.get('step_name')} x{len(ids)}"
        return ", ".join(str(a)[:8] for a in self.args)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "function": self.function,
            "args": self.args,
            "attempt": self.attempt,
        }


@dataclass
class Run:
    """One attempt of one input in one container."""

    input_id: str
    function: str
    summary: str
    attempt: int
    container: str
    started: float
    finished: float | None = None
    # "ok", "error: <message>", or "container died"
    outcome: str | None = None

    @property
    def step_name(self) -> str:
        return self.summary.split(" x")[0] if self.function == RUN_STEP else ""


@dataclass
class ControlPlane:
    max_retries: int = 3
    retry_delay: float = 1.0
    backoff: float = 2.0
    runs: list[Run] = field(default_factory=list)
    spawned: Counter[str] = field(default_factory=Counter)
    gave_up: list[tuple[Input, str]] = field(default_factory=list)
    containers: dict[str, dict[str, Any]] = field(default_factory=dict)
    _queue: deque[Input] = field(default_factory=deque)
    _running: dict[str, tuple[Input, Run]] = field(default_factory=dict)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ the queue

    def spawn(self, function: str, args: list[Any]) -> str:
        with self._cond:
            item = Input(f"in-{next(self._ids)}", function, list(args))
            self._queue.append(item)
            self.spawned[function] += 1
            self._cond.notify_all()
            return item.id

    def take(self, container: str, functions: list[str], wait: float) -> Input | None:
        deadline = time.monotonic() + wait
        with self._cond:
            while True:
                now = time.monotonic()
                for item in self._queue:
                    if item.function in functions and item.not_before <= now:
                        self._queue.remove(item)
                        run = Run(
                            item.id, item.function, item.summary, item.attempt, container, now
                        )
                        self._running[container] = (item, run)
                        self.runs.append(run)
                        return item
                if now >= deadline:
                    return None
                self._cond.wait(min(0.2, deadline - now))

    def done(self, container: str, input_id: str, ok: bool, error: str | None) -> None:
        with self._cond:
            item, run = self._running.get(container, (None, None))
            if item is None or run is None or item.id != input_id:
                return  # a container reporting an input it was not given: ignore, as Modal
            del self._running[container]
            self._finish(item, run, "ok" if ok else f"error: {error}")

    def container_died(self, container: str) -> Input | None:
        """The container is gone: its running input (if any) is retried."""
        with self._cond:
            item, run = self._running.pop(container, (None, None))
            if item is None or run is None:
                return None
            self._finish(item, run, "container died")
            return item

    def _finish(self, item: Input, run: Run, outcome: str) -> None:
        run.finished, run.outcome = time.monotonic(), outcome
        if outcome != "ok":
            if item.attempt > self.max_retries:
                self.gave_up.append((item, outcome))
            else:
                delay = self.retry_delay * self.backoff ** (item.attempt - 1)
                retry = Input(item.id, item.function, item.args, item.attempt + 1)
                retry.not_before = time.monotonic() + delay
                self._queue.append(retry)
        self._cond.notify_all()

    def running(self) -> dict[str, Run]:
        with self._cond:
            return {name: run for name, (_, run) in self._running.items()}

    def queued(self) -> int:
        with self._cond:
            return len(self._queue)

    def ready(self, container: str, info: dict[str, Any]) -> None:
        with self._cond:
            self.containers[container] = info
            self._cond.notify_all()

    def wait_ready(self, names: list[str], timeout: float) -> list[str]:
        """Wait until every named container said it is ready; returns those that did not."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while missing := [n for n in names if n not in self.containers]:
                left = deadline - time.monotonic()
                if left <= 0:
                    return missing
                self._cond.wait(min(0.2, left))
        return []

    def status(self) -> dict[str, Any]:
        with self._cond:
            return {
                "queued": len(self._queue),
                "running": {c: asdict(r) for c, (_, r) in self._running.items()},
                "spawned": dict(self.spawned),
                "gave_up": [(i.id, i.summary, why) for i, why in self.gave_up],
            }

    # ------------------------------------------------------------------ HTTP

    def serve(self) -> str:
        plane = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                path = self.path
                if path == "/spawn":
                    self._reply(200, {"id": plane.spawn(body["function"], body["args"])})
                elif path == "/take":
                    wait = min(float(body.get("wait", 5.0)), 30.0)
                    item = plane.take(body["container"], list(body["functions"]), wait)
                    if item is None:
                        self._reply(204, None)
                    else:
                        self._reply(200, item.to_json())
                elif path == "/done":
                    plane.done(body["container"], body["id"], bool(body["ok"]), body.get("error"))
                    self._reply(200, {})
                elif path == "/ready":
                    plane.ready(body["container"], body)
                    self._reply(200, {})
                else:
                    self._reply(404, {"error": "not found"})

            def do_GET(self) -> None:
                if self.path == "/status":
                    self._reply(200, plane.status())
                else:
                    self._reply(404, {"error": "not found"})

            def _reply(self, status: int, payload: Any) -> None:
                data = b"" if payload is None else json.dumps(payload, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, name="control-plane", daemon=True).start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None, "serve() first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class ControlClient:
    """What a container process uses: Modal's spawn, and the input loop's take and done."""

    def __init__(self, url: str, container: str) -> None:
        self.url = url.rstrip("/")
        self.container = container
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _post(self, path: str, body: dict[str, Any], timeout: float = 10.0) -> requests.Response:
        response = self._session().post(f"{self.url}{path}", json=body, timeout=timeout)
        response.raise_for_status()
        return response

    def spawn(self, function: str, *args: Any) -> str:
        return str(self._post("/spawn", {"function": function, "args": list(args)}).json()["id"])

    def spawn_step(self, call: dict[str, object]) -> None:
        self.spawn(RUN_STEP, call)

    def spawn_pass(self, batch_id: str) -> None:
        self.spawn(ORCHESTRATOR_PASS, batch_id)

    def ready(self, role: str, pid: int) -> None:
        self._post("/ready", {"container": self.container, "role": role, "pid": pid})

    def take(self, functions: list[str], wait: float = 5.0) -> dict[str, Any] | None:
        body = {"container": self.container, "functions": functions, "wait": wait}
        response = self._post("/take", body, timeout=wait + 30)
        return None if response.status_code == 204 else dict(response.json())

    def done(self, input_id: str, ok: bool, error: str | None = None) -> None:
        self._post("/done", {"container": self.container, "id": input_id, "ok": ok, "error": error})
