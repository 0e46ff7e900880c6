"""Receiving a callback: the one place that decides what becomes of it.

Clay's HTTP-API column (or n8n) POSTs a result; `receive` reads the request once (secret
header, body, token), then either hands a signed result of the current dispatch to the group
commit without touching the database on the event loop, or takes the checked path in a worker
thread, which finds the refusal (or the race) that explains why the fast path stored nothing.

Every refusal is answered with a clear 4xx and the request is kept in `receiver_dead_letters`
(secrets removed), so nothing Clay sent is silently lost. A duplicate is answered 200 and
changes nothing: a callback, of data or of an error, for a dispatch whose answer was already
taken (stored, or its entity COMPLETED or FAILED). The web app and the Modal endpoints only
adapt HTTP to this.

Two limits bound what a callback may cost before it is refused:

- `MAX_CALLBACK_BYTES` (5 MiB): a longer body is refused 413; the web route stops reading
  at the limit and hands over what it read (`refuse_too_large`).
- `MAX_JSON_DEPTH` (64): arrays and objects nested deeper, counting the body itself as level
  1, are refused 422 before the parser, which recurses once per level, sees them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar
from uuid import UUID

import psycopg
from anyio import to_thread

from orchestrator.callbacks.answers import (
    Answer,
    Stored,
    accept_answer,
    maps_elsewhere,
)
from orchestrator.callbacks.dead_letters import keep_dead_letter
from orchestrator.callbacks.group_commit import GroupCommitWriter
from orchestrator.callbacks.tokens import TokenClaims, is_signed, parse
from orchestrator.db.pool import Conn, Databases
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

MAX_CALLBACK_BYTES = 5 * 1024 * 1024
MAX_JSON_DEPTH = 64

_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENING = frozenset(b"[{")

# An entity in one of these took its current dispatch's answer, a result or an error.
_FINISHED = frozenset({"COMPLETED", "FAILED"})
# A dispatch in one of these has its result stored (STORED: a pass has yet to complete it).
_STORED = frozenset({"STORED", "CALLED_BACK"})


@dataclass(frozen=True)
class ReceiverConfig:
    signing_key: bytes
    callback_secret: str | None
    secret_header: str = "x-callback-secret"  # noqa: S105 (a header name)


class ReceiverRuntime(Protocol):
    """What receiving needs of a runtime (local or cloud)."""

    @property
    def dbs(self) -> Databases: ...

    @property
    def receiver_config(self) -> ReceiverConfig: ...

    @property
    def trigger(self) -> Trigger: ...

    @property
    def callback_writer(self) -> GroupCommitWriter: ...


@dataclass(frozen=True)
class CallbackResult:
    status_code: int
    body: dict[str, Any] = field(default_factory=dict)
    batch_id: UUID | None = None


class Refused(Exception):  # noqa: N818 (control flow, not an error type users see)
    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(reason)
        self.status_code, self.reason = status_code, reason


@dataclass(frozen=True)
class Callback:
    """A callback read once: its body's fields and its token, parsed and checked."""

    workflow_slug: str
    entity_id: UUID
    claims: TokenClaims | None
    signed: bool
    data: dict[str, Any] | None
    error: str | None


def _check_secret(config: ReceiverConfig, headers: Mapping[str, str]) -> None:
    if config.callback_secret is None:
        return
    given = headers.get(config.secret_header.lower(), "")
    if not hmac.compare_digest(given.encode(), config.callback_secret.encode()):
        raise Refused(401, f"missing or wrong {config.secret_header} header")


def _brackets_outside_strings(text: str) -> bytes:
    """The brackets of a JSON text that are not inside a string, in order."""
    # Escaped backslashes go first, so that in \\" the quote still ends its string; then
    # escaped quotes, which do not. Every quote left opens or closes a string, so the text
    # outside strings is every other piece between quotes (an unclosed string is dropped: the
    # parser stops there). Anything not a bracket, non-ASCII included, cannot nest.
    unescaped = text.replace("\\\\", "").replace('\\"', "")
    outside = "".join(unescaped.split('"')[::2])
    return outside.encode("ascii", "ignore").translate(None, _NOT_BRACKETS)


def _nests_deeper_than(text: str, limit: int) -> bool:
    """Whether arrays and objects nest deeper than `limit` levels, counted without recursion.

    Before the parser sees the text: it recurses once per level, so a body nested a thousand
    deep (or a thousand brackets never closed) would raise RecursionError, not a refusal."""
    brackets = _brackets_outside_strings(text)
    if brackets.count(b"[") + brackets.count(b"{") <= limit:
        return False
    depth = 0
    for bracket in brackets:
        depth += 1 if bracket in _OPENING else -1
        if depth > limit:
            return True
    return False


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        # As json.loads does with bytes: UTF-8, -16 or -32, told apart by the first bytes.
        text = body.decode(json.detect_encoding(body), "surrogatepass")
    except UnicodeDecodeError as exc:
        raise Refused(422, f"body is not valid JSON: {exc}") from None
    if _nests_deeper_than(text, MAX_JSON_DEPTH):
        raise Refused(422, f"body is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Refused(422, f"body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise Refused(422, "body must be a JSON object")
    return payload


def read_callback(
    config: ReceiverConfig, workflow_slug: str, headers: Mapping[str, str], body: bytes
) -> Callback:
    """Check the secret header, parse the body and check the token's signature, in memory."""
    _check_secret(config, headers)
    payload = _json_object(body)
    try:
        entity_id = UUID(str(payload.get("entity_id")))
    except ValueError:
        raise Refused(422, "field 'entity_id' must be a UUID") from None
    token = payload.get("callback_token")
    if not isinstance(token, str) or not token:
        raise Refused(422, "field 'callback_token' is required")
    if payload.get("workflow_slug", workflow_slug) != workflow_slug:
        raise Refused(422, "field 'workflow_slug' does not match the receiver's workflow")
    data, error = payload.get("data"), payload.get("error")
    if data is None and not error:
        raise Refused(422, "one of 'data' (an object) or 'error' (a message) is required")
    if data is not None and not isinstance(data, dict):
        raise Refused(422, "field 'data' must be a JSON object")
    claims = parse(token)
    signed = claims is not None and is_signed(config.signing_key, claims, entity_id, workflow_slug)
    return Callback(
        workflow_slug,
        entity_id,
        claims,
        signed,
        data,
        str(error) if error and data is None else None,
    )


def _entity_workflow(workflow: WorkflowConfig | None) -> tuple[WorkflowConfig, EntityKind] | None:
    if workflow is None or workflow.entity_type not in KINDS:
        return None
    return workflow, kind_of(workflow.entity_type)


def _fast_answer(workflow: WorkflowConfig, kind: EntityKind, callback: Callback) -> Answer | None:
    """A signed data callback whose result goes to the result table: one statement can store
    it. None: the checked path must look at it."""
    if callback.data is None or not callback.signed or callback.claims is None:
        return None
    claims, entity_id = callback.claims, callback.entity_id
    answer = Answer(kind, workflow, entity_id, claims.dispatch_id, claims.attempt, callback.data)
    return None if maps_elsewhere(answer) else answer


async def receive(
    runtime: ReceiverRuntime, workflow_slug: str, headers: Mapping[str, str], body: bytes
) -> CallbackResult:
    """Decide one callback; `headers` must have lower-case names."""
    try:
        callback = read_callback(runtime.receiver_config, workflow_slug, headers, body)
    except Refused as refused:
        return await to_thread.run_sync(
            partial(_refuse, runtime, workflow_slug, refused, headers, body)
        )
    known = _entity_workflow(fresh_cached_workflow(runtime.dbs, workflow_slug))
    answer = _fast_answer(*known, callback) if known else None
    stored = None
    if answer is not None:
        # Data Postgres cannot store is refused, with its dead letter, by the checked path.
        with contextlib.suppress(psycopg.DataError):
            stored = await asyncio.wrap_future(runtime.callback_writer.submit(answer))
    if stored is None:
        checked = partial(_receive_checked, runtime, callback, headers, body, answer is None)
        return await to_thread.run_sync(checked)
    return _answered(runtime, stored)


async def refuse_too_large(
    runtime: ReceiverRuntime, workflow_slug: str, headers: Mapping[str, str], head: bytes
) -> CallbackResult:
    """Refuse a body longer than `MAX_CALLBACK_BYTES`; `head` is what was read of it (nothing
    when its declared length said so), kept in the dead letter like any refused body."""
    refused = Refused(413, f"callback body is larger than {MAX_CALLBACK_BYTES} bytes")
    refuse = partial(_refuse, runtime, workflow_slug, refused, headers, head)
    return await to_thread.run_sync(refuse)


def _answered(runtime: ReceiverRuntime, stored: Stored) -> CallbackResult:
    if stored.batch_id is not None:
        runtime.trigger.request(stored.batch_id)
    return CallbackResult(200, stored.body, stored.batch_id)


def _refuse(
    runtime: ReceiverRuntime,
    workflow_slug: str,
    refused: Refused,
    headers: Mapping[str, str],
    body: bytes,
) -> CallbackResult:
    secret_header = runtime.receiver_config.secret_header.lower()
    kept = {k: v for k, v in headers.items() if k.lower() != secret_header}
    keep_dead_letter(runtime.dbs, workflow_slug, refused.status_code, refused.reason, kept, body)
    return CallbackResult(refused.status_code, {"error": refused.reason})


def _receive_checked(
    runtime: ReceiverRuntime,
    callback: Callback,
    headers: Mapping[str, str],
    body: bytes,
    try_fast: bool,
) -> CallbackResult:
    """The path that may read the database: a registry cache miss, a callback the fast path
    could not store, or one to refuse."""
    dbs = runtime.dbs
    try:
        workflow, kind = _workflow(dbs, callback.workflow_slug)
        answer = _fast_answer(workflow, kind, callback) if try_fast else None
        stored = None
        if answer is not None:
            stored = _refusing_bad_data(lambda: runtime.callback_writer.store(answer))
        if stored is None:
            stored = _checked_store(dbs, workflow, kind, callback)
    except Refused as refused:
        return _refuse(runtime, callback.workflow_slug, refused, headers, body)
    return _answered(runtime, stored)


def _workflow(dbs: Databases, workflow_slug: str) -> tuple[WorkflowConfig, EntityKind]:
    try:
        known = _entity_workflow(cached_workflow(dbs, workflow_slug))
    except RegistryError:
        known = None
    if known is None:
        raise Refused(404, f"no entity workflow {workflow_slug!r} takes callbacks")
    return known


def _refusing_bad_data(store: Callable[[], _T]) -> _T:
    try:
        return store()
    except psycopg.DataError as exc:
        # e.g. a \u0000 inside the JSON: Postgres cannot store it; the dead letter keeps it.
        raise Refused(422, f"data cannot be stored: {exc.sqlstate} {type(exc).__name__}") from None


def _current_dispatch(conn: Conn, kind: EntityKind, callback: Callback) -> dict[str, Any]:
    """The current dispatch the callback answers, or the refusal that says why it is not."""
    claims = callback.claims
    row = conn.execute(
        entity_query("callback_context", kind),
        {"entity_id": callback.entity_id, "dispatch_id": claims.dispatch_id if claims else None},
    ).fetchone()
    if row is None:
        raise Refused(404, f"unknown {kind.name} {callback.entity_id}")
    if claims is None:
        raise Refused(
            401, "callback token is malformed: expected <dispatch id>.<attempt>.<signature>"
        )
    if (
        row["id"] is None
        or row["dispatch_entity_id"] != callback.entity_id
        or row["workflow_slug"] != callback.workflow_slug
    ):
        raise Refused(401, "callback token does not match a dispatch of this entity")
    if not callback.signed or claims is None or claims.attempt != row["attempt"]:
        raise Refused(401, "callback token signature is invalid")
    if not row["is_current"]:
        raise Refused(401, "callback token belongs to an earlier attempt that was retried")
    return dict(row)


def _duplicate(dispatch: Mapping[str, Any]) -> Stored | None:
    """The answer to a callback of a dispatch that was answered already; None if it was not.

    Whatever the outcome: an error after a result, or a result after an error, is a replay as
    much as a repeat is, and changes nothing (the entity, its result, the log, the items)."""
    if dispatch["entity_status"] in _FINISHED:
        return Stored({"status": "duplicate"}, None)  # no pass: nothing is left to complete
    if dispatch["dispatch_status"] in _STORED:
        # Stored, not yet completed: ask again for the pass that completes it.
        return Stored({"status": "duplicate"}, dispatch["batch_id"])
    return None


def _checked_store(
    dbs: Databases, workflow: WorkflowConfig, kind: EntityKind, callback: Callback
) -> Stored:
    with dbs.hq.connection() as conn:
        dispatch = _current_dispatch(conn, kind, callback)
    duplicate = _duplicate(dispatch)
    if duplicate is not None:
        return duplicate
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
    return Stored(_refusing_bad_data(lambda: accept_answer(dbs, answer)), dispatch["batch_id"])
