"""Per-dispatch callback tokens.

A token is `<dispatch id>.<attempt>.<HMAC-SHA256 of dispatch id, entity id, workflow and
attempt>`. It proves a callback answers the dispatch we made, for that entity, workflow and
attempt; a token from an attempt that was since retried still verifies but no longer names the
current dispatch, and the receiver refuses it. The dispatch id and attempt travel in clear so
the receiver can check the signature before it asks the database anything, then look the
dispatch up and store the result in one statement.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID


@dataclass(frozen=True)
class TokenClaims:
    dispatch_id: UUID
    attempt: int
    signature: str


def _message(dispatch_id: UUID, entity_id: UUID, workflow_slug: str, attempt: int) -> bytes:
    return f"{dispatch_id}:{entity_id}:{workflow_slug}:{attempt}".encode()


def _signature(
    key: bytes, dispatch_id: UUID, entity_id: UUID, workflow_slug: str, attempt: int
) -> str:
    message = _message(dispatch_id, entity_id, workflow_slug, attempt)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign(key: bytes, dispatch_id: UUID, entity_id: UUID, workflow_slug: str, attempt: int) -> str:
    signature = _signature(key, dispatch_id, entity_id, workflow_slug, attempt)
    return f"{dispatch_id}.{attempt}.{signature}"


def parse(token: str) -> TokenClaims | None:
    """The claims a token states, not yet checked: see `is_signed`."""
    parts = token.split(".", 2)
    if len(parts) != 3:
        return None
    dispatch, attempt, signature = parts
    if not (attempt.isascii() and attempt.isdigit()) or len(attempt) > 9:
        return None
    try:
        return TokenClaims(UUID(dispatch), int(attempt), signature)
    except ValueError:
        return None


def is_signed(key: bytes, claims: TokenClaims, entity_id: UUID, workflow_slug: str) -> bool:
    """Whether the claims carry our signature for this entity and workflow."""
    expected = _signature(key, claims.dispatch_id, entity_id, workflow_slug, claims.attempt)
    return hmac.compare_digest(expected.encode(), claims.signature.encode())


def load_or_create_key(path: Path) -> bytes:
    """A signing key kept beside the embedded database, so tokens survive a restart.

    Processes starting together must agree on one key: the first hard link wins.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{secrets.token_hex(8)}.tmp")
        tmp.write_text(secrets.token_bytes(32).hex())
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return bytes.fromhex(path.read_text().strip())
