"""PgBouncer in front of the test PostgreSQL: Supabase's transaction pooler on one machine.

`running_pgbouncer(server_conninfo, ["db1", ...])` starts Debian's `pgbouncer` on a free
loopback port with a generated ini (pool_mode=transaction, default_pool_size=15 as Supabase's
smallest plan, a small max_client_conn so exceeding it fails loudly), one `[databases]` entry
per database, forwarding to the server of `server_conninfo` (TCP host/port or a Unix socket
directory). PgBouncer refuses to run as root: as root it is started with `-u` as the owner of
the server's socket directory (the embedded server) or as `postgres`/`nobody`.

`PgBouncer.pools()`, `.stats()`, `.clients()` query the admin console (database `pgbouncer`);
`.refusals()` lists the log lines of clients it turned away; `PoolSampler` keeps the peaks of
SHOW POOLS while a run goes on. The `pgbouncer_binary` fixture skips, with one line saying why,
when no pgbouncer is installed; the `pgbouncer` fixture yields one in front of the test
server's own database.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

CANDIDATES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer")
INSTALL_HINT = "apt-get install -y pgbouncer (.ci/run installs it)"
# Every error PgBouncer itself sends a client (max_client_conn reached, query_wait_timeout,
# client_login_timeout, a server login failure...) is logged as a "pooler error" warning
# (log_pooler_errors = 1), next to a "closing because" line of the same client.
REFUSAL_MARK = "pooler error"
DEFAULT_POOL_SIZE = 15  # Supabase's transaction pooler on the smallest compute: 15 per database
DEFAULT_MAX_CLIENT_CONN = 200  # ... and 200 clients


def find_pgbouncer() -> str | None:
    found = shutil.which("pgbouncer")
    if found:
        return found
    return next((c for c in CANDIDATES if os.access(c, os.X_OK)), None)


def missing_reason() -> str:
    return (
        f"PgBouncer not found (looked on PATH and in {', '.join(CANDIDATES)}):"
        f" the cloud stand-in needs it; install it with {INSTALL_HINT}"
    )


@pytest.fixture(scope="session")
def pgbouncer_binary() -> str:
    """The pgbouncer executable, or a skip with one line saying why."""
    binary = find_pgbouncer()
    if binary is None:
        pytest.skip(missing_reason())
    return binary


@pytest.fixture
def pgbouncer(pg_server: Any, pgbouncer_binary: str, tmp_path: Path) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode in front of the test server's own database (the one
    `pg_server.admin_conninfo` names); its log in `tmp_path/pgbouncer`."""
    dbname = str(conninfo_to_dict(pg_server.admin_conninfo).get("dbname") or "postgres")
    with running_pgbouncer(
        pg_server.admin_conninfo, [dbname], binary=pgbouncer_binary, run_dir=tmp_path / "pgbouncer"
    ) as bouncer:
        yield bouncer


@dataclass(frozen=True)
class Upstream:
    """Where PgBouncer forwards: the test server's host (or socket directory), port, user."""

    host: str
    port: int
    user: str
    password: str | None

    @classmethod
    def from_conninfo(cls, conninfo: str) -> Upstream:
        params = conninfo_to_dict(conninfo)
        host = str(params.get("host") or "/var/run/postgresql").split(",")[0]
        port = int(str(params.get("port") or 5432).split(",")[0])
        user = str(params.get("user") or pwd.getpwuid(os.getuid()).pw_name)
        password = params.get("password")
        return cls(host, port, user, None if password is None else str(password))

    @property
    def socket_dir(self) -> Path | None:
        return Path(self.host) if self.host.startswith("/") else None

    def database_line(self, dbname: str) -> str:
        parts = [f"host={self.host}", f"port={self.port}", f"dbname={dbname}", f"user={self.user}"]
        if self.password:
            parts.append(f"password={self.password}")
        return f"{dbname} = {' '.join(parts)}"


def _run_as(upstream: Upstream) -> str | None:
    """The user to drop to when we are root (PgBouncer refuses to run as root)."""
    if os.geteuid() != 0:
        return None
    if upstream.socket_dir is not None:
        # Only the owner may enter the embedded server's socket directory (its data dir).
        owner = pwd.getpwuid(upstream.socket_dir.stat().st_uid).pw_name
        if owner != "root":
            return owner
    for name in ("postgres", "nobody"):
        with suppress(KeyError):
            return pwd.getpwnam(name).pw_name
    raise RuntimeError("running as root and no user to run PgBouncer as (postgres, nobody)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def render_ini(
    upstream: Upstream,
    databases: Sequence[str],
    *,
    port: int,
    run_dir: Path,
    max_client_conn: int,
    default_pool_size: int,
    pool_mode: str,
) -> str:
    entries = "\n".join(upstream.database_line(name) for name in databases)
    return f"""[databases]
{entries}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
pidfile = {run_dir / "pgbouncer.pid"}
auth_type = trust
auth_file = {run_dir / "userlist.txt"}
admin_users = {upstream.user}
stats_users = {upstream.user}
pool_mode = {pool_mode}
default_pool_size = {default_pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = {max_client_conn}
max_db_connections = 0
server_reset_query =
server_check_delay = 30
query_wait_timeout = 120
client_login_timeout = 60
; psycopg sends none of these; JDBC and psycopg2 do. Listed so a tool attaching for a look works.
ignore_startup_parameters = extra_float_digits
log_connections = 1
log_disconnections = 1
log_pooler_errors = 1
stats_period = 10
"""


@dataclass
class PgBouncer:
    proc: subprocess.Popen[bytes]
    port: int
    run_dir: Path  # its configuration, pid file and auth file
    log_path: Path
    upstream: Upstream
    databases: tuple[str, ...]
    max_client_conn: int
    default_pool_size: int
    pool_mode: str
    _log: IO[bytes] | None = field(default=None, repr=False)

    def conninfo(self, dbname: str) -> str:
        params = {"host": "127.0.0.1", "port": str(self.port), "dbname": dbname}
        params["user"] = self.upstream.user
        return make_conninfo("", **params)

    def url(self, dbname: str) -> str:
        """A URL (what DATABASE_URL holds); no password: auth_type is trust."""
        return f"postgresql://{self.upstream.user}@127.0.0.1:{self.port}/{dbname}"

    def admin(self, command: str) -> list[dict[str, Any]]:
        """A SHOW command on the admin console (a connection of its own, autocommit)."""
        with psycopg.connect(
            self.conninfo("pgbouncer"), autocommit=True, connect_timeout=5, row_factory=dict_row
        ) as conn:
            return [dict(r) for r in conn.execute(command.encode()).fetchall()]

    def pools(self) -> list[dict[str, Any]]:
        return [p for p in self.admin("SHOW POOLS") if p["database"] != "pgbouncer"]

    def stats(self) -> list[dict[str, Any]]:
        return [s for s in self.admin("SHOW STATS") if s["database"] != "pgbouncer"]

    def clients(self) -> list[dict[str, Any]]:
        return [c for c in self.admin("SHOW CLIENTS") if c["database"] != "pgbouncer"]

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def refusals(self) -> list[str]:
        """Log lines of clients turned away or given up on (empty: nobody was refused)."""
        return [line for line in self.log_text().splitlines() if REFUSAL_MARK in line]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.log_path.parent != self.run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)


def _wait_listening(bouncer: PgBouncer, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if bouncer.proc.poll() is not None:
            raise RuntimeError(f"pgbouncer exited at start:\n{bouncer.log_text()[-3000:]}")
        try:
            bouncer.admin("SHOW VERSION")
            return
        except psycopg.Error as exc:
            last = exc
            time.sleep(0.1)
    raise TimeoutError(f"pgbouncer did not answer on port {bouncer.port}: {last}")


def start_pgbouncer(
    server_conninfo: str,
    databases: Sequence[str],
    *,
    binary: str | None = None,
    max_client_conn: int = DEFAULT_MAX_CLIENT_CONN,
    default_pool_size: int = DEFAULT_POOL_SIZE,
    pool_mode: str = "transaction",
    run_dir: Path | None = None,
) -> PgBouncer:
    """Start PgBouncer for `databases` of the server `server_conninfo` points at; its log goes
    to `run_dir` (default: with its configuration, in a temporary folder)."""
    binary = binary or find_pgbouncer()
    if binary is None:
        raise FileNotFoundError(missing_reason())
    upstream = Upstream.from_conninfo(server_conninfo)
    # Its own files live in a fresh folder under the system's temporary directory, which the
    # user it drops to can reach (a pytest tmp_path under /tmp/pytest-of-root cannot be).
    conf_dir = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    log_dir = run_dir or conf_dir
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    ini = conf_dir / "pgbouncer.ini"
    ini.write_text(
        render_ini(
            upstream,
            databases,
            port=port,
            run_dir=conf_dir,
            max_client_conn=max_client_conn,
            default_pool_size=default_pool_size,
            pool_mode=pool_mode,
        )
    )
    password = upstream.password or ""
    (conf_dir / "userlist.txt").write_text(f'"{upstream.user}" "{password}"\n')
    argv = [binary]
    user = _run_as(upstream)
    if user is not None:
        argv += ["-u", user]
        entry = pwd.getpwnam(user)
        for path in (conf_dir, ini, conf_dir / "userlist.txt"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    argv.append(str(ini))
    log_path = log_dir / "pgbouncer.log"
    log = log_path.open("ab")
    # Its log goes to stderr, which is this file (opened by us: it may drop privileges).
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=conf_dir)
    bouncer = PgBouncer(
        proc,
        port,
        conf_dir,
        log_path,
        upstream,
        tuple(databases),
        max_client_conn,
        default_pool_size,
        pool_mode,
        log,
    )
    try:
        _wait_listening(bouncer)
    except BaseException:
        bouncer.stop()
        raise
    return bouncer


@contextmanager
def running_pgbouncer(
    server_conninfo: str, databases: Sequence[str], **options: Any
) -> Iterator[PgBouncer]:
    bouncer = start_pgbouncer(server_conninfo, databases, **options)
    try:
        yield bouncer
    finally:
        bouncer.stop()


# --------------------------------------------------------------------------- while a run goes on


@dataclass
class PoolPeaks:
    """The highest SHOW POOLS figures seen, over every database of the bouncer."""

    samples: int = 0
    cl_active: int = 0
    cl_waiting: int = 0
    sv_active: int = 0
    sv_total: int = 0
    maxwait_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    def add(self, pools: Sequence[dict[str, Any]]) -> None:
        self.samples += 1
        self.cl_active = max(self.cl_active, sum(int(p["cl_active"]) for p in pools))
        self.cl_waiting = max(self.cl_waiting, sum(int(p["cl_waiting"]) for p in pools))
        self.sv_active = max(self.sv_active, sum(int(p["sv_active"]) for p in pools))
        servers = sum(
            int(p[k]) for p in pools for k in ("sv_active", "sv_idle", "sv_used", "sv_tested")
        )
        self.sv_total = max(self.sv_total, servers)
        for p in pools:
            wait = int(p["maxwait"]) + int(p.get("maxwait_us") or 0) / 1e6
            self.maxwait_s = max(self.maxwait_s, wait)


class PoolSampler:
    """Samples SHOW POOLS on a thread: peaks of clients, waiting clients and their wait."""

    def __init__(self, bouncer: PgBouncer, interval: float = 0.25) -> None:
        self.bouncer = bouncer
        self.interval = interval
        self.peaks = PoolPeaks()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pool-sampler", daemon=True)

    def __enter__(self) -> PoolSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.peaks.add(self.bouncer.pools())
            except psycopg.Error as exc:  # kept, not raised: the run's figures say so
                if len(self.peaks.errors) < 20:
                    self.peaks.errors.append(f"{type(exc).__name__}: {exc}".strip())


def stats_summary(bouncer: PgBouncer) -> dict[str, int]:
    """SHOW STATS totals over the bouncer's databases (times in microseconds)."""
    keys = ("total_xact_count", "total_query_count", "total_wait_time", "total_xact_time")
    totals = dict.fromkeys(keys, 0)
    for row in bouncer.stats():
        for key in keys:
            totals[key] += int(row.get(key) or 0)
    return totals
