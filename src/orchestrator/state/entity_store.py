"""Reading and writing entities and their workflow state.

Bulk functions serve the set-based senders; the ten single-entity helpers of the entity-level
tracking plan (`get_company_id_for_item`, ...) are thin views over them, and return None when
the thing asked for does not exist.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb

from entities.status import Status
from orchestrator.db.pool import Conn
from orchestrator.db.queries import query
from orchestrator.state.entity_kinds import COMPANY, PERSON, EntityKind


@lru_cache(maxsize=256)
def entity_query(name: str, kind: EntityKind, *fragments: str) -> sql.Composed:
    """The named template filled with the kind's tables, and with the named `fragments`
    (templates themselves) where it says `{fragment}`."""
    ids = kind.identifiers()
    parts = {f: query(f).format(**ids) for f in fragments}
    return query(name).format(**ids, **parts)


def entity_ids_for_items(conn: Conn, kind: EntityKind, item_ids: list[UUID]) -> dict[UUID, UUID]:
    rows = conn.execute(entity_query("entity_ids_for_items", kind), {"item_ids": item_ids})
    return {r["item_id"]: r["entity_id"] for r in rows if r["entity_id"] is not None}


def entities_data(
    conn: Conn, kind: EntityKind, entity_ids: list[UUID]
) -> dict[UUID, dict[str, Any]]:
    rows = conn.execute(entity_query("entity_data", kind), {"entity_ids": entity_ids})
    return {r["id"]: dict(r) for r in rows}


def workflow_statuses(
    conn: Conn, kind: EntityKind, entity_ids: list[UUID], workflow_slug: str
) -> dict[UUID, Status]:
    rows = conn.execute(
        entity_query("entity_workflow_statuses", kind),
        {"entity_ids": entity_ids, "workflow_slug": workflow_slug},
    )
    return {r["entity_id"]: Status(r["status"]) for r in rows}


def set_workflow_status(
    conn: Conn,
    kind: EntityKind,
    entity_id: UUID,
    workflow_slug: str,
    status: Status,
    meta: dict[str, Any] | None = None,
) -> UUID | None:
    """Upsert the entity's state; None when the entity does not exist."""
    if not entities_data(conn, kind, [entity_id]):
        return None
    row = conn.execute(
        entity_query("set_entity_workflow_status", kind),
        {
            "entity_id": entity_id,
            "workflow_slug": workflow_slug,
            "status": str(status),
            "meta": Jsonb(meta or {}),
        },
    ).fetchone()
    return row["id"] if row else None


def record_result(
    conn: Conn,
    kind: EntityKind,
    entity_id: UUID,
    workflow_slug: str,
    data: dict[str, Any],
    dispatch_id: UUID | None = None,
) -> UUID | None:
    """Append an immutable result; None when the entity is unknown or the dispatch is recorded."""
    if not entities_data(conn, kind, [entity_id]):
        return None
    row = conn.execute(
        entity_query("record_entity_result", kind),
        {
            "entity_id": entity_id,
            "workflow_slug": workflow_slug,
            "data": Jsonb(data),
            "dispatch_id": dispatch_id,
        },
    ).fetchone()
    return row["id"] if row else None


# The ten helpers of the entity-level tracking plan, by their names.


def get_company_id_for_item(conn: Conn, item_id: UUID) -> UUID | None:
    return entity_ids_for_items(conn, COMPANY, [item_id]).get(item_id)


def get_person_id_for_item(conn: Conn, item_id: UUID) -> UUID | None:
    return entity_ids_for_items(conn, PERSON, [item_id]).get(item_id)


def get_company_data(conn: Conn, company_id: UUID) -> dict[str, Any] | None:
    return entities_data(conn, COMPANY, [company_id]).get(company_id)


def get_person_data(conn: Conn, person_id: UUID) -> dict[str, Any] | None:
    return entities_data(conn, PERSON, [person_id]).get(person_id)


def get_company_workflow_status(conn: Conn, company_id: UUID, workflow_slug: str) -> Status | None:
    return workflow_statuses(conn, COMPANY, [company_id], workflow_slug).get(company_id)


def get_person_workflow_status(conn: Conn, person_id: UUID, workflow_slug: str) -> Status | None:
    return workflow_statuses(conn, PERSON, [person_id], workflow_slug).get(person_id)


def set_company_workflow_status(
    conn: Conn,
    company_id: UUID,
    workflow_slug: str,
    status: Status,
    meta: dict[str, Any] | None = None,
) -> UUID | None:
    return set_workflow_status(conn, COMPANY, company_id, workflow_slug, status, meta)


def set_person_workflow_status(
    conn: Conn,
    person_id: UUID,
    workflow_slug: str,
    status: Status,
    meta: dict[str, Any] | None = None,
) -> UUID | None:
    return set_workflow_status(conn, PERSON, person_id, workflow_slug, status, meta)


def record_company_result(
    conn: Conn, company_id: UUID, workflow_slug: str, data: dict[str, Any]
) -> UUID | None:
    return record_result(conn, COMPANY, company_id, workflow_slug, data)


def record_person_result(
    conn: Conn, person_id: UUID, workflow_slug: str, data: dict[str, Any]
) -> UUID | None:
    return record_result(conn, PERSON, person_id, workflow_slug, data)
