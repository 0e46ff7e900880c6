"""What batches cost and saved, from the credit ledger (`credit_ledger`) and their outcomes.

Clay bills two currencies, Actions and data credits; "credits" below is their sum, with both
kept apart wherever they are shown. Spent is what the ledger charged; saved by reuse is what the
client's reused results would have cost; saved by dedupe is what the items sharing an entity
within the batch did not each pay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from orchestrator.db.pool import Conn
from orchestrator.db.queries import query


@dataclass(frozen=True)
class Credits:
    actions: Decimal = Decimal(0)
    data_credits: Decimal = Decimal(0)
    saved_by_dedupe: Decimal = Decimal(0)
    saved_by_reuse: Decimal = Decimal(0)
    reused: int = 0  # entities completed from a reused result
    deduped_items: int = 0  # items that shared their entity's call

    @property
    def spent(self) -> Decimal:
        return self.actions + self.data_credits

    @property
    def saved(self) -> Decimal:
        return self.saved_by_dedupe + self.saved_by_reuse

    def as_json(self) -> dict[str, Any]:
        return {
            "credits_spent": float(self.spent),
            "actions_spent": float(self.actions),
            "data_credits_spent": float(self.data_credits),
            "credits_saved": float(self.saved),
            "credits_saved_by_dedupe": float(self.saved_by_dedupe),
            "credits_saved_by_reuse": float(self.saved_by_reuse),
            "entities_reused": self.reused,
            "items_reusing_enrichment": self.deduped_items,
        }


def batch_credits(conn: Conn, batch_ids: Sequence[UUID]) -> dict[UUID, Credits]:
    """Every batch of `batch_ids`, in one statement."""
    rows = conn.execute(query("batch_credits"), {"batch_ids": list(batch_ids)})
    return {
        UUID(str(r["batch_id"])): Credits(
            Decimal(r["actions"]),
            Decimal(r["data_credits"]),
            Decimal(r["saved_by_dedupe"]),
            Decimal(r["saved_by_reuse"]),
            int(r["reused"]),
            int(r["deduped_items"]),
        )
        for r in rows
    }
