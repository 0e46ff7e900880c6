"""The end-of-run summary a person can act on: counts, failures and their top reasons."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any
from uuid import UUID

from orchestrator.db.pool import Conn
from orchestrator.db.queries import query
from orchestrator.reports.batches import overview, shown_status
from orchestrator.reports.credits import Credits, batch_credits


@dataclass
class FailureReason:
    step: str
    reason: str
    items: int


@dataclass
class BatchCounts:
    """A batch's headline figures, as the summary and the API's batch status give them."""

    batch_id: UUID
    status: str
    items: int
    companies: int
    people: int
    completed: int
    failed: int

    def counts(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(BatchCounts)}


@dataclass
class BatchSummary(BatchCounts):
    seconds: float = 0.0
    top_failure_reasons: list[FailureReason] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["batch_id"] = str(self.batch_id)
        data["seconds"] = round(self.seconds, 3)
        extra = data.pop("extra")
        data.update(extra)
        return data


def summarize(conn: Conn, batch_id: UUID, seconds: float = 0.0) -> BatchSummary:
    rows = overview(conn, batch_id, 1)
    row = rows[0] if rows else None
    if row is None:
        raise LookupError(f"no upload batch {batch_id}")
    reasons = [
        FailureReason(str(r["step_name"]), str(r["reason"]), int(r["items"]))
        for r in conn.execute(query("batch_failure_reasons"), {"batch_id": batch_id})
    ]
    summary = BatchSummary(
        batch_id=batch_id,
        status=shown_status(row),
        items=int(row["items"]),
        companies=int(row["companies"]),
        people=int(row["people"]),
        completed=int(row["done"]),
        failed=int(row["failed"]),
        seconds=seconds,
        top_failure_reasons=reasons,
    )
    summary.extra.update(_provider_usage(conn, batch_id))
    return summary


def _provider_usage(conn: Conn, batch_id: UUID) -> dict[str, Any]:
    calls: dict[str, int] = {"company": 0, "person": 0}
    for row in conn.execute(query("batch_provider_usage"), {"batch_id": batch_id}):
        if row["provider"] == "clay":
            calls[str(row["entity_type"])] += int(row["calls"])
    credits = batch_credits(conn, [batch_id]).get(batch_id, Credits())
    usage: dict[str, Any] = {"clay_calls": calls} | credits.as_json()
    error = conn.execute(query("first_provider_error"), {"batch_id": batch_id}).fetchone()
    if error is not None:
        status = f"HTTP {error['http_status']}: " if error["http_status"] else ""
        usage["first_provider_error"] = (
            f"{error['provider']} ({error['workflow_slug']}): {status}{error['error']}"
        )
    return usage
