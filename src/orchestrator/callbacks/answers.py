"""What happens when a provider's answer arrives, by callback or by a synchronous call.

Keep the immutable result; if the workflow maps into a destination table, the destination
writer writes and verifies it there; only then do the entity and the items waiting on it
complete and the enrichment log record the step completion. A failure at any point fails the
entity and its items with the reason, and logs it, but never writes a completion.

`store_results` is the receivers' fast path (run by the group commit): one statement keeps the
results and leaves their completion to the batch's next pass (see `state.completion`).
`accept_answer` completes at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from orchestrator.db.pool import Conn, Databases
from orchestrator.db.queries import query
from orchestrator.state.completion import apply_stored
from orchestrator.state.destinations import StorageError, store_mapped
from orchestrator.state.enrichment_log import LogEntry, PlayPosition, log_enrichment
from orchestrator.state.entity_kinds import EntityKind
from orchestrator.state.entity_store import entity_query
from orchestrator.state.registry import WorkflowConfig


@dataclass(frozen=True)
class Answer:
    """A provider's answer for one dispatch of one entity."""

    kind: EntityKind
    workflow: WorkflowConfig
    entity_id: UUID
    dispatch_id: UUID
    attempt: int
    data: dict[str, Any] | None
    error: str | None = None
    position: PlayPosition = field(default_factory=PlayPosition)


def _company_of(conn: Conn, answer: Answer) -> UUID | None:
    if answer.kind.name == "company":
        return answer.entity_id
    row = conn.execute(query("person_company"), {"person_id": answer.entity_id}).fetchone()
    return row["company_id"] if row else None


def _fail(dbs: Databases, answer: Answer, error: str) -> dict[str, Any]:
    with dbs.hq.connection() as conn:
        # The provider answered, so Clay billed the answer, whatever we make of it.
        conn.execute(query("record_error_answer"), {"dispatch_id": answer.dispatch_id})
        failed = conn.execute(
            entity_query("fail_entities", answer.kind),
            {
                "failures": Jsonb(
                    [
                        {
                            "entity_id": str(answer.entity_id),
                            "dispatch_id": str(answer.dispatch_id),
                            "error": error[:1000],
                        }
                    ]
                ),
                "workflow_slug": answer.workflow.workflow_slug,
                "entity_type": answer.kind.name,
            },
        ).fetchone()
        if not (failed and failed["entities"]):
            # The entity finished meanwhile (a replayed error that raced its twin, or the
            # sweeper): this answer changed nothing, so it logs nothing either.
            return {"status": "duplicate"}
        _log_failure(conn, answer, error)
    return {"status": "failed", "error": error[:200]}


def _log_failure(conn: Conn, answer: Answer, error: str) -> None:
    is_person = answer.kind.name == "person"
    entry = LogEntry(
        answer.workflow,
        # A person's company is looked up by the logger's own statement.
        None if is_person else answer.entity_id,
        answer.position,
        person_id=answer.entity_id if is_person else None,
        error=error,
    )
    log_enrichment(conn, entry, verified=False)


def _record(conn: Conn, answer: Answer) -> UUID | None:
    row = conn.execute(
        entity_query("record_entity_result", answer.kind),
        {
            "entity_id": answer.entity_id,
            "workflow_slug": answer.workflow.workflow_slug,
            "data": Jsonb(answer.data),
            "dispatch_id": answer.dispatch_id,
        },
    ).fetchone()
    return row["id"] if row else None


def store_results(conn: Conn, kind: EntityKind, answers: Sequence[Answer]) -> dict[UUID, DictRow]:
    """Keep the results of current dispatches and mark them STORED, in one statement.

    Keyed by dispatch id: `batch_id`, `result_id` (None for a duplicate of a stored result or a
    callback of a finished entity) and `finished` (its entity is COMPLETED or FAILED). A dispatch
    that is not its entity's current one has no entry. Each dispatch at most once.
    """
    callbacks = [
        {
            "entity_id": str(a.entity_id),
            "dispatch_id": str(a.dispatch_id),
            "attempt": a.attempt,
            "workflow_slug": a.workflow.workflow_slug,
            "data": a.data,
        }
        for a in answers
    ]
    rows = conn.execute(
        entity_query("store_callback_results", kind), {"callbacks": Jsonb(callbacks)}
    ).fetchall()
    return {r["dispatch_id"]: r for r in rows}


def _store(conn: Conn, answer: Answer) -> DictRow | None:
    return store_results(conn, answer.kind, [answer]).get(answer.dispatch_id)


def maps_elsewhere(answer: Answer) -> bool:
    """Whether the workflow stores mapped fields in a table other than the result table."""
    return answer.workflow.destination_table_name not in (None, answer.kind.result_table)


def _destination(dbs: Databases, answer: Answer) -> str:
    """Store the mapped fields into the configured destination table and verify them."""
    workflow = answer.workflow
    with dbs.hq.connection() as conn:
        company_id = _company_of(conn, answer)
        domain = conn.execute(
            "SELECT domain FROM normalized_companies WHERE id = %s", (company_id,)
        ).fetchone()
    stored = store_mapped(
        dbs, workflow, company_id, domain["domain"] if domain else None, answer.data or {}
    )
    return stored.table


def _complete_now(conn: Conn, answer: Answer) -> dict[str, Any]:
    applied = apply_stored(conn, answer.kind, "dispatch", dispatch_id=answer.dispatch_id)
    return {"status": "stored", "items_completed": applied.items_completed}


@dataclass(frozen=True)
class Stored:
    body: dict[str, Any]
    batch_id: UUID | None


def stored_answer(conn: Conn, answer: Answer, row: DictRow | None) -> Stored | None:
    """What the receiver answers for a result `store_results` kept; work without a batch
    completes here, in the same transaction. None: not the entity's current dispatch."""
    if row is None:
        return None
    if row["result_id"] is None:
        # A result stored but not yet completed still asks for its pass; a finished one needs none.
        return Stored({"status": "duplicate"}, None if row["finished"] else row["batch_id"])
    if row["batch_id"] is None:
        return Stored(_complete_now(conn, answer), None)
    return Stored({"status": "stored"}, row["batch_id"])


def accept_answer(dbs: Databases, answer: Answer) -> dict[str, Any]:
    """Keep the answer of a dispatch the caller checked is current, and complete it at once."""
    if answer.error is not None:
        return _fail(dbs, answer, answer.error)
    if not maps_elsewhere(answer):
        with dbs.hq.connection() as conn:
            row = _store(conn, answer)
            if row is None or row["result_id"] is None:
                return {"status": "duplicate"}
            return _complete_now(conn, answer)
    with dbs.hq.connection() as conn:
        result_id = _record(conn, answer)
    if result_id is None:
        return {"status": "duplicate"}
    try:
        _destination(dbs, answer)
    except (StorageError, psycopg.Error) as exc:
        return _fail(dbs, answer, f"storage failed: {exc}")
    with dbs.hq.connection() as conn:
        conn.execute(query("mark_dispatch_stored"), {"dispatch_id": answer.dispatch_id})
        return _complete_now(conn, answer)
