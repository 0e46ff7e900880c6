"""What step functions get besides item ids: databases, settings, providers, the trigger."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from orchestrator.db.pool import Databases
from orchestrator.settings import Settings


class Trigger(Protocol):
    """Asks for an orchestrator pass over a batch; implementations coalesce bursts."""

    def request(self, batch_id: UUID) -> None: ...


class NoTrigger:
    def request(self, batch_id: UUID) -> None:
        return None


@dataclass
class StepContext:
    dbs: Databases
    settings: Settings
    trigger: Trigger = field(default_factory=NoTrigger)
    # Provider gateways by provider name ("clay", ...), set up by the runtime.
    providers: dict[str, Any] = field(default_factory=dict)
    # Key for per-dispatch callback tokens (HMAC); shared by senders and receivers.
    signing_key: bytes = b""
    # The local runner sending (see engine.runners); None in the cloud.
    runner_id: UUID | None = None
