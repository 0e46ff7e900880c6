"""The stand-in for the deployment: Modal containers, Supabase's transaction pooler and Clay on
one machine, each container an OS process with its own CloudRuntime and connection pool.

    with StandIn(admin_conninfo, StandInConfig(...), run_dir) as standin:
        batch = standin.upload()
        standin.wait_done(batch)
        figures = standin.figures(batch)

Set-up: a fresh database on the test server, migrated directly (not through PgBouncer) by the
code under test, with the Clay workflows' timeout_seconds shortened so a lease expires within a
run; PgBouncer in transaction mode in front of it; the Clay simulator process; the control plane
(Modal's queue, a thread here); then the receivers (`api`) process, the pass container(s), the
Steps containers and the sweeper, all with DATABASE_URL at PgBouncer and
DATABASE_POOLER=transaction (see deploy.py). The batch is uploaded through the api
(POST /batches), which requests the first pass. A container that dies unasked has its input
retried and is replaced.

Several batches may run one after another (`upload(seed=...)`): the simulator, the database and
so Clay's lifetime counts carry over. `redeploy(person_webhooks=3)` stops every container and
starts them again with longer webhook lists, as after adding a URL to the Modal secret; a batch
held for want of a webhook then goes on by itself (the new containers lift the hold).
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import requests
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from cloud import deploy
from cloud.activity import ActivitySampler
from cloud.config import Secrets, StandInConfig, base_env, simulator_argv, simulator_env
from cloud.control import RUN_STEP, ControlPlane, Run
from cloud.figures import KillRecord, RunFigures, Upload, gather_figures
from cloud.processes import Process, Processes
from support.pgbouncer import PgBouncer, PoolSampler, free_port, start_pgbouncer
from support.pipeline import apollo_csv

CLAY_SLUGS = ("enrich_company_via_waterfall_in_clay", "enrich_person_via_waterfall_in_clay")
LISTENING = re.compile(r"listening on (http://\S+)|POST rows to (http://[^/\s]+)")


class StandInError(RuntimeError):
    pass


def _conninfo_for(admin_conninfo: str, dbname: str) -> str:
    params = {k: str(v) for k, v in conninfo_to_dict(admin_conninfo).items() if v}
    params["dbname"] = dbname
    return make_conninfo("", **params)


class StandIn:
    def __init__(
        self,
        admin_conninfo: str,
        config: StandInConfig,
        run_dir: Path,
        *,
        pgbouncer_binary: str | None = None,
        say: Any = None,
    ) -> None:
        self.admin_conninfo = admin_conninfo
        self.config = config
        self.run_dir = run_dir
        self.pgbouncer_binary = pgbouncer_binary
        self.say = say or (lambda message: None)
        self.dbname = f"cloud_{secrets.token_hex(5)}"
        self.direct_url = _conninfo_for(admin_conninfo, self.dbname)
        self.secrets = Secrets()
        self.control = ControlPlane(retry_delay=config.retry_delay)
        self.processes = Processes(run_dir / "logs", {}, run_dir, on_death=self._died)
        self.bouncer: PgBouncer | None = None
        self.sampler: PoolSampler | None = None
        self.activity: ActivitySampler | None = None
        self.clay_url = ""
        self.receivers_port = 0
        self.receivers_url = ""
        self.generation = 0  # deploys after the first
        self.kill: KillRecord | None = None
        self.uploads: dict[UUID, Upload] = {}
        self.uploaded_at = 0.0  # of the last batch uploaded
        self.finished_at = 0.0
        self.outcome = "RUNNING"  # what wait_done saw last
        self.notes: list[str] = []
        self._replacements = 0
        self._created = False

    # ------------------------------------------------------------------ set-up

    def __enter__(self) -> StandIn:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        cfg = self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.processes.env = base_env(cfg, self.run_dir)
        self._create_database()
        self.say(f"database {self.dbname} migrated; starting PgBouncer")
        self.bouncer = start_pgbouncer(
            self.admin_conninfo,
            [self.dbname],
            binary=self.pgbouncer_binary,
            max_client_conn=cfg.max_client_conn,
            default_pool_size=cfg.default_pool_size,
            run_dir=self.run_dir / "pgbouncer",
        )
        self.sampler = PoolSampler(self.bouncer).__enter__()
        self.activity = ActivitySampler(self.direct_url, self.dbname).start()
        self.control.serve()
        self._start_clay()
        self.receivers_port = free_port()
        self.receivers_url = f"http://127.0.0.1:{self.receivers_port}"
        count = deploy.deploy(self)
        self.say(f"{count} container processes ready; PgBouncer on {self.bouncer.port}")

    def redeploy(
        self, company_webhooks: int | None = None, person_webhooks: int | None = None
    ) -> list[str]:
        """After adding webhook URLs to the Modal secret: every container stopped (SIGTERM)
        and started again with the longer lists (company-1.. and person-1.., the new ones
        after the old); Clay, the database and the queue live on. Returns the new names."""
        old = self.config
        config = dataclasses.replace(
            old,
            company_webhooks=old.company_webhooks if company_webhooks is None else company_webhooks,
            person_webhooks=old.person_webhooks if person_webhooks is None else person_webhooks,
        )
        if config.company_webhooks < old.company_webhooks or (
            config.person_webhooks < old.person_webhooks
        ):
            raise StandInError("a redeploy adds webhook URLs after the others; it removes none")
        held = self.holds()
        names = deploy.redeploy(self, config)
        self.notes.append(
            f"redeploy {self.generation} at {self._since_upload():.1f}s after the upload:"
            f" company {config.company_webhooks}, person {config.person_webhooks} webhook(s)"
            + (f"; held before: {held}" if held else "")
        )
        return names

    def _since_upload(self) -> float:
        return time.monotonic() - self.uploaded_at if self.uploaded_at else 0.0

    def _run_code(self, code: str, *args: str) -> None:
        """Python in the code under test's environment (its migrations, its registry)."""
        result = subprocess.run(
            [sys.executable, "-c", code, *args],
            env=base_env(self.config, self.run_dir),
            cwd=self.run_dir,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise StandInError(f"{code.splitlines()[0]} failed:\n{result.stderr[-3000:]}")

    def _create_database(self) -> None:
        with psycopg.connect(self.admin_conninfo, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.dbname}"'.encode())
        self._created = True
        migrate = (
            "import sys; from orchestrator.db.migrate import migrate_all\n"
            "migrate_all(sys.argv[1], sys.argv[1])"
        )
        self._run_code(migrate, self.direct_url)
        if self.config.clay_timeout_seconds is not None:
            with psycopg.connect(self.direct_url, autocommit=True) as conn:
                conn.execute(
                    "UPDATE db_driven_enrichment_workflows SET timeout_seconds = %s"
                    " WHERE provider = 'clay'",
                    (self.config.clay_timeout_seconds,),
                )

    def _start_clay(self) -> None:
        argv, notes = simulator_argv(self.config, self.secrets, self.run_dir)
        self.notes += notes
        env = simulator_env(self.config, self.run_dir)
        clay = self.processes.start("clay", "clay", argv, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = LISTENING.search(clay.log_path.read_text(errors="replace"))
            if found:
                self.clay_url = (found.group(1) or found.group(2)).rstrip("/")
                return
            if not clay.alive():
                break
            time.sleep(0.1)
        raise StandInError(f"the Clay simulator did not start:\n{clay.tail()}")

    def _died(self, process: Process) -> None:
        """A container died unasked: Modal retries its input and starts another container."""
        if process.role in ("clay",):
            self.notes.append(f"the Clay simulator died (exit {process.proc.returncode})")
            return
        retried = self.control.container_died(process.name)
        if retried is not None:
            self.notes.append(f"{process.name} died running {retried.id} ({retried.summary})")
        if self.config.respawn and process.role != "receivers":
            self._replacements += 1
            deploy.start_container(self, f"{process.name}-r{self._replacements}", process.role)

    # ------------------------------------------------------------------ a batch

    def upload(
        self, seed: int | None = None, rows: int | None = None, companies: int | None = None
    ) -> UUID:
        """Upload a batch through the api (the config's size and seed unless given); several
        may follow one another in one stand-in (give each its own seed)."""
        cfg = self.config
        seed = cfg.seed if seed is None else seed
        rows, companies = rows or cfg.rows, companies or cfg.companies
        data = apollo_csv(rows, companies, seed)
        clay_before = self.clay_stats()
        self.uploaded_at = time.monotonic()
        self.finished_at, self.outcome = 0.0, "RUNNING"
        response = requests.post(
            f"{self.receivers_url}/batches",
            files={"file": ("standin.csv", data, "text/csv")},
            data={"client": "standin"},
            headers={"x-api-key": self.secrets.api_key},
            timeout=120,
        )
        if response.status_code != 201:
            raise StandInError(f"upload refused: {response.status_code} {response.text[:500]}")
        batch = UUID(response.json()["batch_id"])
        self.uploads[batch] = Upload(batch, rows, companies, seed, self.uploaded_at, clay_before)
        self.say(f"uploaded batch {batch} ({rows} rows, seed {seed}); the api requested a pass")
        return batch

    def batch_status(self, batch: UUID) -> tuple[str, dict[str, int]]:
        with psycopg.connect(self.direct_url, autocommit=True) as conn:
            row = conn.execute("SELECT status FROM upload_batches WHERE id = %s", (batch,))
            status = str((row.fetchone() or ("?",))[0])
            counts = conn.execute(
                "SELECT status, count(*) FROM workflow_states WHERE batch_id = %s GROUP BY 1",
                (batch,),
            ).fetchall()
        return status, {str(s): int(n) for s, n in counts}

    def step_counts(self, batch: UUID) -> dict[tuple[str, str], int]:
        """Item-steps of the batch by (step, status)."""
        with psycopg.connect(self.direct_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT step_name, status, count(*) FROM workflow_states WHERE batch_id = %s"
                " GROUP BY 1, 2",
                (batch,),
            ).fetchall()
        return {(str(step), str(status)): int(n) for step, status, n in rows}

    def held(self) -> dict[str, str]:
        """Workflows on hold (every webhook spent) and why; {} where none (or no such table
        in the code under test)."""
        try:
            with psycopg.connect(self.direct_url, autocommit=True) as conn:
                rows = conn.execute("SELECT workflow_slug, reason FROM provider_holds").fetchall()
        except psycopg.errors.UndefinedTable:
            return {}
        return {str(slug): str(reason) for slug, reason in rows}

    def holds(self) -> list[str]:
        return [f"{slug}: {reason}" for slug, reason in self.held().items()]

    def wait_quiet(self, quiet: float = 5.0, timeout: float = 120.0) -> dict[str, Any]:
        """Until Clay received nothing for `quiet` seconds; returns its stats then."""
        deadline = time.monotonic() + timeout
        stats = self.clay_stats()
        still_since = time.monotonic()
        while True:
            time.sleep(0.5)
            now, latest = time.monotonic(), self.clay_stats()
            if latest.get("received") != stats.get("received"):
                stats, still_since = latest, now
            elif now - still_since >= quiet:
                return latest
            if now > deadline:
                raise StandInError(f"Clay still receiving after {timeout}s: {latest}")

    def wait_done(self, batch: UUID, timeout: float | None = None) -> str:
        """Until the batch is no longer RUNNING; returns its status. A batch that stopped
        moving while a workflow is on hold returns "HELD" (it waits for a new webhook)."""
        deadline = time.monotonic() + (timeout or self.config.batch_timeout)
        upload = self.uploads.get(batch)
        t0 = upload.uploaded_at if upload else self.uploaded_at
        last_said = 0.0
        last_counts: dict[str, int] = {}
        moved = time.monotonic()
        while True:
            status, counts = self.batch_status(batch)
            now = time.monotonic()
            if status != "RUNNING":
                self._ended(batch, now, status)
                self.say(f"batch {status} after {now - t0:.1f}s")
                return status
            if counts != last_counts:
                last_counts, moved = counts, now
            if now - last_said >= 10:
                last_said = now
                self.say(f"  {now - t0:5.0f}s item-steps {counts}")
            if now - moved > 3 * self.config.sweep_interval + 5 and (held := self.holds()):
                self._ended(batch, now, "HELD")
                self.notes += [f"held {now - t0:.1f}s after the upload: {h}" for h in held]
                self.say(f"batch HELD after {now - t0:.1f}s: {held}")
                return "HELD"
            for p in self.processes.all:
                if p.role == "clay" and not p.alive():
                    raise StandInError(f"the Clay simulator died:\n{p.tail()}")
            if self.bouncer is not None and not self.bouncer.alive():
                raise StandInError(f"PgBouncer died:\n{self.bouncer.log_text()[-3000:]}")
            if now > deadline:
                raise StandInError(f"batch {batch} still RUNNING: item-steps {counts}")
            time.sleep(0.5)

    def _ended(self, batch: UUID, now: float, status: str) -> None:
        self.finished_at, self.outcome = now, status
        if (upload := self.uploads.get(batch)) is not None:
            upload.finished_at, upload.outcome = now, status

    def kill_during_clay_send(self, min_running: float = 0.5, timeout: float = 120.0) -> KillRecord:
        """SIGKILL the Steps container that has been running a Clay send input the longest
        (at least `min_running` seconds, so it is past its claim and sending)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            candidates = [
                (name, run)
                for name, run in self.control.running().items()
                if run.function == RUN_STEP
                and run.step_name in CLAY_SLUGS
                and time.monotonic() - run.started >= min_running
            ]
            if candidates:
                name, run = min(candidates, key=lambda c: c[1].started)
                process = next(p for p in self.processes.all if p.name == name)
                self._kill(process, run)
                assert self.kill is not None
                return self.kill
            time.sleep(0.05)
        raise StandInError(f"no Clay send input ran {min_running}s within {timeout}s")

    def _kill(self, process: Process, run: Run) -> None:
        clay_before = self.clay_stats().get("accepted")
        self.processes.kill(process)
        self.kill = KillRecord(
            process.name,
            run.input_id,
            run.summary,
            round(time.monotonic() - run.started, 2),
            round(time.monotonic() - self.uploaded_at, 2),
            clay_before,
        )
        self.say(f"SIGKILLed {process.name} {run.summary} after {self.kill.running_s}s")

    def clay_stats(self) -> dict[str, Any]:
        try:
            response = requests.get(f"{self.clay_url}/stats", timeout=5)
        except requests.RequestException:
            return {}
        return dict(response.json()) if response.ok else {}

    def figures(self, batch: UUID) -> RunFigures:
        return gather_figures(self, batch)

    # ------------------------------------------------------------------ tear-down

    def close(self) -> None:
        containers = [p for p in self.processes.all if p.role not in ("clay", "receivers")]
        self.processes.stop(containers)
        self.processes.stop([p for p in self.processes.all if p.role == "receivers"])
        self.processes.stop_all()
        self.control.close()
        if self.sampler is not None:
            self.sampler.__exit__(None, None, None)
        if self.activity is not None:
            self.activity.stop()
        if self.bouncer is not None:
            self.bouncer.stop()
        if self._created:
            with psycopg.connect(self.admin_conninfo, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)'.encode())
