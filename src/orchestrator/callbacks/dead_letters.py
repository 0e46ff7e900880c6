"""Refused callbacks are kept in `receiver_dead_letters`, secrets removed, so nothing a
provider sent is silently lost and a refusal can be read and replayed by hand."""

from __future__ import annotations

from collections.abc import Mapping

from psycopg.types.json import Jsonb

from orchestrator.db.pool import Databases
from orchestrator.db.queries import query

SENSITIVE_HEADERS = frozenset(
    {"authorization", "cookie", "x-api-key", "x-clay-webhook-auth", "proxy-authorization"}
)
MAX_DEAD_LETTER_BODY = 65_536


def _storable(text: str) -> str:
    # Postgres text cannot hold NUL; keep it visible instead of failing to record the request.
    return text.replace("\x00", "\\u0000")


def keep_dead_letter(
    dbs: Databases,
    workflow_slug: str,
    http_status: int,
    reason: str,
    headers: Mapping[str, str],
    body: bytes,
) -> None:
    safe = {
        _storable(k): _storable(v) for k, v in headers.items() if k.lower() not in SENSITIVE_HEADERS
    }
    with dbs.hq.connection() as conn:
        conn.execute(
            query("insert_dead_letter"),
            {
                "workflow_slug": _storable(workflow_slug[:200]),
                "http_status": http_status,
                "reason": reason,
                "headers": Jsonb(safe),
                "body": _storable(body[:MAX_DEAD_LETTER_BODY].decode("utf-8", errors="replace")),
            },
        )
