"""Where each Clay workflow sends its rows, and sending a chunk of them.

A workflow's webhook URL is read from the environment variable its registry row names
(`webhook_url_secret_name`), so adding a Clay table is a registry row plus a secret. In local
mode the runtime points every Clay workflow at the built-in simulator instead.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from orchestrator.providers.clay_client import ClayClient, ClayDeliveryError, webhook_host
from orchestrator.state.registry import WorkflowConfig

log = logging.getLogger(__name__)

# Clay webhook sources accept 50,000 submissions in their lifetime; warn well before.
SUBMISSION_LIMIT = 50_000
SUBMISSION_WARNING = 45_000
# Sends in flight at once, across every chunk this process is sending.
SEND_CONCURRENCY = 32


class ClayConfigurationError(RuntimeError):
    pass


@dataclass(frozen=True)
class ClayEndpoint:
    url: str
    auth_token: str | None

    @property
    def key(self) -> str:
        """Stable identifier for counting submissions without storing the URL itself."""
        return hashlib.sha256(self.url.encode()).hexdigest()[:24]

    @property
    def host(self) -> str:
        return webhook_host(self.url)


@dataclass(frozen=True)
class SendOutcome:
    ok: bool
    http_status: int | None
    error: str | None
    # Not attempted: the runner was stopping. Its dispatch stays SENDING, for recovery to send.
    skipped: bool = False


NOT_SENT = SendOutcome(False, None, None, skipped=True)


class ClayGateway:
    def __init__(
        self,
        *,
        callback_base_url: str,
        auth_token: str | None,
        rate_per_second: float,
        max_attempts: int,
        overrides: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
        simulated: bool = False,
    ) -> None:
        # True when every webhook is this process's own simulator: its calls die with it.
        self.simulated = simulated
        self.callback_base_url = callback_base_url.rstrip("/")
        self._auth_token = auth_token
        self._rate = rate_per_second
        self._max_attempts = max_attempts
        self._overrides = dict(overrides or {})
        self._environ = environ if environ is not None else os.environ
        self._clients: dict[str, ClayClient] = {}
        self._lock = threading.Lock()
        # One long-lived pool: each sending thread keeps its keep-alive connection (the client's
        # sessions are per thread), where a pool per chunk would open and strand new ones.
        self._senders = ThreadPoolExecutor(SEND_CONCURRENCY, thread_name_prefix="clay-send")
        self._stopping = threading.Event()

    def endpoint(self, workflow: WorkflowConfig) -> ClayEndpoint:
        url = self._overrides.get(workflow.workflow_slug)
        name = workflow.webhook_url_secret_name
        if url is None and name:
            url = self._environ.get(name)
        if not url:
            raise ClayConfigurationError(
                f"workflow {workflow.workflow_slug!r} has no Clay webhook: set the environment"
                f" variable {name or '(webhook_url_secret_name is empty in the registry)'}"
            )
        return ClayEndpoint(url, self._auth_token)

    def callback_url(self, workflow: WorkflowConfig) -> str:
        return f"{self.callback_base_url}/receivers/{workflow.workflow_slug}"

    def _client(self, endpoint: ClayEndpoint) -> ClayClient:
        with self._lock:
            client = self._clients.get(endpoint.url)
            if client is None:
                client = ClayClient(
                    endpoint.url,
                    endpoint.auth_token,
                    rate_per_second=self._rate,
                    max_attempts=self._max_attempts,
                )
                self._clients[endpoint.url] = client
            return client

    def send_all(
        self, endpoint: ClayEndpoint, rows: Sequence[Mapping[str, Any]]
    ) -> list[SendOutcome]:
        """Send rows concurrently, outcomes in row order; all threads share the rate limit."""
        if not rows:
            return []
        client = self._client(endpoint)

        def send(row: Mapping[str, Any]) -> SendOutcome:
            return NOT_SENT if self._stopping.is_set() else _send_one(client, row)

        return list(self._senders.map(send, rows))

    def stop_sending(self) -> None:
        """Rows not sent yet are not sent (a chunk in progress finishes what it started)."""
        self._stopping.set()

    def close(self) -> None:
        self._senders.shutdown(wait=True)
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()


def _send_one(client: ClayClient, row: Mapping[str, Any]) -> SendOutcome:
    try:
        result = client.send(row)
    except ClayDeliveryError as exc:
        return SendOutcome(False, exc.status_code, exc.message)
    return SendOutcome(True, result.status_code, None)


def warn_on_submission_count(host: str, submissions: int, added: int) -> None:
    before = submissions - added
    if submissions >= SUBMISSION_WARNING and before < SUBMISSION_LIMIT:
        log.warning(
            "Clay webhook at %s has received %d of its %d lifetime submissions; create a new"
            " webhook source and update its secret before it stops accepting rows",
            host,
            submissions,
            SUBMISSION_LIMIT,
        )
