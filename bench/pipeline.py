"""The whole default play on LocalService, with the Clay simulator answering at once.

    python bench/pipeline.py [--rows 10000] [--companies 2000] [--repeat 2]
                             [--simulator-thread | --compare-simulators]
                             [--callback-concurrency 32] [--profile] [--json]

A generated Apollo file (no duplicate rows, so one person per row) is uploaded and driven
through normalize -> split -> Clay company -> Clay person -> consolidate by the local runtime;
Clay is the built-in simulator with no rate limit and no delay, running as
`python -m orchestrator.providers.simulators.clay` in a process of its own (default: Clay is
outside our system and must not compete for our process's GIL) or, with `--simulator-thread`,
as threads of this process. The simulator has `--callback-concurrency` callbacks in flight at
once, as a Clay HTTP-API column runs many rows in parallel. `--compare-simulators` runs both modes,
alternating, and prints them side by side. Each run is repeated `--repeat` times (best
reported); `--profile` adds one run under py-spy (not timed) and prints the hot functions.

SQL statements outside the receivers are counted directly: every statement counted by
`orchestrator.db.pool.STATEMENTS` is attributed to the thread that issued it (receivers run in
Starlette's "AnyIO worker thread"s and store results through the "callback-writer" thread's
group commits, step functions run in "step_*" threads, passes in the "orchestrator" thread),
so receiver statements are subtracted exactly rather than estimated.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from common import (
    BenchServer,
    CallbackTap,
    CpuMeter,
    ExternalSimulator,
    MachineState,
    Runs,
    SqlTimer,
    StatementsByThread,
    bench_parser,
    bench_server,
    checkpoint,
    delete_batch,
    external_clay,
    fmt,
    log,
    machine_state,
    parse_counts,
    rows,
    run_benchmark,
    sample_json,
    source_fingerprint,
    table,
    upload_file,
    write_sample,
)
from entities.apollo_sample import SampleStats
from orchestrator.db.pool import Databases
from orchestrator.providers.simulators.clay import SimulatorConfig
from orchestrator.runtimes.service import LocalService
from orchestrator.settings import Settings
from orchestrator.state.registry import DEFAULT_PLAY

RECEIVER_ROLE = "receivers"
MODE_LABELS = {
    "thread": "simulator in this process",
    "process": "simulator in its own process",
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__, "runs per mode; best is reported")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--companies", type=int, default=2_000)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--simulator-thread", action="store_true", help="simulator in this process's threads"
    )
    mode.add_argument("--compare-simulators", action="store_true", help="both modes, alternating")
    parser.add_argument("--workers", type=int, default=None, help="dispatch_workers (default 4)")
    parser.add_argument(
        "--callback-concurrency",
        type=int,
        default=32,
        help="callbacks the Clay simulator has in flight at once (Clay's HTTP-API column runs"
        " many rows in parallel)",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    parser.add_argument("--profile", action="store_true", help="one extra run under py-spy")
    parser.add_argument("--profile-rate", type=int, default=100, help="py-spy samples/second")
    return parse_counts(parser, argv, "rows")


def modes_of(args: argparse.Namespace) -> list[str]:
    if args.compare_simulators:
        return ["thread", "process"]
    return ["thread"] if args.simulator_thread else ["process"]


# --------------------------------------------------------------------------- Clay simulator


@dataclass
class Harness:
    service: LocalService
    external: ExternalSimulator | None


@contextmanager
def running_service(
    settings: Settings, dbs: Databases, mode: str, callback_concurrency: int
) -> Iterator[Harness]:
    if mode == "thread":
        # No rate limit, no delay.
        config = SimulatorConfig(record_history=False, callback_workers=callback_concurrency)
        with LocalService(settings, dbs, simulator=config) as service:
            yield Harness(service, None)
        return
    with (
        external_clay(settings, "--workers", str(callback_concurrency)) as (
            external,
            clay_settings,
        ),
        LocalService(clay_settings, dbs) as service,
    ):
        assert service.simulator is None, "the gateway should point at the process"
        yield Harness(service, external)


# --------------------------------------------------------------------------- facts


def step_timeline(conninfo: str, batch_id: object) -> list[dict[str, Any]]:
    return rows(
        conninfo,
        "SELECT ws.step_number, ws.step_name, count(*) AS rows,"
        " count(*) FILTER (WHERE ws.status = 'COMPLETED') AS completed,"
        " count(*) FILTER (WHERE ws.status = 'FAILED') AS failed,"
        " count(*) FILTER (WHERE ws.status IN ('COMPLETED', 'FAILED')"
        "   AND ws.finished_at IS NULL) AS finished_without_finished_at,"
        " extract(epoch FROM min(ws.started_at) - b.created_at)::float AS first_start_s,"
        " extract(epoch FROM max(ws.finished_at) - b.created_at)::float AS last_finish_s"
        " FROM workflow_states ws JOIN upload_batches b ON b.id = ws.batch_id"
        " WHERE ws.batch_id = %s GROUP BY ws.step_number, ws.step_name, b.created_at"
        " ORDER BY ws.step_number",
        (batch_id,),
    )


def dispatch_counts(conninfo: str, batch_id: object) -> dict[str, dict[str, int]]:
    found = rows(
        conninfo,
        "SELECT entity_type, status, count(*) AS n FROM entity_dispatches WHERE batch_id = %s"
        " GROUP BY 1, 2 ORDER BY 1, 2",
        (batch_id,),
    )
    out: dict[str, dict[str, int]] = {}
    for r in found:
        out.setdefault(r["entity_type"], {})[r["status"]] = int(r["n"])
    return out


def entity_counts(conninfo: str, batch_id: object) -> dict[str, int]:
    found = rows(
        conninfo,
        "SELECT (SELECT count(*) FROM normalized_companies WHERE batch_id = %(b)s) AS companies,"
        " (SELECT count(*) FROM normalized_people WHERE batch_id = %(b)s) AS people,"
        " (SELECT count(*) FROM final_leads WHERE batch_id = %(b)s) AS final_leads",
        {"b": batch_id},
    )
    return {k: int(v) for k, v in found[0].items()}


# --------------------------------------------------------------------------- one run


@dataclass
class Counters:
    statements: StatementsByThread
    callbacks: CallbackTap
    passes: int
    requests: int


def _clay_calls(harness: Harness, external_summary: dict[str, int]) -> dict[str, int]:
    sim = harness.service.simulator
    if sim is not None:
        return {
            "company": sim.submission_count("company"),
            "person": sim.submission_count("person"),
            "total": sim.submission_count(),
            "callbacks sent": sim.callbacks_sent,
        }
    return {
        "total": external_summary.get("accepted", -1),
        "callbacks sent": external_summary.get("sent", -1),
    }


def _timed_run(
    harness: Harness, dbs: Databases, path: Path, timeout: float, cpu: CpuMeter
) -> tuple[Any, dict[str, float], Counters]:
    runtime = harness.service.runtime
    statements, callbacks = StatementsByThread(), CallbackTap()
    passes, requests_before = runtime.trigger.passes, runtime.trigger.requests
    with callbacks.installed(), statements.measure():
        cpu.start()
        started = time.perf_counter()
        upload = upload_file(dbs, path, DEFAULT_PLAY)
        uploaded = time.perf_counter()
        progress = runtime.run_batch(upload.batch_id, timeout=timeout)
        finished = time.perf_counter()
        cpu_used = cpu.stop()
    assert progress.done, f"batch {upload.batch_id} is not done"
    counters = Counters(
        statements,
        callbacks,
        runtime.trigger.passes - passes,
        runtime.trigger.requests - requests_before,
    )
    timing = {"wall_s": finished - started, "upload_s": uploaded - started, **cpu_used}
    return upload.batch_id, timing, counters


def run_once(
    server: BenchServer,
    settings: Settings,
    dbs: Databases,
    path: Path,
    mode: str,
    args: argparse.Namespace,
) -> dict[str, Any]:
    checkpoint(server.conninfo)
    with running_service(settings, dbs, mode, args.callback_concurrency) as harness:
        extra = {"simulator process": harness.external.proc.pid} if harness.external else {}
        cpu = CpuMeter(server.postgres_pid, extra)
        batch_id, timing, counters = _timed_run(harness, dbs, path, args.timeout, cpu)
        summary = harness.external.stop() if harness.external else {}
        clay = _clay_calls(harness, summary)
    result = summarize(server.conninfo, batch_id, mode, timing, counters, clay)
    delete_batch(server.conninfo, batch_id)
    return result


def cost_per_enriched_row(timing: dict[str, float], enriched: int) -> dict[str, Any]:
    """CPU seconds of our process and Postgres (the simulator stands for Clay, outside our
    system, and is left out) per row that came out enriched (a final_leads row): what Modal
    and Supabase bill. None when the server's processes are not ours to measure."""
    postgres = timing.get("postgres cpu s")
    if postgres is None or enriched == 0:
        return {"enriched_rows": enriched, "cpu_ours_and_postgres_s": None,
                "cpu_s_per_enriched_row": None}  # fmt: skip
    ours = timing["bench process cpu s"] + postgres
    return {"enriched_rows": enriched, "cpu_ours_and_postgres_s": ours,
            "cpu_s_per_enriched_row": ours / enriched}  # fmt: skip


def summarize(
    conninfo: str,
    batch_id: object,
    mode: str,
    timing: dict[str, float],
    counters: Counters,
    clay: dict[str, int],
) -> dict[str, Any]:
    timeline = step_timeline(conninfo, batch_id)
    item_steps = sum(int(s["completed"]) + int(s["failed"]) for s in timeline)
    by_role = dict(counters.statements.counts)
    receivers = by_role.get(RECEIVER_ROLE, 0)
    total = counters.statements.total
    received = counters.callbacks.total
    wall = timing["wall_s"]
    result = {
        "mode": mode,
        "wall_s": wall,
        "timing": timing,
        "item_steps": item_steps,
        "item_steps_per_s": item_steps / wall,
        "statements_total": total,
        "statements_receivers": receivers,
        "statements_outside_receivers": total - receivers,
        "statements_per_item_step_outside_receivers": (total - receivers) / max(item_steps, 1),
        "statements_per_callback": receivers / max(received, 1),
        "statements_by_thread": by_role,
        "callbacks_received": received,
        "callback_statuses": dict(counters.callbacks.statuses),
        "passes": counters.passes,
        "pass_requests": counters.requests,
        "clay_calls": clay,
        "dispatches": dispatch_counts(conninfo, batch_id),
        "entities": entity_counts(conninfo, batch_id),
        "timeline": timeline,
    }
    result.update(cost_per_enriched_row(timing, result["entities"]["final_leads"]))
    log(
        f"  {MODE_LABELS[mode]}: {wall:.1f}s, {item_steps:,} item-steps"
        f" ({result['item_steps_per_s']:,.0f}/s), {counters.passes} passes,"
        f" {received:,} callbacks, {total:,} statements ({receivers:,} in receivers)"
        + _cost_phrase(result)
    )
    return result


# --------------------------------------------------------------------------- profiling


@contextmanager
def py_spy(out: Path, rate: int) -> Iterator[None]:
    """Sample this process with py-spy while the block runs: the thread holding the GIL, so the
    samples show where this process spends its one core of Python."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    argv = [
        exe, "record", "--pid", str(os.getpid()), "--rate", str(rate), "--format", "raw",
        "--nolineno", "--threads", "--nonblocking", "--gil", "--output", str(out),
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # attach
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        if proc.returncode not in (0, -signal.SIGINT) and not out.exists():
            raise RuntimeError(f"py-spy failed: {err[-2000:]}")


_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*)\)$")


def _frame_name(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    file = match["file"]
    for marker in ("site-packages/", "/src/", "python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{file}:{match['func']}"


def hotspots(raw: Path, top: int = 30) -> dict[str, Any]:
    """Cumulative and self sample counts per file:function from py-spy's raw (collapsed) output."""
    cumulative: Counter[str] = Counter()
    own: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        names = [_frame_name(f) for f in frames[1:]]  # frames[0] is the thread
        total += count
        threads[_thread_of(names)] += count
        for name in set(names):
            cumulative[name] += count
        if names:
            own[names[-1]] += count
    return {
        "samples": total,
        "by_thread_entry": threads.most_common(),
        "cumulative": cumulative.most_common(top),
        "self": own.most_common(top),
    }


def _thread_of(names: list[str]) -> str:
    """The thread's role, from its entry function (threads are not named in py-spy raw output)."""
    for name in names:
        for marker, role in (
            ("receive.py:_receive_checked", "receivers"),
            ("calls.py:execute_call", "step functions"),
            ("trigger.py:_loop", "orchestrator passes"),
            ("clay_gateway.py:_send_one", "clay sends"),
            ("simulators/clay/dispatcher.py:_deliver", "simulator callbacks"),
            ("socketserver.py:process_request_thread", "simulator http"),
            ("uvicorn", "uvicorn event loop"),
            ("runtimes/local.py:_sweep_forever", "sweeper"),
            ("pipeline.py:main", "main"),
        ):
            if marker in name:
                return role
    return "other"


def profile_run(
    server: BenchServer, settings: Settings, dbs: Databases, path: Path, mode: str, args: Any
) -> dict[str, Any]:
    out = Path(tempfile.mkstemp(prefix="bench-pipeline-", suffix=".pyspy.txt")[1])
    log(f"profiling one more run ({MODE_LABELS[mode]}) with py-spy -> {out}")
    timer = SqlTimer()
    with py_spy(out, args.profile_rate), timer.installed():
        result = run_once(server, settings, dbs, path, mode, args)
    profile = {"raw_file": str(out), "wall_s": result["wall_s"], **hotspots(out)}
    return {**profile, "sql": timer.top(25), "run": result}


# --------------------------------------------------------------------------- report


METHOD = (
    "Method: wall = upload start to the pass that finds the batch done; item-steps = rows of"
    " workflow_states finished (COMPLETED or FAILED); SQL statements are those counted by"
    " orchestrator.db.pool.STATEMENTS during the run, each attributed to the thread that sent it;"
    " 'outside the receivers' excludes the statements of Starlette's AnyIO worker threads, where"
    " the receiver runs its checked path, and of the callback-writer thread that stores"
    " their results in group commits (statements per callback is that count divided by"
    " the callbacks the route handled, a calibration of the subtraction). CPU s: this process"
    " and the Postgres server's processes (and the simulator process) over the run."
)


def render(console: Console, report: dict[str, Any]) -> None:
    sample = report["sample"]
    console.print(
        f"[bold]Pipeline[/]: {sample['rows']:,} items, {sample['distinct_domains']:,} companies,"
        f" {sample['distinct_people']:,} people; play {report['play']};"
        f" dispatch_workers={report['settings']['dispatch_workers']},"
        f" pool_max_size={report['settings']['pool_max_size']}; best of {report['repeat']}"
    )
    console.print(f"[bold]Server[/]: {report['server']['kind']}: {report['server']['version']}")
    console.print(f"[bold]Source[/]: {report['source']}")
    console.print(f"[bold]Machine before[/]: {report['machine_before']}")
    console.print(f"[bold]Machine after[/]:  {report['machine_after']}")
    console.print(_runs_table(report))
    console.print(_best_table(report))
    for mode, best in report["best"].items():
        console.print(_statements_table(mode, best))
        console.print(_timeline_table(mode, best))
    if "profile" in report:
        _render_profile(console, report["profile"])
    console.print(METHOD, style="dim")


def _runs_table(report: dict[str, Any]) -> Any:
    lines = [
        (
            MODE_LABELS[r["mode"]],
            fmt(r["wall_s"], 2),
            fmt(r["timing"]["upload_s"], 2),
            f"{r['item_steps']:,}",
            fmt(r["item_steps_per_s"], 0),
            fmt(r["statements_per_item_step_outside_receivers"], 3),
            r["passes"],
            f"{r['callbacks_received']:,}",
        )
        for runs in report["runs"].values()
        for r in runs
    ]
    columns = ("run", "wall s", "upload s", "item-steps", "item-steps/s", "SQL/item-step*",
               "passes", "callbacks")  # fmt: skip
    return table("Every run (* outside the receivers)", columns, lines)


def _cost_phrase(r: dict[str, Any]) -> str:
    per_row = r["cpu_s_per_enriched_row"]
    if per_row is None:
        return ""
    return (
        f", {r['cpu_ours_and_postgres_s']:.1f} CPU s ours + Postgres ="
        f" {per_row * 1000:.2f} ms per enriched row"
    )


def _best_metrics(r: dict[str, Any]) -> list[tuple[str, str]]:
    clay = r["clay_calls"]
    dispatched = {t: sum(s.values()) for t, s in r["dispatches"].items()}
    cpu = {k: v for k, v in r["timing"].items() if k.endswith("cpu s")}
    outside = r["statements_per_item_step_outside_receivers"]
    statuses = r["callback_statuses"]
    return [
        ("wall seconds (upload to done)", fmt(r["wall_s"], 2)),
        ("  of which upload", fmt(r["timing"]["upload_s"], 2)),
        ("item-steps finished", f"{r['item_steps']:,}"),
        ("item-steps per second", fmt(r["item_steps_per_s"], 0)),
        ("SQL statements, total", f"{r['statements_total']:,}"),
        ("SQL statements in receivers", f"{r['statements_receivers']:,}"),
        ("SQL per item-step outside receivers", fmt(outside, 3)),
        ("SQL per callback (receivers)", fmt(r["statements_per_callback"], 2)),
        ("orchestrator passes", str(r["passes"])),
        ("pass requests", f"{r['pass_requests']:,}"),
        ("callbacks handled by the receiver", f"{r['callbacks_received']:,} {statuses}"),
        ("Clay calls (simulator count)", " ".join(f"{k}={v:,}" for k, v in clay.items())),
        ("Clay dispatches (database)", " ".join(f"{k}={v:,}" for k, v in dispatched.items())),
        ("entities", " ".join(f"{k}={v:,}" for k, v in r["entities"].items())),
        *((f"CPU s: {k.removesuffix(' cpu s')}", fmt(v, 1)) for k, v in cpu.items()),
        ("CPU s: ours + Postgres", _or_dash(r["cpu_ours_and_postgres_s"], 1)),
        ("enriched rows (final_leads)", f"{r['enriched_rows']:,}"),
        ("CPU s per enriched row, ours + Postgres", _or_dash(r["cpu_s_per_enriched_row"], 5)),
    ]  # fmt: skip


def _or_dash(value: float | None, digits: int) -> str:
    return "-" if value is None else fmt(value, digits)


def _best_table(report: dict[str, Any]) -> Any:
    modes = list(report["best"])
    metrics = [_best_metrics(report["best"][m]) for m in modes]
    names = [name for name, _ in metrics[0]]
    for extra in metrics[1:]:
        names += [name for name, _ in extra if name not in names]
    by_mode = [dict(m) for m in metrics]
    lines = [(name, *(m.get(name, "-") for m in by_mode)) for name in names]
    if len(modes) == 2:
        a, b = (report["best"][m]["wall_s"] for m in modes)
        lines.append(("wall ratio (in-process / own process)", fmt(a / b, 2), ""))
    return table("Best run", ("metric", *(MODE_LABELS[m] for m in modes)), lines)


def _statements_table(mode: str, r: dict[str, Any]) -> Any:
    steps = max(r["item_steps"], 1)
    lines = [
        (role, f"{n:,}", fmt(n / steps, 3))
        for role, n in sorted(r["statements_by_thread"].items(), key=lambda kv: -kv[1])
    ]
    lines.append(("total", f"{r['statements_total']:,}", fmt(r["statements_total"] / steps, 3)))
    title = f"SQL statements by thread, best run, {MODE_LABELS[mode]}"
    return table(title, ("thread", "statements", "per item-step"), lines)


def _timeline_table(mode: str, r: dict[str, Any]) -> Any:
    lines = []
    for s in r["timeline"]:
        start, end = s["first_start_s"], s["last_finish_s"]
        span = (end - start) if start is not None and end is not None else None
        lines.append(
            (
                f"{s['step_number']} {s['step_name']}",
                f"{s['rows']:,}",
                f"{s['completed']:,}",
                f"{s['failed']:,}",
                "-" if start is None else fmt(start, 2),
                "-" if end is None else fmt(end, 2),
                "-" if span is None else fmt(span, 2),
                s["finished_without_finished_at"],
            )
        )
    columns = ("step", "rows", "completed", "failed", "first start s", "last finish s",
               "span s", "finished, no finished_at")  # fmt: skip
    title = f"Per-step timeline (seconds since the batch row was created), {MODE_LABELS[mode]}"
    return table(title, columns, lines)


def _render_profile(console: Console, profile: dict[str, Any]) -> None:
    total = max(profile["samples"], 1)
    console.print(
        f"[bold]py-spy[/]: {profile['samples']:,} samples of the thread holding the GIL over a"
        f" {profile['wall_s']:.1f}s run (raw stacks: {profile['raw_file']})"
    )
    columns = ("function", "samples", "share")
    for key, title in (
        ("by_thread_entry", "Samples by thread role"),
        ("cumulative", "Top functions by cumulative samples"),
        ("self", "Top functions by self (leaf) samples"),
    ):
        lines = [(name, f"{n:,}", f"{100 * n / total:.1f}%") for name, n in profile[key]]
        console.print(table(title, columns, lines))
    sql = [(q["query"], f"{q['calls']:,}", fmt(q["total_s"], 1), fmt(q["mean_ms"], 2))
           for q in profile["sql"]]  # fmt: skip
    title = "SQL by client-side time in the profiled run (round trip + lock waits + GIL)"
    console.print(table(title, ("query", "calls", "total s", "mean ms"), sql))


# --------------------------------------------------------------------------- main


def measure(
    server: BenchServer, args: argparse.Namespace, path: Path
) -> tuple[dict[str, Runs], dict[str, Any], Settings]:
    overrides = {} if args.workers is None else {"dispatch_workers": args.workers}
    settings = server.settings(**overrides)
    modes = modes_of(args)
    runs = {m: Runs("item_steps_per_s") for m in modes}
    with server.open(settings) as dbs:
        for i in range(args.repeat):
            for mode in modes:
                log(f"run {i + 1}/{args.repeat}, {MODE_LABELS[mode]}")
                runs[mode].runs.append(run_once(server, settings, dbs, path, mode, args))
        profile = profile_run(server, settings, dbs, path, modes[0], args) if args.profile else {}
    return runs, profile, settings


def benchmark(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    source = source_fingerprint()
    before: MachineState = machine_state()
    log(f"machine: {before.describe()}")
    path = tmp / "apollo.csv"
    stats: SampleStats = write_sample(
        path, args.rows, args.companies, email_only_fraction=0.01,
        underivable_fraction=0.002, duplicate_fraction=0.0,
    )  # fmt: skip
    with bench_server("pipeline") as server:
        runs, profile, settings = measure(server, args, path)
        server_json = server.to_json()
    after = machine_state()
    report: dict[str, Any] = {
        "benchmark": "pipeline",
        "play": DEFAULT_PLAY,
        "sample": sample_json(stats),
        "server": server_json,
        "settings": {
            "dispatch_workers": settings.dispatch_workers,
            "pool_max_size": settings.pool_max_size,
            "sweep_interval_seconds": settings.sweep_interval_seconds,
            "simulator": dataclasses.asdict(SimulatorConfig(record_history=False)),
        },
        "repeat": args.repeat,
        "source": source,
        "machine_before": before.describe(),
        "machine_after": after.describe(),
        "best": {m: r.best for m, r in runs.items()},
        "runs": {m: r.runs for m, r in runs.items()},
        "method": METHOD,
    }
    if profile:
        report["profile"] = profile
    return report


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark("pipeline", parse_args(argv), benchmark, render)


if __name__ == "__main__":
    sys.exit(main())
