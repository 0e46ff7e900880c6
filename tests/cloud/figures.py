"""What a stand-in run measured: Clay traffic, the database's dispatches, PgBouncer, the logs.

`gather_figures` reads them after the batch finished, while every process still runs; the
`RunFigures` it returns renders as text (`lines()`) and JSON (`to_json()`).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg

from cloud.activity import Activity
from cloud.processes import LogScan, scan_log
from support.pgbouncer import PoolPeaks, stats_summary

if TYPE_CHECKING:
    from cloud.harness import StandIn


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
    def duplicates(self) -> int:
        return int(self.clay.get("duplicates") or 0)

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
        if c.get("accepted_by_webhook"):
            out.append(f"Clay accepted by webhook: {c['accepted_by_webhook']}")
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
        out.append("process logs:")
        out += [f"  {s.name}: {s.describe()}" for s in self.logs]
        verdict = "PASS" if self.verified else f"FAIL (exit {self.verify_rc})"
        out.append(f"enrich verify: {verdict}")
        out += [f"  {line}" for line in self.verify_output.splitlines() if "FAIL" in line]
        out += [f"note: {n}" for n in self.notes]
        return out

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            unique_entities=self.unique_entities,
            clay_calls=self.clay_accepted,
            share_429=self.share_429,
            tracebacks=self.tracebacks,
            statement_errors=self.statement_errors,
        )
        result: dict[str, Any] = json.loads(json.dumps(data, default=str))
        return result


def _num(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) else "n/a"


# --------------------------------------------------------------------------- reading them

_REDISPATCHES = """
SELECT entity_type, entity_id, workflow_slug, attempt, status,
       extract(epoch FROM created_at - prev_at) AS gap_s, timeout_seconds
FROM (
    SELECT d.*, w.timeout_seconds,
           lag(d.created_at) OVER (PARTITION BY d.entity_id, d.workflow_slug
                                   ORDER BY d.attempt) AS prev_at
    FROM entity_dispatches d JOIN db_driven_enrichment_workflows w USING (workflow_slug)
    WHERE d.batch_id = %(b)s
) d
WHERE prev_at IS NOT NULL
"""


_STATUS = b"SELECT status FROM upload_batches WHERE id = %(b)s"


def _database_figures(url: str, batch: UUID) -> dict[str, Any]:
    params = {"b": batch}
    with psycopg.connect(url, autocommit=True) as conn:

        def one(sql: str) -> int:
            row = conn.execute(sql.encode(), params).fetchone()
            return int(row[0]) if row and row[0] is not None else 0

        def grouped(sql: str) -> dict[str, int]:
            return {str(k): int(n) for k, n in conn.execute(sql.encode(), params).fetchall()}

        redispatches = [
            {
                "entity_type": r[0],
                "entity_id": str(r[1]),
                "workflow": r[2],
                "attempt": r[3],
                "status": r[4],
                "gap_s": float(r[5]),
                "timeout_s": int(r[6]),
            }
            for r in conn.execute(_REDISPATCHES.encode(), params).fetchall()
        ]
        reasons = conn.execute(
            b"SELECT COALESCE(meta->>'reason', meta->>'error', '?'), count(*)"
            b" FROM workflow_states WHERE batch_id = %(b)s AND status = 'FAILED'"
            b" GROUP BY 1 ORDER BY 2 DESC LIMIT 5",
            params,
        ).fetchall()
        entity_states = grouped(
            "SELECT 'company ' || s.status, count(*) FROM company_workflow_states s"
            " JOIN normalized_companies c ON c.id = s.company_id WHERE c.batch_id = %(b)s"
            " GROUP BY 1 UNION ALL"
            " SELECT 'person ' || s.status, count(*) FROM person_workflow_states s"
            " JOIN normalized_people p ON p.id = s.person_id WHERE p.batch_id = %(b)s GROUP BY 1"
        )
        return {
            "status": str((conn.execute(_STATUS, params).fetchone() or ("?",))[0]),
            "companies": one("SELECT count(*) FROM normalized_companies WHERE batch_id = %(b)s"),
            "people": one("SELECT count(*) FROM normalized_people WHERE batch_id = %(b)s"),
            "dispatched": one(
                "SELECT count(DISTINCT (entity_id, workflow_slug)) FROM entity_dispatches"
                " WHERE batch_id = %(b)s"
            ),
            "dispatches": Counter(
                grouped(
                    "SELECT status, count(*) FROM entity_dispatches"
                    " WHERE batch_id = %(b)s GROUP BY 1"
                )
            ),
            "item_steps": grouped(
                "SELECT status, count(*) FROM workflow_states WHERE batch_id = %(b)s GROUP BY 1"
            ),
            "entity_states": entity_states,
            "reasons": [(str(r), int(n)) for r, n in reasons],
            "redispatches": redispatches,
        }


def gather_figures(standin: StandIn, batch: UUID) -> RunFigures:
    db = _database_figures(standin.direct_url, batch)
    verify_rc, verify_output = standin.verify(batch)
    clay = standin.clay_stats()
    notes = list(standin.notes)
    if not clay:
        notes.append("the Clay simulator answered no /stats: Clay figures missing")
    bouncer = standin.bouncer
    assert bouncer is not None and standin.sampler is not None
    control = standin.control
    runs_by_container = Counter(run.container for run in control.runs)
    early = [r for r in db["redispatches"] if r["gap_s"] < r["timeout_s"]]
    wall = (standin.finished_at or time.monotonic()) - standin.uploaded_at
    logs = [scan_log(p.name, p.log_path) for p in standin.processes.all]
    logs.append(scan_log("verify", _write(standin.run_dir / "logs" / "verify.log", verify_output)))
    return RunFigures(
        batch_id=str(batch),
        # HELD: still RUNNING in the database, waiting for a new webhook (see wait_done).
        batch_status=standin.outcome if standin.outcome == "HELD" else db["status"],
        rows=standin.config.rows,
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
    )


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
    return path
