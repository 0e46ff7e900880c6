"""Where each Clay workflow sends its rows, and sending a chunk of them.

A workflow's webhooks are read from the variable its registry row names
(`webhook_url_secret_name`, see `webhook_config`), so adding a Clay table is a registry row plus
a secret. In local mode the runtime points every Clay workflow at the built-in simulator instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from orchestrator.db.pool import Conn
from orchestrator.providers.clay_client import ClayClient, ClayDeliveryError, encode_row
from orchestrator.providers.ratelimit import SendPacer, TokenBucket
from orchestrator.state.registry import WorkflowConfig
from orchestrator.steps.send_rate import SharedSendRate
from orchestrator.steps.webhook_config import (
    ClayConfigurationError,
    ClayEndpoint,
    Lookup,
    configured_endpoints,
)

log = logging.getLogger(__name__)

# Clay's answer to a row for a webhook source that has used its lifetime submissions.
SPENT_STATUS = 410
# Sends in flight at once, across every chunk this process is sending.
SEND_CONCURRENCY = 32

__all__ = ["ClayConfigurationError", "ClayEndpoint", "ClayGateway", "Send", "SendOutcome"]


class Send(NamedTuple):
    """A row to send: where, what, and how many seconds from the chunk's start it may go."""

    endpoint: ClayEndpoint
    body: bytes
    wait: float = 0.0


@dataclass(frozen=True)
class SendOutcome:
    ok: bool
    http_status: int | None
    error: str | None
    # Not attempted: the runner was stopping. Its dispatch stays SENDING, for recovery to send.
    skipped: bool = False


NOT_SENT = SendOutcome(False, None, None, skipped=True)


class ClayGateway:
    """Sends rows to the webhooks of one provider (Clay, n8n), at one shared pace."""

    def __init__(
        self,
        *,
        callback_base_url: str,
        lookup: Lookup,
        fallback_token: str | None = None,
        shared_rate: SharedSendRate | None = None,
        max_attempts: int = 5,
        overrides: Mapping[str, str] | None = None,
        override_token: str | None = None,
        submission_limit: int | None = None,
        max_payload_bytes: int | None = None,
        simulated: bool = False,
    ) -> None:
        # True when every webhook is this process's own simulator: its calls die with it.
        self.simulated = simulated
        self.callback_base_url = callback_base_url.rstrip("/")
        self._lookup = lookup
        self._fallback_token = fallback_token
        # One pace for every webhook of the account (Clay limits a workspace, not a webhook),
        # kept in the database; none for simulators, which answer 429 themselves if asked to.
        self.shared_rate = shared_rate
        self.pacer: SendPacer = shared_rate or TokenBucket(float("inf"))
        self._max_attempts = max_attempts
        self._overrides = dict(overrides or {})
        self._override_token = override_token
        # Lifetime submissions of one webhook, when the provider limits them (Clay).
        self.submission_limit = submission_limit
        self.max_payload_bytes = max_payload_bytes
        self._clients: dict[str, ClayClient] = {}
        self._lock = threading.Lock()
        # One long-lived pool of sending threads, each client keeping a keep-alive connection
        # per thread, where a pool per chunk would open and strand new ones.
        self._senders = ThreadPoolExecutor(SEND_CONCURRENCY, thread_name_prefix="clay-send")
        self._stopping = threading.Event()

    def endpoints(self, workflow: WorkflowConfig) -> list[ClayEndpoint]:
        """The workflow's webhooks in order of use; raises ClayConfigurationError."""
        url = self._overrides.get(workflow.workflow_slug)
        if url is not None:
            return [ClayEndpoint(url, self._override_token)]
        name = workflow.webhook_url_secret_name
        found = configured_endpoints(name, self._lookup, self._fallback_token) if name else []
        if not found:
            raise ClayConfigurationError(
                f"workflow {workflow.workflow_slug!r} has no webhook: set the variable"
                f" {name or '(webhook_url_secret_name is empty in the registry)'}"
            )
        return found

    def callback_url(self, workflow: WorkflowConfig) -> str:
        return f"{self.callback_base_url}/receivers/{workflow.workflow_slug}"

    def encode(self, row: Mapping[str, Any]) -> bytes | str:
        """The row's body, or why it cannot be sent (too large for the provider)."""
        body = encode_row(row)
        if self.max_payload_bytes is not None and len(body) > self.max_payload_bytes:
            limit = self.max_payload_bytes
            return f"row is {len(body):,} bytes, over the webhook's {limit:,}-byte limit"
        return body

    def schedule(self, conn: Conn, rows: int) -> list[float]:
        """Seconds from now until each of `rows` rows may go (reserved in `conn`'s
        transaction), all zero without a shared rate."""
        if self.shared_rate is None:
            return [0.0] * rows
        return self.shared_rate.schedule(conn, rows)

    def _client(self, endpoint: ClayEndpoint) -> ClayClient:
        with self._lock:
            client = self._clients.get(endpoint.url)
            if client is None:
                client = ClayClient(
                    endpoint.url,
                    endpoint.auth_token,
                    max_attempts=self._max_attempts,
                    bucket=self.pacer,
                    connections=SEND_CONCURRENCY,
                )
                self._clients[endpoint.url] = client
            return client

    def send_all(
        self, sends: Sequence[Send], on_accepted: Callable[[int], None] | None = None
    ) -> list[SendOutcome]:
        """Send each body at its slot (`Send.wait`, seconds from now), concurrently; outcomes
        in order. A row whose slot comes after `stop_sending` is not sent. `on_accepted(i)`
        runs as the provider accepts row i."""
        if not sends:
            return []
        start = time.monotonic()

        def send(indexed: tuple[int, Send]) -> SendOutcome:
            index, item = indexed
            if self._stopping.wait(max(0.0, start + item.wait - time.monotonic())):
                return NOT_SENT
            paced = self.shared_rate is not None
            outcome = _send_one(self._client(item.endpoint), item.body, paced)
            if outcome.ok and on_accepted is not None:
                on_accepted(index)
            if outcome.error and item.endpoint.label:
                outcome = replace(outcome, error=f"{item.endpoint.label}: {outcome.error}")
            return outcome

        return list(self._senders.map(send, enumerate(sends)))

    def stop_sending(self) -> None:
        """Rows not sent yet are not sent (a chunk in progress finishes what it started)."""
        self._stopping.set()

    def close(self) -> None:
        self._senders.shutdown(wait=True)
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()


def _send_one(client: ClayClient, body: bytes, paced: bool) -> SendOutcome:
    try:
        result = client.send_body(body, paced=paced)
    except ClayDeliveryError as exc:
        return SendOutcome(False, exc.status_code, exc.message)
    return SendOutcome(True, result.status_code, None)
