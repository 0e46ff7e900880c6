"""What the dashboard shows of batches: the board of every batch, and one batch whole (its
funnel, what waits on providers, its failures, refused callbacks and webhook submissions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from orchestrator.db.pool import Conn
from orchestrator.db.queries import query
from orchestrator.engine.runners import live_runners
from orchestrator.reports.batches import overview, shown_status
from orchestrator.reports.credits import Credits, batch_credits

# Failures that are the data's, not a provider's: retrying them fails the same way.
_DATA_STEPS = frozenset({"normalize_all_core_values"})
FINAL_STATUSES = frozenset({"COMPLETED", "FAILED"})


@dataclass(frozen=True)
class BoardLine:
    batch_id: UUID
    client_name: str
    file_name: str
    status: str
    items: int
    done: int
    failed: int
    waiting: int
    credits: Credits
    created_at: datetime

    @property
    def percent(self) -> int:
        """How much of the batch is finished, done or failed."""
        return _percent(self.done + self.failed, self.items)

    @property
    def live(self) -> bool:
        return self.status not in FINAL_STATUSES


def _percent(part: int, whole: int) -> int:
    return 100 if whole == 0 else min(100, round(100 * part / whole))


def _lines(conn: Conn, rows: list[dict[str, Any]]) -> list[BoardLine]:
    """The board's lines, with what dedupe saved each batch found for all of them at once."""
    ids = [UUID(str(row["id"])) for row in rows]
    credits = batch_credits(conn, ids)
    return [
        BoardLine(
            batch_id,
            str(row["client_name"]),
            str(row["file_name"] or ""),
            shown_status(row),
            int(row["items"]),
            int(row["done"]),
            int(row["failed"]),
            int(row["waiting"]),
            credits.get(batch_id, Credits()),
            row["created_at"],
        )
        for batch_id, row in zip(ids, rows, strict=True)
    ]


def board(conn: Conn, limit: int = 50) -> list[BoardLine]:
    return _lines(conn, overview(conn, None, limit))


def board_line(conn: Conn, batch_id: UUID) -> BoardLine:
    lines = _lines(conn, overview(conn, batch_id, 1))
    if not lines:
        raise LookupError(f"no upload batch {batch_id}")
    return lines[0]


@dataclass(frozen=True)
class FunnelStep:
    step_number: int
    step_name: str
    title: str
    provider: str
    not_started: int
    pending: int
    in_flight: int
    done: int
    failed: int

    def share(self, count: int, items: int) -> int:
        return _percent(count, items)


@dataclass(frozen=True)
class WaitingEntity:
    entity_type: str
    entity_id: UUID
    label: str
    workflow_slug: str
    status: str
    attempt: int
    age_seconds: float
    lease_left_seconds: float | None
    # Accepted by the built-in simulator of a process that is gone: `enrich resume` (or the
    # page's Resume) sends it again at once; waiting for the lease would only lose time.
    unanswerable: bool = False

    @property
    def overdue(self) -> bool:
        return self.lease_left_seconds is not None and self.lease_left_seconds < 0


@dataclass(frozen=True)
class FailedRow:
    row_number: int
    name: str
    company: str
    error: str


def retryable(step_name: str, reason: str) -> bool:
    """A provider or a lease failed, not the row's own data (which would fail the same way)."""
    return step_name not in _DATA_STEPS and not reason.startswith("no_")


@dataclass
class FailureGroup:
    step_number: int
    step_name: str
    reason: str
    items: int
    provider: str
    rows: list[FailedRow] = field(default_factory=list)

    @property
    def retryable(self) -> bool:
        return retryable(self.step_name, self.reason)


@dataclass(frozen=True)
class WebhookUsage:
    webhook_key: str
    host: str
    submissions: int
    batch_rows: int
    limit: int

    @property
    def percent(self) -> int:
        return _percent(self.submissions, self.limit)


@dataclass
class BatchView:
    line: BoardLine
    play_name: str
    funnel: list[FunnelStep]
    waiting: list[WaitingEntity]
    waiting_total: int
    failures: list[FailureGroup]
    held: dict[str, str]


def funnel(conn: Conn, batch_id: UUID, items: int) -> list[FunnelStep]:
    steps = []
    for r in conn.execute(query("batch_funnel"), {"batch_id": batch_id}):
        counts = [int(r[k]) for k in ("pending", "in_flight", "done", "failed")]
        steps.append(
            FunnelStep(
                int(r["step_number"]),
                str(r["step_name"]),
                str(r["title"]),
                str(r["provider"]),
                max(items - sum(counts), 0),
                *counts,
            )
        )
    return steps


def waiting_entities(conn: Conn, batch_id: UUID, limit: int = 20) -> list[WaitingEntity]:
    found = []
    params = {"batch_id": batch_id, "limit": limit, "live": live_runners(conn)}
    for r in conn.execute(query("batch_waiting_entities"), params):
        now: datetime = r["now"]
        lease = r["lease_expires_at"]
        found.append(
            WaitingEntity(
                str(r["entity_type"]),
                UUID(str(r["entity_id"])),
                str(r["label"]),
                str(r["workflow_slug"]),
                str(r["status"]),
                int(r["attempt"]),
                (now - r["since"]).total_seconds(),
                (lease - now).total_seconds() if lease is not None else None,
                bool(r["unanswerable"]),
            )
        )
    return found


def failure_groups(conn: Conn, batch_id: UUID, samples: int = 20) -> list[FailureGroup]:
    groups: dict[tuple[str, str], FailureGroup] = {}
    params = {"batch_id": batch_id, "samples": samples}
    for r in conn.execute(query("batch_failure_groups"), params):
        key = (str(r["step_name"]), str(r["reason"]))
        group = groups.get(key)
        if group is None:
            group = groups[key] = FailureGroup(
                int(r["step_number"]), key[0], key[1], int(r["items"]), str(r["provider"] or "")
            )
        name = f"{r['first_name']} {r['last_name']}".strip() or str(r["email"] or "")
        company = str(r["company_name"] or r["website"] or "")
        error = str(r["detail"] or r["error"] or "")
        group.rows.append(FailedRow(int(r["row_number"]), name, company, error))
    return list(groups.values())


def webhook_usage(conn: Conn, batch_id: UUID, limit: int) -> list[WebhookUsage]:
    return [
        WebhookUsage(
            str(r["webhook_key"]),
            str(r["webhook_host"]),
            int(r["submissions"]),
            int(r["batch_rows"]),
            limit,
        )
        for r in conn.execute(query("webhook_usage"), {"batch_id": batch_id})
    ]


@dataclass(frozen=True)
class DeadLetter:
    id: int
    received_at: datetime
    workflow_slug: str
    http_status: int
    reason: str
    body: str


def dead_letters(conn: Conn, limit: int = 20) -> list[DeadLetter]:
    return [
        DeadLetter(
            int(r["id"]),
            r["received_at"],
            str(r["workflow_slug"] or ""),
            int(r["http_status"]),
            str(r["reason"]),
            str(r["body"] or ""),
        )
        for r in conn.execute(query("recent_dead_letters"), {"limit": limit})
    ]


def batch_view(conn: Conn, batch_id: UUID) -> BatchView:
    """Raises LookupError for a batch that does not exist."""
    line = board_line(conn, batch_id)
    play = conn.execute(query("batch_play"), {"batch_id": batch_id}).fetchone()
    return BatchView(
        line,
        str(play["play_name"]) if play else "",
        funnel(conn, batch_id, line.items),
        waiting_entities(conn, batch_id),
        line.waiting,
        failure_groups(conn, batch_id),
        {
            str(h["workflow_slug"]): str(h["reason"])
            for h in conn.execute(query("batch_holds"), {"batch_id": batch_id})
        },
    )
