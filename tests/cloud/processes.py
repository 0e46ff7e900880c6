"""The stand-in's OS processes: start each with its log file, watch them, stop them, read logs.

`Processes` starts a process whose stdout and stderr go to `<run dir>/logs/<name>.log`; its
watcher thread notices a container that died without being asked (SIGKILL, a crash) and calls
back (the harness then retries its input through the control plane and, as Modal would, starts
a replacement). `scan_log` counts what a log must not hold: tracebacks, statement errors.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


@dataclass
class Process:
    name: str
    role: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    started: float = field(default_factory=time.monotonic)
    # We asked it to stop (or killed it on purpose): its exit is no crash to recover from.
    stopping: bool = False
    exit_seen: bool = False
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            with self.log_path.open(encoding="utf-8", errors="replace") as fh:
                return "".join(deque(fh, maxlen=lines))
        except OSError as exc:
            return f"(no log: {exc})"

    def close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class Processes:
    """Processes of one run; `on_death(process)` is called for one that died unasked."""

    def __init__(
        self,
        log_dir: Path,
        env: dict[str, str],
        cwd: Path,
        on_death: Callable[[Process], None] | None = None,
    ) -> None:
        self.log_dir = log_dir
        self.env = env
        self.cwd = cwd
        self.on_death = on_death
        self.all: list[Process] = []
        self.events: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="watcher", daemon=True)
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(
        self,
        name: str,
        role: str,
        argv: list[str],
        env: dict[str, str] | None = None,
        stdout: int | None = None,
    ) -> Process:
        log_path = self.log_dir / f"{name}.log"
        log = log_path.open("ab")
        proc = subprocess.Popen(
            argv,
            stdout=log if stdout is None else stdout,
            stderr=log,
            env={**self.env, **(env or {})},
            cwd=self.cwd,
            start_new_session=True,  # a Ctrl-C of the harness reaches it through us only
        )
        process = Process(name, role, proc, log_path, _log=log)
        with self._lock:
            self.all.append(process)
            self.events.append(f"{self._clock()} started {name} ({role}, pid {proc.pid})")
        if not self._watcher.is_alive() and not self._stop.is_set():
            self._watcher.start()
        return process

    def _clock(self) -> str:
        return time.strftime("%H:%M:%S")

    def by_role(self, role: str) -> list[Process]:
        return [p for p in self.all if p.role == role and p.alive()]

    def kill(self, process: Process, sig: int = signal.SIGKILL) -> None:
        """Kill on purpose; the watcher still reports it (that is the point of a kill test)."""
        with self._lock:
            self.events.append(f"{self._clock()} sent signal {sig} to {process.name}")
        os.kill(process.pid, sig)

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            with self._lock:
                dead = [p for p in self.all if not p.exit_seen and p.proc.poll() is not None]
                for p in dead:
                    p.exit_seen = True
                    self.events.append(
                        f"{self._clock()} {p.name} exited with {p.proc.returncode}"
                        + ("" if p.stopping else " (unasked)")
                    )
            for p in dead:
                if not p.stopping and self.on_death is not None:
                    self.on_death(p)

    def stop(self, processes: Iterable[Process], timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL whatever is left after `timeout`."""
        targets = [p for p in processes if p.alive()]
        for p in targets:
            p.stopping = True
            with contextlib.suppress(ProcessLookupError):
                p.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in targets:
            try:
                p.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                with self._lock:
                    self.events.append(f"{self._clock()} {p.name} ignored SIGTERM: SIGKILL")
                p.proc.kill()
                p.proc.wait(timeout=10)

    def stop_all(self, timeout: float = 20.0) -> None:
        for p in self.all:
            p.stopping = True
        self._stop.set()
        self.stop(self.all, timeout)
        for p in self.all:
            p.close_log()

    def tails(self, lines: int = 30) -> str:
        return "\n".join(
            f"----- {p.name} ({p.role}, pid {p.pid}, exit {p.proc.poll()}): {p.log_path}\n"
            + p.tail(lines)
            for p in self.all
        )


# --------------------------------------------------------------------------- log scanning

TRACEBACK = "Traceback (most recent call last)"
PREPARED = "prepared statement"
# psycopg's exceptions as a traceback ends them: psycopg.errors.X: ... or psycopg.X: ...
STATEMENT_ERROR = re.compile(r"\bpsycopg(?:\.errors)?\.[A-Z]\w*: ")
ERROR_LEVEL = re.compile(r"(?:^| )(?:ERROR|CRITICAL)[: ]")
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Violation|Timeout)\w*: .+")


@dataclass
class LogScan:
    name: str
    lines: int = 0
    tracebacks: int = 0
    prepared_statement: int = 0
    statement_errors: int = 0
    error_lines: int = 0
    samples: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.tracebacks or self.prepared_statement or self.statement_errors)

    def describe(self) -> str:
        figures = (
            f"{self.tracebacks} tracebacks, {self.statement_errors} statement errors"
            f" ({self.prepared_statement} 'prepared statement'), {self.error_lines} ERROR lines"
        )
        return figures + "".join(f"\n      {s}" for s in self.samples)


def scan_log(name: str, path: Path, max_samples: int = 4) -> LogScan:
    scan = LogScan(name)
    seen: set[str] = set()
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return scan
    for line in text.splitlines():
        scan.lines += 1
        scan.tracebacks += TRACEBACK in line
        scan.prepared_statement += PREPARED in line
        scan.statement_errors += bool(STATEMENT_ERROR.search(line))
        scan.error_lines += bool(ERROR_LEVEL.search(line))
        stripped = line.strip()
        if EXCEPTION_LINE.match(stripped) or STATEMENT_ERROR.search(stripped):
            # One sample per kind of error, numbers masked so "_pg3_6" and "_pg3_7" are one.
            key = re.sub(r"\d+", "N", stripped)[:120]
            if key not in seen and len(scan.samples) < max_samples:
                seen.add(key)
                scan.samples.append(stripped[:200])
    return scan
