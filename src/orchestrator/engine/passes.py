"""One orchestrator pass over a batch: a handful of set-based statements, whatever its size.

0. Complete: results the receivers stored for this batch complete their entities and items.
1. Advance: items whose step COMPLETED without advancing get their next step's row (PENDING).
   The statements that complete steps advance their rows themselves (a trigger creates the
   next step in the same statement): this catches rows completed some other way.
2. Claim: PENDING item-steps become IN_PROGRESS with a lease (SKIP LOCKED; exactly-once).
3. Dispatch the claimed item ids in chunks, grouped by step.
4. When nothing is pending, running or waiting to advance, the batch is COMPLETED.
Passes are idempotent and safe to run concurrently on the same batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from orchestrator.db.pool import Conn, Databases
from orchestrator.db.queries import query
from orchestrator.engine.dispatch import Dispatcher, chunk_calls
from orchestrator.state.completion import Applied, apply_stored
from orchestrator.state.credit_caps import lift_if_room
from orchestrator.state.entity_kinds import KINDS
from orchestrator.state.progress import HELD_FOR_LAUNCH
from orchestrator.state.registry import Play, cached_play

DEFAULT_CHUNK_SIZE = 500
DEFAULT_CLAIM_LIMIT = 100_000


@dataclass(frozen=True)
class PassResult:
    batch_id: UUID
    applied: int
    advanced: int
    claimed: int
    calls: int
    done: bool


class UnknownBatchError(LookupError):
    pass


def _batch_play(dbs: Databases, conn: Conn, batch_id: UUID) -> tuple[Play, bool, bool]:
    """The batch's play; whether it is held for launch (it sends nothing until then); whether
    its credit cap holds its paid steps."""
    row = conn.execute(query("batch_play"), {"batch_id": batch_id}).fetchone()
    if row is None:
        raise UnknownBatchError(f"no upload batch {batch_id}")
    play = cached_play(dbs, conn, str(row["play_name"]))
    return play, row["status"] == HELD_FOR_LAUNCH, bool(row["budget_held"])


def _apply(conn: Conn, batch_id: UUID) -> int:
    """Complete the batch's stored results, of any entity workflow (manual runs of a step that
    is not in the batch's play too); the items they complete advance in the same pass."""
    applied = Applied()
    for kind in KINDS.values():
        applied += apply_stored(conn, kind, "batch", batch_id=batch_id)
    return applied.dispatches


def _advance(conn: Conn, batch_id: UUID) -> int:
    """Advance what completed without advancing (the trigger creates the next steps)."""
    return conn.execute(query("advance_completed_items"), {"batch_id": batch_id}).rowcount


def _claim(
    conn: Conn, batch_id: UUID, play: Play, limit: int, runner_id: UUID | None
) -> list[tuple[UUID, str]]:
    if limit <= 0:
        return []
    rows = conn.execute(
        query("claim_pending_steps"),
        {
            "batch_id": batch_id,
            "runner_id": runner_id,
            "slugs": [s.slug for s in play.steps],
            "timeouts": [s.workflow.timeout_seconds for s in play.steps],
            "paid_slugs": [s.slug for s in play.steps if s.workflow.priced],
            "limit": limit,
        },
    ).fetchall()
    # Items of one company side by side: a chunk then holds whole companies, so concurrent
    # chunks neither queue on each other's claims of a company (Clay steps) nor on each
    # other's inserts of its domain (split), and split's "first row wins" holds per company.
    rows.sort(key=lambda r: (r["step_name"], r["company_key"] or "", str(r["item_id"])))
    return [(UUID(str(r["item_id"])), str(r["step_name"])) for r in rows]


def run_pass(
    dbs: Databases,
    batch_id: UUID,
    dispatcher: Dispatcher,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    claim_limit: int = DEFAULT_CLAIM_LIMIT,
    runner_id: UUID | None = None,
) -> PassResult:
    """Complete, advance, claim (as `runner_id`, up to `claim_limit`), dispatch; see above."""
    with dbs.hq.connection() as conn:
        play, held, budget_held = _batch_play(dbs, conn, batch_id)
        applied = _apply(conn, batch_id)
        advanced = _advance(conn, batch_id)
        if budget_held and not held:
            # After advancing: what just reached a paid step may cost nothing (reuse).
            lift_if_room(conn, batch_id, play)
        claimed = [] if held else _claim(conn, batch_id, play, claim_limit, runner_id)
        # Claims must be visible to the step functions before they run.
        conn.commit()
        done = not (applied or advanced or claimed or held) and _finished(conn, batch_id)
    calls = chunk_calls(batch_id, claimed, chunk_size)
    dispatcher.dispatch(calls)
    return PassResult(batch_id, applied, advanced, len(claimed), len(calls), done)


def _finished(conn: Conn, batch_id: UUID) -> bool:
    """Nothing left to do: mark the batch COMPLETED (checked only by passes that did nothing)."""
    row = conn.execute(query("batch_has_work"), {"batch_id": batch_id}).fetchone()
    if row is None or row["has_work"]:
        return False
    conn.execute(query("finish_batch"), {"batch_id": batch_id})
    return True
