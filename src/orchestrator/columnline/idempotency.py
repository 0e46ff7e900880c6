"""The Idempotency-Key header of `/api/columnline/`'s writes (IETF draft
"The Idempotency-Key HTTP Header Field").

The first keyed request of a route and run is answered and its answer kept (`remember`); the
same key with the same request answers that again (`claim` returns it) and changes nothing; the
same key with another request is refused. The claim is made in the write's own transaction: a
refused write (404, 409, ...) keeps no key, so its retry runs again, and a retry that arrives
while the first is still running waits for it and answers its response.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from orchestrator.columnline.errors import UnprocessableError
from orchestrator.columnline.rows import one, returned
from orchestrator.db.pool import Conn
from orchestrator.db.queries import query

MAX_KEY_LENGTH = 255
# The draft's value is a Structured Field string ("..."); a bare token is taken as well, since
# that is what most clients (and Make.com's header fields) send.
_QUOTED = re.compile(r'^"((?:[^"\\]|\\["\\])*)"$')
_PRINTABLE = re.compile(r"^[\x20-\x7e]+$")


class InvalidKeyError(ValueError):
    pass


@dataclass(frozen=True)
class Scope:
    """Where a key is unique: the route (method and path template) and the run (if any)."""

    route: str
    run_id: UUID | None
    key: str

    def params(self) -> dict[str, Any]:
        return {"route": self.route, "run_id": self.run_id, "key": self.key}


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: bytes


def parse_key(header: str) -> str:
    """The key of an Idempotency-Key header value; InvalidKeyError says what is wrong."""
    value = header.strip()
    if quoted := _QUOTED.match(value):
        value = re.sub(r"\\(.)", r"\1", quoted.group(1))
    if not value or len(value) > MAX_KEY_LENGTH or not _PRINTABLE.match(value):
        raise InvalidKeyError(
            f"the Idempotency-Key header must be 1 to {MAX_KEY_LENGTH} printable ASCII characters"
            " (a UUID is a good key)"
        )
    return value


def fingerprint(request: Any) -> str:
    """A digest of what the request asks, as validated: bodies that mean the same (key order,
    a field given as null or left out) have the same fingerprint."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def claim(conn: Conn, scope: Scope, digest: str, keep: timedelta) -> Answer | None:
    """Take the key for this request; or the answer kept for it when it was taken before."""
    params = scope.params()
    conn.execute(query("v2_forget_expired_keys"), params)
    taken = {**params, "fingerprint": digest, "keep": keep}
    if one(conn, "v2_claim_idempotency_key", taken) is not None:
        return None
    kept = returned(conn, "v2_idempotency_key", params)
    if kept["fingerprint"] != digest:
        raise UnprocessableError(
            "idempotency_key_reused",
            f"Idempotency-Key {scope.key!r} was first sent with another request to"
            f" {scope.route} at {kept['created_at']:%Y-%m-%d %H:%M:%S %Z}: send a new key for a"
            " new request",
            idempotency_key=scope.key,
        )
    return Answer(kept["status_code"], bytes(kept["response"]))


def remember(conn: Conn, scope: Scope, answer: Answer) -> None:
    params = {**scope.params(), "status_code": answer.status_code, "response": answer.body}
    conn.execute(query("v2_remember_response"), params)
