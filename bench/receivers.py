"""Callbacks per second the receiver sustains on loopback, next to a bare one-INSERT endpoint.

    python bench/receivers.py [--callbacks 5000] [--repeat 2] [--concurrency 32] [--json]

Set-up (not timed): a generated file is uploaded on the default play and run on LocalService
with the Clay simulator (`python -m orchestrator.providers.simulators.clay --drop-rate 1.0`, a
process of its own, so its CPU is not this process's) accepting every row but never calling
back, until every company has a dispatch in flight (`entity_dispatches`, status SENT). The
benchmark then signs one valid callback per dispatch itself
(`orchestrator.callbacks.tokens.sign`, as the sender does), with the simulator's synthetic
company data as the body.

Each burst POSTs a set of bodies from a second process (multiprocessing, spawn): an asyncio
load generator with `--concurrency` keep-alive connections, each sending its next request as
soon as the previous one is answered. The same uvicorn server and the same pool serve
  * `POST /receivers/enrich_company_via_waterfall_in_clay`: the real receiver;
  * `POST /bench/bare-insert`: added to the served app by this script only; it reads the body,
    parses the JSON and INSERTs it into a scratch table through the same pool (one statement),
    in Starlette's thread pool like the receiver.
Bursts alternate bare, receiver, receiver with passes held ... (`--repeat` of each; the best
is reported), then `--repeat` bursts of person callbacks ("last Clay step"). A receiver keeps
the result in one statement; the batch's next pass completes the stored results set-based.
"Passes held": the runtime's trigger is swapped for a counter during the burst (and its
heartbeat stretched), so callbacks are stored but no pass runs and nothing downstream starts
until the burst is over: the receiver's own cost. "Receiver" (company callbacks): passes
complete them and send their people to Clay, in this process, during the burst. "Last Clay
step" (person callbacks): passes complete them and move their items to the internal
consolidate step.
Each receiver burst uses fresh dispatches, so every callback is a first delivery. The runtime
keeps running: a stored company callback completes its items, asks for an orchestrator pass,
and the pass moves them to the person step (whose sends the simulator also drops), all in this
process, as `enrich serve` runs; the script waits for that to settle before the next burst.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from uuid import UUID

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg.types.json import Jsonb
from rich.console import Console
from starlette.concurrency import run_in_threadpool

import orchestrator.runtimes.service
from common import (
    BenchServer,
    CallbackTap,
    CpuMeter,
    Runs,
    StatementsByThread,
    admin_connection,
    bench_parser,
    bench_server,
    checkpoint,
    external_clay,
    fmt,
    log,
    machine_state,
    parse_counts,
    rows,
    run_benchmark,
    sample_json,
    scalar,
    source_fingerprint,
    table,
    upload_file,
    wait_until,
    write_sample,
)
from orchestrator.callbacks.tokens import sign
from orchestrator.db.pool import Databases
from orchestrator.engine.trigger import CoalescingTrigger
from orchestrator.providers.simulators.clay import synthesize
from orchestrator.runtimes.local import LocalRuntime
from orchestrator.runtimes.service import LocalService
from orchestrator.state.registry import DEFAULT_PLAY

COMPANY_STEP = "enrich_company_via_waterfall_in_clay"
RECEIVER_PATH = f"/receivers/{COMPANY_STEP}"
BARE_PATH = "/bench/bare-insert"
SCRATCH_TABLE = "bench_receiver_scratch"
HELD_HEARTBEAT_SECONDS = 3600.0
HEARTBEAT_GRACE_SECONDS = 2.5  # CoalescingTrigger's heartbeat is 2 s


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__, "bursts of each kind")
    parser.add_argument("--callbacks", type=int, default=5_000, help="requests per burst")
    parser.add_argument("--concurrency", type=int, default=32, help="keep-alive connections")
    parser.add_argument(
        "--items-per-company", type=int, default=2, help="rows per company in the sample"
    )
    return parse_counts(parser, argv, "callbacks", "concurrency", "items_per_company")


# --------------------------------------------------------------------------- the bare endpoint


def _insert_scratch(dbs: Databases, body: bytes) -> None:
    payload = json.loads(body)
    with dbs.hq.connection() as conn:
        conn.execute(
            f"INSERT INTO {SCRATCH_TABLE} (entity_id, data) VALUES (%s, %s)",
            (payload["entity_id"], Jsonb(payload.get("data"))),
        )


def add_bare_route(app: FastAPI, dbs: Databases) -> None:
    async def bare_insert(request: Request) -> JSONResponse:
        body = await request.body()
        await run_in_threadpool(_insert_scratch, dbs, body)
        return JSONResponse({"status": "stored"})

    app.add_api_route(BARE_PATH, bare_insert, methods=["POST"], include_in_schema=False)


@contextmanager
def served_with_bare_route(dbs: Databases) -> Iterator[None]:
    """Make LocalService serve its usual app plus the bare route (this benchmark only)."""
    original = orchestrator.runtimes.service.runtime_app

    def app_with_bare_route(runtime: LocalRuntime) -> Any:
        app = original(runtime)
        add_bare_route(app, dbs)
        return app

    orchestrator.runtimes.service.runtime_app = app_with_bare_route
    try:
        yield
    finally:
        orchestrator.runtimes.service.runtime_app = original


def create_scratch_table(conninfo: str) -> None:
    with admin_connection(conninfo) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}")
        conn.execute(
            f"CREATE TABLE {SCRATCH_TABLE} (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            " entity_id UUID NOT NULL, data JSONB, created_at TIMESTAMPTZ NOT NULL DEFAULT NOW())"
        )


# --------------------------------------------------------------------------- load generator


@dataclass(frozen=True)
class Burst:
    kind: str  # "receiver" or "bare"
    requests: list[bytes]


def http_request(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _client(
    streams: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    pending: list[bytes],
    statuses: Counter[int],
    latencies: list[float],
) -> None:
    reader, writer = streams
    while pending:
        request = pending.pop()
        started = time.perf_counter()
        writer.write(request)
        statuses[await _read_response(reader)] += 1
        latencies.append(time.perf_counter() - started)
    writer.close()


async def _drive(
    port: int, requests: list[bytes], concurrency: int, pipe: Connection
) -> dict[str, Any]:
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(concurrency)]
    pipe.send("ready")
    pipe.recv()  # "go": blocking is fine, nothing else runs on this loop yet
    pending = list(reversed(requests))
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(_client(c, pending, statuses, latencies) for c in connections))
    wall = time.perf_counter() - started
    return {"wall_s": wall, "statuses": dict(statuses), **_percentiles(latencies)}


def _percentiles(latencies: list[float]) -> dict[str, float]:
    if not latencies:
        return {}
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "latency_p50_ms": 1000 * cuts[49],
        "latency_p95_ms": 1000 * cuts[94],
        "latency_p99_ms": 1000 * cuts[98],
        "latency_max_ms": 1000 * max(latencies),
    }


def load_generator(pipe: Connection, port: int, concurrency: int) -> None:
    """Entry point of the load generator process."""
    requests: list[bytes] = pipe.recv()
    pipe.send(asyncio.run(_drive(port, requests, concurrency, pipe)))


# --------------------------------------------------------------------------- set-up


_PAYLOAD_SQL = {
    "company": (
        "SELECT d.id, d.entity_id, d.attempt, d.workflow_slug, c.domain, c.name, c.industry,"
        " c.employees, c.linkedin_url FROM entity_dispatches d"
        " JOIN normalized_companies c ON c.id = d.entity_id"
    ),
    "person": (
        "SELECT d.id, d.entity_id, d.attempt, d.workflow_slug, p.first_name, p.last_name,"
        " p.full_name, p.email, p.linkedin_url, p.title, c.domain AS company_domain,"
        " c.name AS company_name FROM entity_dispatches d"
        " JOIN normalized_people p ON p.id = d.entity_id"
        " JOIN normalized_companies c ON c.id = p.company_id"
    ),
}


def entity_callbacks(
    conninfo: str, batch_id: UUID, key: bytes, entity_type: str
) -> list[dict[str, Any]]:
    """One valid callback body per dispatch of this entity type in flight."""
    found = rows(
        conninfo,
        _PAYLOAD_SQL[entity_type] + " WHERE d.batch_id = %s AND d.entity_type = %s"
        " AND d.status = 'SENT' ORDER BY d.entity_id",
        (batch_id, entity_type),
    )
    meta = ("id", "entity_id", "attempt", "workflow_slug")
    return [
        {
            "entity_id": str(r["entity_id"]),
            "workflow_slug": r["workflow_slug"],
            "callback_token": sign(key, r["id"], r["entity_id"], r["workflow_slug"], r["attempt"]),
            "data": synthesize(
                {**{k: v for k, v in r.items() if k not in meta}, "entity_type": entity_type}
            ),
        }
        for r in found
    ]


def _settled(service: LocalService, conninfo: str, batch_id: UUID) -> bool:
    """Nothing pending, nothing completed but not yet advanced, no stored callback waiting for
    a pass (a held burst's, say), no step call running."""
    found = rows(
        conninfo,
        "SELECT count(*) FILTER (WHERE status = 'PENDING') AS pending,"
        " count(*) FILTER (WHERE status = 'COMPLETED' AND NOT advanced) AS unadvanced,"
        " (SELECT count(*) FROM entity_dispatches d"
        "  WHERE d.batch_id = %(batch)s AND d.status = 'STORED') AS stored"
        " FROM workflow_states WHERE batch_id = %(batch)s",
        {"batch": batch_id},
    )[0]
    if found["pending"] or found["unadvanced"] or found["stored"]:
        return False
    return service.runtime.dispatcher.wait_idle(timeout=0.5)


def settle(service: LocalService, conninfo: str, batch_id: UUID) -> None:
    wait_until(lambda: _settled(service, conninfo, batch_id), 600, "the runtime to settle")
    time.sleep(1.0)


def _count(conninfo: str, query: str, batch_id: UUID) -> int:
    return int(scalar(conninfo, query, (batch_id,)) or 0)


def dispatch_everything(service: LocalService, conninfo: str, batch_id: UUID) -> int:
    """Run the batch until every company has a dispatch in flight; returns their number."""
    companies = "SELECT count(*) FROM normalized_companies WHERE batch_id = %s"
    sent = (
        "SELECT count(*) FROM entity_dispatches WHERE batch_id = %s"
        " AND entity_type = 'company' AND status = 'SENT'"
    )
    split_done = (
        "SELECT count(*) FROM workflow_states WHERE batch_id = %s"
        " AND step_name IN ('normalize_all_core_values', 'split') AND status = 'PENDING'"
    )

    def all_sent() -> bool:
        if _count(conninfo, split_done, batch_id) > 0:
            return False
        total = _count(conninfo, companies, batch_id)
        return total > 0 and _count(conninfo, sent, batch_id) == total

    service.runtime.trigger.request(batch_id)
    wait_until(all_sent, 1800, "every company to be dispatched", poll=0.5)
    settle(service, conninfo, batch_id)
    return _count(conninfo, companies, batch_id)


# --------------------------------------------------------------------------- bursts


def _dispatched(conninfo: str, batch_id: UUID) -> dict[str, int]:
    found = rows(
        conninfo,
        "SELECT count(*) FILTER (WHERE status = 'CALLED_BACK') AS called_back,"
        " count(*) FILTER (WHERE entity_type = 'person') AS person_dispatches,"
        f" (SELECT count(*) FROM {SCRATCH_TABLE}) AS scratch_rows"
        " FROM entity_dispatches WHERE batch_id = %s",
        (batch_id,),
    )
    return {k: int(v) for k, v in found[0].items()}


def run_burst(
    service: LocalService, server: BenchServer, batch_id: UUID, burst: Burst, concurrency: int
) -> dict[str, Any]:
    with passes_held(service.runtime, burst.kind == KINDS[2]) as held:
        if held is not None:
            # A heartbeat pass already due runs now, on a settled batch, not during the burst.
            time.sleep(HEARTBEAT_GRACE_SECONDS)
        out = _fire(service, server, batch_id, burst, concurrency)
    if held is not None:
        out["held_pass_requests"] = held.requests
    return out


def _start_generator(port: int, concurrency: int, burst: Burst) -> tuple[Any, Connection]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=load_generator, args=(child, port, concurrency), daemon=True)
    proc.start()
    parent.send(burst.requests)
    if parent.recv() != "ready":
        raise RuntimeError("the load generator did not start")
    return proc, parent


def _fire(
    service: LocalService, server: BenchServer, batch_id: UUID, burst: Burst, concurrency: int
) -> dict[str, Any]:
    port = int(service.server.url.rsplit(":", 1)[1])
    proc, pipe = _start_generator(port, concurrency, burst)
    before = _dispatched(server.conninfo, batch_id)
    trigger = _real_trigger(service.runtime)
    passes, requests = trigger.passes, trigger.requests
    statements, callbacks = StatementsByThread(), CallbackTap()
    cpu = CpuMeter(server.postgres_pid, {"load generator": proc.pid or 0})
    with callbacks.installed(), statements.measure():
        cpu.start()
        pipe.send("go")
        result: dict[str, Any] = pipe.recv()
        cpu_used = cpu.stop()
    proc.join(timeout=30)
    after = _dispatched(server.conninfo, batch_id)
    return _burst_result(
        burst, result, cpu_used, statements, callbacks, trigger.passes - passes,
        trigger.requests - requests, {k: after[k] - before[k] for k in after},
    )  # fmt: skip


def _burst_result(
    burst: Burst,
    result: dict[str, Any],
    cpu_used: dict[str, float],
    statements: StatementsByThread,
    callbacks: CallbackTap,
    passes: int,
    pass_requests: int,
    changes: dict[str, int],
) -> dict[str, Any]:
    ok = int(result["statuses"].get(200, 0))
    handled = max(len(burst.requests), 1)
    out = {
        "kind": burst.kind,
        "requests": len(burst.requests),
        "ok": ok,
        "per_s": ok / result["wall_s"],
        **result,
        "cpu": cpu_used,
        "passes": passes,
        "pass_requests": pass_requests,
        "passes_per_request": passes / handled,
        "statements": dict(statements.counts),
        "statements_per_request": statements.total / handled,
        "receiver_statuses": dict(callbacks.statuses),
        "database_changes": changes,
    }
    log(
        f"  {burst.kind}: {ok:,}/{len(burst.requests):,} ok in {result['wall_s']:.2f}s ="
        f" {out['per_s']:,.0f}/s, p50 {result.get('latency_p50_ms', 0):.0f} ms,"
        f" {passes} passes, {statements.total:,} statements, changes {changes}"
    )
    if ok != len(burst.requests):
        raise RuntimeError(f"{burst.kind} burst: statuses {result['statuses']}")
    return out


KINDS = ("bare", "receiver", "receiver, passes held", "receiver, last Clay step")


def make_bursts(
    callbacks: list[dict[str, Any]], port: int, headers: dict[str, str], size: int, repeat: int
) -> list[Burst]:
    """Per repeat: bare, receiver, receiver with passes held; fresh dispatches for each."""
    bursts = []
    for i in range(repeat):
        live, held = (
            [json.dumps(c).encode() for c in callbacks[j * size : (j + 1) * size]]
            for j in (2 * i, 2 * i + 1)
        )
        bursts.append(Burst(KINDS[0], [http_request(port, BARE_PATH, b, headers) for b in live]))
        bursts.append(
            Burst(KINDS[1], [http_request(port, RECEIVER_PATH, b, headers) for b in live])
        )
        bursts.append(
            Burst(KINDS[2], [http_request(port, RECEIVER_PATH, b, headers) for b in held])
        )
    return bursts


class HeldTrigger:
    """Stands in for the runtime's trigger: counts pass requests, runs no pass."""

    def __init__(self, real: CoalescingTrigger) -> None:
        self.real = real
        self.requests = 0
        self.batches: set[UUID] = set()
        self._lock = threading.Lock()

    def request(self, batch_id: UUID) -> None:
        with self._lock:
            self.requests += 1
            self.batches.add(batch_id)


@contextmanager
def passes_held(runtime: LocalRuntime, hold: bool) -> Iterator[HeldTrigger | None]:
    """While held, callbacks' pass requests reach a counter, not the orchestrator."""
    if not hold:
        yield None
        return
    real = runtime.trigger
    held = HeldTrigger(real)
    # The trigger also re-runs unfinished batches on a heartbeat (2 s); stretch it for the burst
    # (a private knob: if it is gone, heartbeat passes still run and are counted).
    heartbeat = getattr(real, "_heartbeat", None)
    if heartbeat is not None:
        real._heartbeat = HELD_HEARTBEAT_SECONDS
    # The receiver route reads runtime.trigger per request; step functions use ctx.trigger.
    runtime.trigger = held  # type: ignore[assignment]
    runtime.ctx.trigger = held
    try:
        yield held
    finally:
        runtime.trigger = real
        runtime.ctx.trigger = real
        if heartbeat is not None:
            real._heartbeat = heartbeat
        for batch_id in held.batches:
            real.request(batch_id)


def _real_trigger(runtime: LocalRuntime) -> CoalescingTrigger:
    trigger: Any = runtime.trigger
    return trigger.real if isinstance(trigger, HeldTrigger) else runtime.trigger


# --------------------------------------------------------------------------- main flow


def measure(server: BenchServer, args: argparse.Namespace, path: Path) -> dict[str, Any]:
    settings = server.settings()
    create_scratch_table(server.conninfo)
    with (
        server.open(settings) as dbs,
        served_with_bare_route(dbs),
        # Accepts every row, never calls back; its own process, so its CPU is not ours.
        external_clay(settings, "--drop-rate", "1.0") as (_, clay_settings),
        LocalService(clay_settings, dbs) as service,
    ):
        log("uploading and dispatching every company (the simulator never calls back)")
        batch_id = upload_file(dbs, path, DEFAULT_PLAY).batch_id
        started = time.perf_counter()
        companies = dispatch_everything(service, server.conninfo, batch_id)
        took = time.perf_counter() - started
        log(f"  {companies:,} company dispatches in flight after {took:.0f}s")
        config = service.runtime.receiver_config
        headers = {
            "Content-Type": "application/json",
            config.secret_header: config.callback_secret or "",
        }
        port = int(service.server.url.rsplit(":", 1)[1])
        key = service.runtime.signing_key
        callbacks = entity_callbacks(server.conninfo, batch_id, key, "company")
        if len(callbacks) < 2 * args.callbacks * args.repeat:
            raise RuntimeError(f"only {len(callbacks)} dispatches for {args.repeat} bursts")
        runs = {kind: Runs("per_s") for kind in KINDS}
        bursts = make_bursts(callbacks, port, headers, args.callbacks, args.repeat)

        def run(burst: Burst) -> None:
            checkpoint(server.conninfo)
            log(f"burst: {len(burst.requests):,} x {burst.kind}, {args.concurrency} connections")
            runs[burst.kind].runs.append(
                run_burst(service, server, batch_id, burst, args.concurrency)
            )
            settle(service, server.conninfo, batch_id)

        for burst in bursts:
            run(burst)
        # The company callbacks above sent their people to Clay: answer those, the play's last
        # Clay step, whose completions lead to an internal step rather than to more sends.
        people = entity_callbacks(server.conninfo, batch_id, key, "person")
        for i in range(args.repeat):
            bodies = people[i * args.callbacks : (i + 1) * args.callbacks]
            if len(bodies) < args.callbacks:
                raise RuntimeError(f"only {len(people)} person dispatches for the last-step bursts")
            run(
                Burst(
                    KINDS[3],
                    [
                        http_request(
                            port,
                            f"/receivers/{b['workflow_slug']}",
                            json.dumps(b).encode(),
                            headers,
                        )
                        for b in bodies
                    ],
                )
            )
    return {"companies_dispatched": companies, "runs": runs, "settings": settings}


def benchmark(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    source = source_fingerprint()
    before = machine_state()
    log(f"machine: {before.describe()}")
    companies = 2 * args.callbacks * args.repeat  # fresh dispatches for each receiver burst
    path = tmp / "apollo.csv"
    stats = write_sample(
        path, companies * args.items_per_company, companies, email_only_fraction=0.0,
        underivable_fraction=0.0, duplicate_fraction=0.0,
    )  # fmt: skip
    with bench_server("receivers") as server:
        measured = measure(server, args, path)
        server_json = server.to_json()
    after = machine_state()
    runs: dict[str, Runs] = measured["runs"]
    best = {k: r.best for k, r in runs.items()}
    settings = measured["settings"]
    return {
        "benchmark": "receivers",
        "sample": sample_json(stats),
        "server": server_json,
        "concurrency": args.concurrency,
        "callbacks_per_burst": args.callbacks,
        "repeat": args.repeat,
        "settings": {
            "pool_max_size": settings.pool_max_size,
            "dispatch_workers": settings.dispatch_workers,
            "starlette_threadpool": 40,
        },
        "companies_dispatched": measured["companies_dispatched"],
        "source": source,
        "machine_before": before.describe(),
        "machine_after": after.describe(),
        "best": best,
        "ratio_receiver_over_bare": best[KINDS[1]]["per_s"] / best[KINDS[0]]["per_s"],
        "ratio_held_receiver_over_bare": best[KINDS[2]]["per_s"] / best[KINDS[0]]["per_s"],
        "ratio_last_step_receiver_over_bare": best[KINDS[3]]["per_s"] / best[KINDS[0]]["per_s"],
        "runs": {k: r.runs for k, r in runs.items()},
    }


# --------------------------------------------------------------------------- report


def render(console: Console, report: dict[str, Any]) -> None:
    console.print(
        f"[bold]Receivers[/]: bursts of {report['callbacks_per_burst']:,} POSTs over"
        f" {report['concurrency']} keep-alive connections from a second process; best of"
        f" {report['repeat']}; pool_max_size={report['settings']['pool_max_size']},"
        f" Starlette thread pool 40 (AnyIO default)"
    )
    console.print(f"[bold]Server[/]: {report['server']['kind']}: {report['server']['version']}")
    console.print(f"[bold]Source[/]: {report['source']}")
    console.print(f"[bold]Machine before[/]: {report['machine_before']}")
    console.print(f"[bold]Machine after[/]:  {report['machine_after']}")
    console.print(_runs_table(report))
    console.print(_best_table(report))


def _runs_table(report: dict[str, Any]) -> Any:
    lines = [
        (r["kind"], f"{r['ok']:,}", fmt(r["wall_s"], 2), fmt(r["per_s"], 0),
         fmt(r.get("latency_p50_ms", 0), 1), fmt(r.get("latency_p99_ms", 0), 1), r["passes"])
        for kind in KINDS
        for r in report["runs"][kind]
    ]  # fmt: skip
    columns = ("burst", "ok", "wall s", "requests/s", "p50 ms", "p99 ms", "passes")
    return table("Every burst", columns, lines)


def _cpu(r: dict[str, Any], key: str) -> str:
    return fmt(r["cpu"].get(key, 0.0), 1)


def _best_table(report: dict[str, Any]) -> Any:
    best = [report["best"][kind] for kind in KINDS]

    def each(name: str, value: Callable[[dict[str, Any]], str]) -> tuple[str, ...]:
        return (name, *(value(r) for r in best))

    cpu_keys = [k for k in best[0]["cpu"] if k.endswith(" cpu s")]
    lines = [
        each("requests per second", lambda r: fmt(r["per_s"], 0)),
        ("ratio to the bare endpoint", "1", fmt(report["ratio_receiver_over_bare"], 3),
         fmt(report["ratio_held_receiver_over_bare"], 3),
         fmt(report["ratio_last_step_receiver_over_bare"], 3)),
        each("latency p50 / p95 / p99 ms", lambda r: " / ".join(
            fmt(r.get(f"latency_{p}_ms", 0), 1) for p in ("p50", "p95", "p99"))),
        each("SQL statements per request", lambda r: fmt(r["statements_per_request"], 2)),
        each("statements by thread", lambda r: _by_thread(r["statements"])),
        each("orchestrator passes in the burst", lambda r: str(r["passes"])),
        each("passes per callback", lambda r: fmt(r["passes_per_request"], 4)),
        each("pass requests", lambda r: f"{r['pass_requests'] + r.get('held_pass_requests', 0):,}"),
        each("database changes", lambda r: _changes(r["database_changes"])),
        *(each(f"CPU s: {k.removesuffix(' cpu s')}", lambda r, k=k: _cpu(r, k)) for k in cpu_keys),
    ]  # fmt: skip
    return table("Best burst", ("metric", *KINDS), lines)


def _by_thread(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v:,}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def _changes(changes: dict[str, int]) -> str:
    return ", ".join(f"{k} +{v:,}" for k, v in changes.items() if v)


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark("receivers", parse_args(argv), benchmark, render)


if __name__ == "__main__":
    sys.exit(main())
