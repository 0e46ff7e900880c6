"""What a stand-in run measured: Clay traffic, the database's dispatches, PgBouncer, the logs.

`gather_figures` reads them after the batch finished, while every process still runs; the
`RunFigures` it returns renders as text (`lines()`) and JSON (`to_json()`). Clay's figures are
the simulator's, over its whole life (every batch of the stand-in); `batch_clay` is what it
counted during this batch (from its upload to when the figures were read).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from cloud.activity import Activity, batch_rows
from cloud.processes import LogScan, scan_log
from support.pgbouncer import PoolPeaks, stats_summary

if TYPE_CHECKING:
    from cloud.harness import StandIn


@dataclass
class Upload:
    """One batch of the stand-in: what it was made of, and Clay's stats before it."""

    batch: UUID
    rows: int
    companies: int
    seed: int
    uploaded_at: float
    clay_before: dict[str, Any]
    finished_at: float = 0.0
    outcome: str = "RUNNING"


@dataclass(frozen=True)
class KillRecord:
    container: str
    input_id: str
    input: str
    running_s: float  # how long the input had run when it was killed
    at_s: float  # seconds after the upload
    clay_accepted_before: int | None


@dataclass
class RunFigures:
    batch_id: str
    batch_status: str
    rows: int
    wall_s: float
    containers: int
    companies: int  # unique entities of the batch
    people: int
    dispatched_entities: int  # entities with at least one dispatch
    dispatches: Counter[str]  # by status
    # Entities dispatched again before the previous dispatch's lease expired (must be none),
    # and again after it (legitimate: recovery after a lease expired).
    early_redispatches: list[dict[str, Any]]
    late_redispatches: int
    item_steps: dict[str, int]
    entity_states: dict[str, int]
    failure_reasons: list[tuple[str, int]]
    clay: dict[str, Any]
    pool_peaks: PoolPeaks
    pool_stats: dict[str, int]
    refusals: list[str]
    pgbouncer_clients_at_end: int
    server_activity: Activity
    logs: list[LogScan]
    spawned: dict[str, int]
    runs_by_container: dict[str, int]
    retried_inputs: int
    gave_up: list[str]
    events: list[str]
    verify_rc: int
    verify_output: str
    kill: KillRecord | None = None
    notes: list[str] = field(default_factory=list)
    # Clay's counts during this batch (its lifetime ones less those before its upload).
    batch_clay: dict[str, Any] = field(default_factory=dict)
    holds: dict[str, str] = field(default_factory=dict)  # at the time the figures were read

    # ------------------------------------------------------------------ derived

    @property
    def unique_entities(self) -> int:
        return self.companies + self.people

    @property
    def clay_received(self) -> int:
        return int(self.clay.get("received") or 0)

    @property
    def clay_accepted(self) -> int:
        return int(self.clay.get("accepted") or 0)

    @property
    def rejected(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in (self.clay.get("rejected") or {}).items()}

    @property
    def rejected_429(self) -> int:
        return self.rejected.get("429", 0)

    @property
    def share_429(self) -> float:
        return self.rejected_429 / self.clay_received if self.clay_received else 0.0

    @property
    def rejected_410(self) -> int:
        """Clay's lifetime refusal (a webhook past its limit): our side must never cause it."""
        return self.rejected.get("410", 0)

    @property
    def duplicates(self) -> int:
        return int(self.clay.get("duplicates") or 0)

    @property
    def accepted_by_webhook(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in (self.clay.get("accepted_by_webhook") or {}).items()}

    @property
    def lifetime_limit(self) -> int | None:
        limit = self.clay.get("webhook_lifetime_limit")
        return None if limit is None else int(limit)

    @property
    def tracebacks(self) -> int:
        return sum(s.tracebacks for s in self.logs)

    @property
    def statement_errors(self) -> int:
        return sum(s.statement_errors + s.prepared_statement for s in self.logs)

    @property
    def verified(self) -> bool:
        return self.verify_rc == 0

    # ------------------------------------------------------------------ output

    def lines(self) -> list[str]:
        c, peaks, stats = self.clay, self.pool_peaks, self.pool_stats
        xacts = stats.get("total_xact_count", 0)
        wait_ms = stats.get("total_wait_time", 0) / 1000
        out = [
            f"batch {self.batch_id}: {self.batch_status} in {self.wall_s:.1f}s"
            f" ({self.rows} rows, {self.containers} Steps containers)",
            f"unique entities: {self.companies} companies + {self.people} people"
            f" = {self.unique_entities}; dispatched {self.dispatched_entities};"
            f" dispatches {dict(self.dispatches)}",
            f"Clay calls (simulator accepted): {self.clay_accepted} of {self.clay_received}"
            f" received; rejected {self.rejected}; 429 share {self.share_429:.2%};"
            f" duplicates {self.duplicates}",
            f"Clay windows (after the first second): max accepted in 1 s"
            f" {c.get('max_accepted_in_1s', 'n/a')}, max received in 1 s"
            f" {c.get('max_received_in_1s', 'n/a')}, max 10 s average rate"
            f" {_num(c.get('max_rate_10s'))}/s; callbacks sent {c.get('callbacks_sent', 'n/a')},"
            f" pending {c.get('pending_callbacks', 'n/a')}",
        ]
        out += self.webhook_lines()
        out += [
            f"re-dispatched before the lease expired: {len(self.early_redispatches)};"
            f" after it: {self.late_redispatches}",
            f"item-steps {self.item_steps}; entity states {self.entity_states}",
        ]
        if self.failure_reasons:
            out.append(f"failure reasons: {self.failure_reasons}")
        out += [
            f"PgBouncer: peak clients active {peaks.cl_active}, peak waiting {peaks.cl_waiting},"
            f" max wait {peaks.maxwait_s:.3f}s, peak server conns {peaks.sv_total};"
            f" {xacts} transactions, clients waited {wait_ms:.0f} ms in all"
            f" ({wait_ms / xacts if xacts else 0:.2f} ms per transaction);"
            f" refused clients {len(self.refusals)}; clients at the end"
            f" {self.pgbouncer_clients_at_end}",
        ]
        act = self.server_activity
        out.append(
            f"Postgres backends of the run (sampled {act.samples}x): peak busy {act.peak_busy},"
            f" peak waiting on a lock {act.peak_lock_waits}; most seen busy:"
        )
        out += [f"  {n:5d}x {what}" for what, n in act.top(6)]
        out += [f"  refused: {line}" for line in self.refusals[:5]]
        out += [f"  sampler: {e}" for e in peaks.errors[:3]]
        out.append(
            f"inputs spawned {self.spawned}; retried {self.retried_inputs};"
            f" given up {self.gave_up or 0}; per container {self.runs_by_container}"
        )
        if self.kill:
            out.append(f"kill: {asdict(self.kill)}")
        quiet = [s.name for s in self.logs if s.clean and not s.error_lines]
        out.append(f"process logs: {len(quiet)} without an error line ({', '.join(quiet)})")
        out += [f"  {s.name}: {s.describe()}" for s in self.logs if s.name not in quiet]
        verdict = "PASS" if self.verified else f"FAIL (exit {self.verify_rc})"
        out.append(f"enrich verify: {verdict}")
        out += [f"  {line}" for line in self.verify_output.splitlines() if "FAIL" in line]
        out += [f"note: {n}" for n in self.notes]
        return out

    def webhook_lines(self) -> list[str]:
        """Accepted per webhook against the limit (lifetime, and during this batch), 410s
        (sends past a webhook's limit) and duplicates."""
        limit = self.lifetime_limit
        by_webhook = ", ".join(
            f"{name} {n}" + ("" if limit is None else f"/{limit}")
            for name, n in sorted(self.accepted_by_webhook.items())
        )
        batch = self.batch_clay
        out = [
            f"Clay accepted by webhook (lifetime, limit {limit if limit is not None else 'none'}"
            f" each): {by_webhook or 'none'}; 410 answered {self.rejected_410};"
            f" duplicates {self.duplicates}"
        ]
        if batch:
            out.append(
                f"  during this batch: accepted {batch.get('accepted')} by webhook"
                f" {batch.get('accepted_by_webhook')}; rejected {batch.get('rejected')};"
                f" duplicates {batch.get('duplicates')}"
            )
        out += [f"  on hold: {slug}: {reason}" for slug, reason in self.holds.items()]
        return out

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            unique_entities=self.unique_entities,
            clay_calls=self.clay_accepted,
            share_429=self.share_429,
            tracebacks=self.tracebacks,
            statement_errors=self.statement_errors,
            rejected_410=self.rejected_410,
        )
        result: dict[str, Any] = json.loads(json.dumps(data, default=str))
        return result


def _num(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) else "n/a"


# --------------------------------------------------------------------------- reading them


def verify(standin: StandIn, batch: UUID) -> tuple[int, str]:
    """`enrich verify <batch>` through PgBouncer, as an operator would run it."""
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", "verify", str(batch)],
        env={**standin.processes.env, "COLUMNS": "200"},
        cwd=standin.run_dir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result.returncode, (result.stdout + result.stderr).strip()


def clay_difference(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """What Clay counted between two /stats answers: accepted, per webhook, rejected by
    status, duplicates."""

    def minus(key: str) -> dict[str, int]:
        old = before.get(key) or {}
        new = after.get(key) or {}
        return {k: int(v) - int(old.get(k, 0)) for k, v in new.items() if int(v) != old.get(k, 0)}

    return {
        "accepted": int(after.get("accepted") or 0) - int(before.get("accepted") or 0),
        "accepted_by_webhook": minus("accepted_by_webhook"),
        "rejected": minus("rejected"),
        "duplicates": int(after.get("duplicates") or 0) - int(before.get("duplicates") or 0),
    }


def gather_figures(standin: StandIn, batch: UUID) -> RunFigures:
    db = batch_rows(standin.direct_url, batch)
    verify_rc, verify_output = verify(standin, batch)
    clay = standin.clay_stats()
    upload = standin.uploads.get(batch)
    notes = list(standin.notes)
    if not clay:
        notes.append("the Clay simulator answered no /stats: Clay figures missing")
    bouncer = standin.bouncer
    assert bouncer is not None and standin.sampler is not None
    control = standin.control
    runs_by_container = Counter(run.container for run in control.runs)
    early = [r for r in db["redispatches"] if r["gap_s"] < r["timeout_s"]]
    if upload is not None:
        outcome, uploaded_at, finished_at = upload.outcome, upload.uploaded_at, upload.finished_at
    else:
        outcome, uploaded_at, finished_at = (
            standin.outcome,
            standin.uploaded_at,
            standin.finished_at,
        )
    wall = (finished_at or time.monotonic()) - uploaded_at
    logs = [scan_log(p.name, p.log_path) for p in standin.processes.all]
    logs.append(scan_log("verify", _write(standin.run_dir / "logs" / "verify.log", verify_output)))
    return RunFigures(
        batch_id=str(batch),
        # HELD: still RUNNING in the database, waiting for a new webhook (see wait_done).
        batch_status=outcome if outcome == "HELD" else db["status"],
        rows=upload.rows if upload else standin.config.rows,
        wall_s=round(wall, 2),
        containers=standin.config.containers,
        companies=db["companies"],
        people=db["people"],
        dispatched_entities=db["dispatched"],
        dispatches=db["dispatches"],
        early_redispatches=early,
        late_redispatches=len(db["redispatches"]) - len(early),
        item_steps=db["item_steps"],
        entity_states=db["entity_states"],
        failure_reasons=db["reasons"],
        clay=clay,
        pool_peaks=standin.sampler.peaks,
        pool_stats=stats_summary(bouncer),
        refusals=bouncer.refusals(),
        pgbouncer_clients_at_end=len(bouncer.clients()),
        server_activity=standin.activity.activity if standin.activity else Activity(),
        logs=logs,
        spawned=dict(control.spawned),
        runs_by_container=dict(sorted(runs_by_container.items())),
        retried_inputs=sum(1 for run in control.runs if run.attempt > 1),
        gave_up=[f"{i.id} {i.summary}: {why}" for i, why in control.gave_up],
        events=list(standin.processes.events),
        verify_rc=verify_rc,
        verify_output=verify_output,
        kill=standin.kill,
        notes=notes,
        batch_clay=clay_difference(clay, upload.clay_before) if upload and clay else {},
        holds=standin.held(),
    )


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
    return path
