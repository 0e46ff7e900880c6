"""Completing stored results, many at a time.

A receiver keeps a callback's result and marks its dispatch STORED in one statement, then
answers. Completing the entity, the items waiting on it, the log row and the step completion
happens here, in one set-based statement for every STORED dispatch of a batch, run by the
batch's next orchestrator pass. Work with no batch (manual play runs), synchronous providers and
results stored in a destination table complete at once, by dispatch. The sweeper completes
whatever is left anywhere before it looks at leases, so a stored result is never sent again.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal
from uuid import UUID

from psycopg import sql

from orchestrator.db.pool import Conn
from orchestrator.db.queries import query
from orchestrator.state.entity_kinds import EntityKind

Scope = Literal["batch", "dispatch", "everywhere"]

# Bounds one statement's locks and memory; a pass that hits it asks for another pass.
APPLY_LIMIT = 5_000

_SCOPES: dict[Scope, sql.SQL] = {
    "batch": sql.SQL("d.batch_id = %(batch_id)s"),
    "dispatch": sql.SQL("d.id = %(dispatch_id)s"),
    "everywhere": sql.SQL("TRUE"),
}


@dataclass(frozen=True)
class Applied:
    dispatches: int = 0
    entities: int = 0
    items_completed: int = 0
    batch_ids: frozenset[UUID] = frozenset()

    def __add__(self, other: Applied) -> Applied:
        return Applied(
            self.dispatches + other.dispatches,
            self.entities + other.entities,
            self.items_completed + other.items_completed,
            self.batch_ids | other.batch_ids,
        )


@lru_cache(maxsize=16)
def _apply_query(kind: EntityKind, scope: Scope) -> sql.Composed:
    return query("apply_stored_results").format(**kind.identifiers(), scope=_SCOPES[scope])


def apply_stored(
    conn: Conn,
    kind: EntityKind,
    scope: Scope,
    *,
    batch_id: UUID | None = None,
    dispatch_id: UUID | None = None,
    limit: int = APPLY_LIMIT,
) -> Applied:
    row = conn.execute(
        _apply_query(kind, scope),
        {
            "entity_type": kind.name,
            "batch_id": batch_id,
            "dispatch_id": dispatch_id,
            "limit": limit,
            "id_key": kind.id_column,
            "in_progress": kind.in_progress,
            "result_table": kind.result_table,
        },
    ).fetchone()
    if row is None:
        return Applied()
    return Applied(
        row["dispatches"], row["entities"], row["items_completed"], frozenset(row["batch_ids"])
    )
