"""Receivers: Clay's HTTP-API column calls back with a result; we persist it and answer fast.

Every refusal is answered with a clear 4xx and the request is kept in `receiver_dead_letters`
(secrets removed), so nothing Clay sent is silently lost. A duplicate of a stored callback is
answered 200 and changes nothing.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from orchestrator.callbacks.answers import (
    Answer,
    Stored,
    accept_answer,
    maps_elsewhere,
    store_for_pass,
)
from orchestrator.callbacks.group_commit import GroupCommitWriter
from orchestrator.callbacks.tokens import parse, verify
from orchestrator.db.pool import Conn, Databases
from orchestrator.db.queries import query
from orchestrator.engine.context import Trigger
from orchestrator.state.enrichment_log import PlayPosition
from orchestrator.state.entity_kinds import KINDS, EntityKind, kind_of
from orchestrator.state.entity_store import entity_query
from orchestrator.state.registry import (
    RegistryError,
    WorkflowConfig,
    cached_workflow,
    fresh_cached_workflow,
)

_T = TypeVar("_T")

SENSITIVE_HEADERS = frozenset(
    {"authorization", "cookie", "x-api-key", "x-clay-webhook-auth", "proxy-authorization"}
)
MAX_DEAD_LETTER_BODY = 65_536


@dataclass(frozen=True)
class ReceiverConfig:
    signing_key: bytes
    callback_secret: str | None
    secret_header: str = "x-callback-secret"  # noqa: S105 (a header name)


@dataclass(frozen=True)
class CallbackResult:
    status_code: int
    body: dict[str, Any] = field(default_factory=dict)
    batch_id: UUID | None = None


class _Refused(Exception):  # noqa: N818 (control flow, not an error type users see)
    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(reason)
        self.status_code, self.reason = status_code, reason


@dataclass(frozen=True)
class _Callback:
    entity_id: UUID
    token: str
    data: dict[str, Any] | None
    error: str | None


def _check_secret(config: ReceiverConfig, headers: Mapping[str, str]) -> None:
    if config.callback_secret is None:
        return
    given = headers.get(config.secret_header.lower(), "")
    if not hmac.compare_digest(given.encode(), config.callback_secret.encode()):
        raise _Refused(401, f"missing or wrong {config.secret_header} header")


def _parse_body(body: bytes, workflow_slug: str) -> _Callback:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Refused(422, f"body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise _Refused(422, "body must be a JSON object")
    try:
        entity_id = UUID(str(payload.get("entity_id")))
    except ValueError:
        raise _Refused(422, "field 'entity_id' must be a UUID") from None
    token = payload.get("callback_token")
    if not isinstance(token, str) or not token:
        raise _Refused(422, "field 'callback_token' is required")
    if payload.get("workflow_slug", workflow_slug) != workflow_slug:
        raise _Refused(422, "field 'workflow_slug' does not match the receiver's workflow")
    data, error = payload.get("data"), payload.get("error")
    if data is None and not error:
        raise _Refused(422, "one of 'data' (an object) or 'error' (a message) is required")
    if data is not None and not isinstance(data, dict):
        raise _Refused(422, "field 'data' must be a JSON object")
    return _Callback(entity_id, token, data, str(error) if error and data is None else None)


def _workflow(dbs: Databases, workflow_slug: str) -> tuple[WorkflowConfig, EntityKind]:
    try:
        workflow = cached_workflow(dbs, workflow_slug)
        return workflow, kind_of(workflow.entity_type)
    except (RegistryError, ValueError):
        raise _Refused(404, f"no entity workflow {workflow_slug!r} takes callbacks") from None


def _checked_dispatch(
    conn: Conn, config: ReceiverConfig, kind: EntityKind, workflow: str, callback: _Callback
) -> dict[str, Any]:
    """The current dispatch the callback answers, or the refusal that says why it is not."""
    claims = parse(callback.token)
    row = conn.execute(
        entity_query("callback_context", kind),
        {"entity_id": callback.entity_id, "dispatch_id": claims.dispatch_id if claims else None},
    ).fetchone()
    if row is None:
        raise _Refused(404, f"unknown {kind.name} {callback.entity_id}")
    if (
        row["id"] is None
        or row["dispatch_entity_id"] != callback.entity_id
        or (row["workflow_slug"] != workflow)
    ):
        raise _Refused(401, "callback token does not match a dispatch of this entity")
    verified = verify(config.signing_key, callback.token, callback.entity_id, workflow)
    if verified is None or verified.attempt != row["attempt"]:
        raise _Refused(401, "callback token signature is invalid")
    if not row["is_current"]:
        raise _Refused(401, "callback token belongs to an earlier attempt that was retried")
    return dict(row)


def _refusing_bad_data(
    store: Callable[[Databases, Answer], _T], dbs: Databases, answer: Answer
) -> _T:
    try:
        return store(dbs, answer)
    except psycopg.DataError as exc:
        # e.g. a \u0000 inside the JSON: Postgres cannot store it; the dead letter keeps it.
        raise _Refused(422, f"data cannot be stored: {exc.sqlstate} {type(exc).__name__}") from None


def _accept_or_refuse(dbs: Databases, answer: Answer) -> dict[str, Any]:
    return _refusing_bad_data(accept_answer, dbs, answer)


def _store_or_refuse(
    dbs: Databases, answer: Answer, writer: GroupCommitWriter | None
) -> Stored | None:
    if writer is None:
        return _refusing_bad_data(store_for_pass, dbs, answer)
    return _refusing_bad_data(lambda _dbs, a: writer.store(a), dbs, answer)


def _storable(text: str) -> str:
    # Postgres text cannot hold NUL; keep it visible instead of failing to record the request.
    return text.replace("\x00", "\\u0000")


def _dead_letter(
    dbs: Databases, workflow_slug: str, refused: _Refused, headers: Mapping[str, str], body: bytes
) -> None:
    safe = {
        _storable(k): _storable(v) for k, v in headers.items() if k.lower() not in SENSITIVE_HEADERS
    }
    with dbs.hq.connection() as conn:
        conn.execute(
            query("insert_dead_letter"),
            {
                "workflow_slug": _storable(workflow_slug[:200]),
                "http_status": refused.status_code,
                "reason": refused.reason,
                "headers": Jsonb(safe),
                "body": _storable(body[:MAX_DEAD_LETTER_BODY].decode("utf-8", errors="replace")),
            },
        )


def _signed_answer(
    config: ReceiverConfig, workflow: WorkflowConfig, kind: EntityKind, callback: _Callback
) -> Answer | None:
    """A data callback whose token checks out in memory and whose result goes to the result
    table: one statement can store it. None: the checked path must look at it."""
    if callback.data is None:
        return None
    claims = verify(config.signing_key, callback.token, callback.entity_id, workflow.workflow_slug)
    if claims is None:
        return None
    answer = Answer(
        kind, workflow, callback.entity_id, claims.dispatch_id, claims.attempt, callback.data
    )
    return None if maps_elsewhere(answer) else answer


def _fast_path(
    dbs: Databases,
    config: ReceiverConfig,
    workflow: WorkflowConfig,
    kind: EntityKind,
    callback: _Callback,
    writer: GroupCommitWriter | None,
) -> Stored | None:
    """A signed data callback of a current dispatch: checked in memory, stored in one statement.

    None sends the callback down the checked path, which finds the refusal (or the race) that
    explains why the statement stored nothing.
    """
    answer = _signed_answer(config, workflow, kind, callback)
    return None if answer is None else _store_or_refuse(dbs, answer, writer)


def _checked_path(
    dbs: Databases,
    config: ReceiverConfig,
    workflow: WorkflowConfig,
    kind: EntityKind,
    callback: _Callback,
) -> Stored:
    with dbs.hq.connection() as conn:
        dispatch = _checked_dispatch(conn, config, kind, workflow.workflow_slug, callback)
    answer = Answer(
        kind,
        workflow,
        callback.entity_id,
        dispatch["id"],
        dispatch["attempt"],
        callback.data,
        callback.error,
        PlayPosition(dispatch["play_name"], dispatch["step_number"]),
    )
    return Stored(_accept_or_refuse(dbs, answer), dispatch["batch_id"])


def receive_callback(
    dbs: Databases,
    config: ReceiverConfig,
    trigger: Trigger,
    workflow_slug: str,
    headers: Mapping[str, str],
    body: bytes,
    writer: GroupCommitWriter | None = None,
) -> CallbackResult:
    """Handle one callback; `headers` must have lower-case names. With a `writer`, a
    verified result shares a group commit with the callbacks arriving beside it."""
    secret_headers = {config.secret_header.lower()}
    try:
        _check_secret(config, headers)
        callback = _parse_body(body, workflow_slug)
        workflow, kind = _workflow(dbs, workflow_slug)
        stored = _fast_path(dbs, config, workflow, kind, callback, writer) or _checked_path(
            dbs, config, workflow, kind, callback
        )
    except _Refused as refused:
        kept = {k: v for k, v in headers.items() if k.lower() not in secret_headers}
        _dead_letter(dbs, workflow_slug, refused, kept, body)
        return CallbackResult(refused.status_code, {"error": refused.reason})
    if stored.batch_id is not None:
        trigger.request(stored.batch_id)
    return CallbackResult(200, stored.body, stored.batch_id)


def answer_in_memory(
    dbs: Databases,
    config: ReceiverConfig,
    workflow_slug: str,
    headers: Mapping[str, str],
    body: bytes,
) -> Answer | None:
    """The fast path's answer when everything it needs is already in memory (no database read,
    no refusal to record); None sends the callback to `receive_callback`."""
    workflow = fresh_cached_workflow(dbs, workflow_slug)
    if workflow is None or workflow.entity_type not in KINDS:
        return None
    try:
        _check_secret(config, headers)
        callback = _parse_body(body, workflow_slug)
    except _Refused:
        return None
    return _signed_answer(config, workflow, kind_of(workflow.entity_type), callback)


NamedReceiver = Callable[
    [Databases, ReceiverConfig, Trigger, Mapping[str, str], bytes], CallbackResult
]


def receiver_for(workflow_slug: str) -> NamedReceiver:
    """The receiver of one workflow, as a plain function (the seed's named receivers)."""

    def receive(
        dbs: Databases,
        config: ReceiverConfig,
        trigger: Trigger,
        headers: Mapping[str, str],
        body: bytes,
    ) -> CallbackResult:
        return receive_callback(dbs, config, trigger, workflow_slug, headers, body)

    receive.__name__ = f"receive_{workflow_slug}"
    return receive


receive_enrich_company_via_waterfall_in_clay = receiver_for("enrich_company_via_waterfall_in_clay")
receive_enrich_person_via_waterfall_in_clay = receiver_for("enrich_person_via_waterfall_in_clay")
