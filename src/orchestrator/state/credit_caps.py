"""Credit caps: a batch's own, and its client's across all its batches (`enrich budget`).

Sending checks them before each chunk is claimed: a chunk takes only as many entities as the
cap still has room for at the most each call can cost, so spending stops at the cap (within
one call's price); what finds no room waits, PENDING, behind a hold on the batch whose reason
says how to raise the cap. Raising (or removing) a cap lifts the hold; the batch goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from orchestrator.db.pool import Conn
from orchestrator.db.queries import query
from orchestrator.state.entity_kinds import KINDS
from orchestrator.state.entity_store import entity_query
from orchestrator.state.registry import Play


@dataclass(frozen=True)
class Cap:
    """A cap over a batch: whose (`kind` "batch" or "client", and its `name`), how much, and
    what counts against it already."""

    kind: str
    name: str
    credits: Decimal
    committed: Decimal

    @property
    def title(self) -> str:
        """How a page names it, on the batch's own page."""
        return "This batch" if self.kind == "batch" else f"Client {self.name!r}"

    @property
    def option(self) -> str:
        """The option of `enrich budget` that changes it."""
        return f"--batch {self.name}" if self.kind == "batch" else f"--client {self.name!r}"

    def calls_within(self, price: Decimal) -> int:
        return max(0, int((self.credits - self.committed) // price))

    def reason(self, batch_id: UUID) -> str:
        """What the user reads wherever the hold shows: true for as long as the hold lasts."""
        whose = f"batch {self.name}" if self.kind == "batch" else f"client {self.name!r}"
        return (
            f"{whose} reached its credit cap of {self.credits.normalize():,f} credits (spent,"
            " or committed to calls not answered yet at the most they can cost);"
            f" its remaining rows wait, unsent: raise the cap with"
            f" `enrich budget {self.option} --credits N` (or remove it with --no-cap),"
            f" then `enrich resume {batch_id}`"
        )


@dataclass(frozen=True)
class Room:
    """How many more calls of a price the caps allow (None: no cap), and the cap that binds."""

    calls: int | None
    reason: str | None = None


def credit_room(conn: Conn, batch_id: UUID, price: Decimal) -> Room:
    """Room under the batch's caps for calls of `price`; locks the caps until the transaction
    ends, so the caller's claims are counted before another sender of the batch or client
    looks."""
    if price <= 0:
        return Room(None)
    params = {"batch_id": batch_id}
    locks = conn.execute(query("credit_cap_locks"), params).fetchone()
    if locks is None or not locks["capped"]:
        return Room(None)
    for key in (locks["batch_key"], locks["client_key"]):
        conn.execute(query("advisory_lock"), {"key": key})
    # Counted in a statement after the lock's: its snapshot then holds the last claim.
    rooms = [Room(c.calls_within(price), c.reason(batch_id)) for c in caps_of(conn, batch_id)]
    return min(rooms, key=lambda r: r.calls or 0, default=Room(None))


def lift_if_room(conn: Conn, batch_id: UUID, play: Play) -> bool:
    """Lift the batch's hold when its caps have room again for a call it waits to make (calls
    answered for less than their most, calls a crash left unsent, a cap raised), or when some
    of what it waits for costs nothing (a fresh result of its client covers it). Whether it
    did. A pass asks before it claims; the sender checks the caps again as it claims."""
    free = _reusable_waiting(conn, batch_id, play)
    if not free and not _room_for_a_waiting_call(conn, batch_id):
        return False
    conn.execute(query("lift_budget_hold"), {"batch_id": batch_id})
    return True


def _reusable_waiting(conn: Conn, batch_id: UUID, play: Play) -> bool:
    for step in play.steps:
        workflow = step.workflow
        if workflow.reuse_days is None or workflow.entity_type not in KINDS:
            continue
        row = conn.execute(
            entity_query("reusable_waiting", KINDS[workflow.entity_type], "fresh_result"),
            {
                "batch_id": batch_id,
                "workflow_slug": workflow.workflow_slug,
                "window_days": workflow.reuse_days,
            },
        ).fetchone()
        if row is not None and row["found"]:
            return True
    return False


def _room_for_a_waiting_call(conn: Conn, batch_id: UUID) -> bool:
    row = conn.execute(query("cheapest_waiting_call"), {"batch_id": batch_id}).fetchone()
    price = None if row is None or row["price"] is None else Decimal(row["price"])
    room = Room(None) if price is None else credit_room(conn, batch_id, price)
    return room.calls is None or room.calls >= 1


def hold_for_budget(conn: Conn, batch_id: UUID, reason: str) -> None:
    conn.execute(query("hold_batch_for_budget"), {"batch_id": batch_id, "reason": reason})


def set_batch_cap(conn: Conn, batch_id: UUID, credits: Decimal | None) -> bool:
    """The batch's cap (None: none), its hold lifted; False when there is no such batch."""
    row = conn.execute(
        query("set_batch_credit_cap"), {"batch_id": batch_id, "credit_cap": credits}
    ).fetchone()
    return row is not None


def set_batch_reuse(conn: Conn, batch_id: UUID, *, reuse: bool) -> None:
    """Whether the batch's entities not sent yet may reuse the client's fresh results."""
    conn.execute(query("set_batch_reuse"), {"batch_id": batch_id, "reuse": reuse})


def set_client_cap(conn: Conn, client_name: str, credits: Decimal | None) -> list[UUID]:
    """The client's cap over all its batches (None: none); the batches it held go on."""
    params = {"client_name": client_name, "credit_cap": credits}
    name = "remove_client_credit_cap" if credits is None else "set_client_credit_cap"
    conn.execute(query(name), params)
    rows = conn.execute(query("lift_client_budget_holds"), params).fetchall()
    return [UUID(str(r["batch_id"])) for r in rows]


def client_has_batches(conn: Conn, client_name: str) -> bool:
    row = conn.execute(query("client_has_batches"), {"client_name": client_name}).fetchone()
    return bool(row and row["found"])


def caps_of(conn: Conn, batch_id: UUID) -> list[Cap]:
    """The caps over the batch, its own first, with what counts against each (read without
    the senders' locks: `credit_room` takes them first)."""
    row = conn.execute(query("credit_caps_committed"), {"batch_id": batch_id}).fetchone()
    if row is None:
        return []
    caps = []
    if row["credit_cap"] is not None:
        caps.append(
            Cap("batch", str(batch_id), Decimal(row["credit_cap"]), Decimal(row["batch_committed"]))
        )
    if row["client_cap"] is not None:
        client, cap = str(row["client_name"]), Decimal(row["client_cap"])
        caps.append(Cap("client", client, cap, Decimal(row["client_committed"])))
    return caps
