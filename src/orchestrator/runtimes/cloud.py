"""The runtime of a deployment where steps, passes and receivers run in separate containers.

Everything here is plain code; `worker.py` only supplies the spawn functions. One instance is
opened per container and reused by every input it serves.
"""

from __future__ import annotations

import os
from typing import Any
from uuid import UUID

from orchestrator.callbacks.group_commit import GroupCommitWriter
from orchestrator.callbacks.receive import ReceiverConfig
from orchestrator.db.pool import Databases, open_databases
from orchestrator.engine.calls import execute_call
from orchestrator.engine.context import StepContext
from orchestrator.engine.dispatch import StepCall
from orchestrator.engine.passes import PassResult, run_pass
from orchestrator.engine.spawning import (
    DatabaseCoalescingTrigger,
    SpawningDispatcher,
    SpawnPass,
    SpawnStep,
    wait_for_scheduled_pass,
)
from orchestrator.engine.sweeper import SweepReport, sweep
from orchestrator.runtimes.providers import webhook_gateway, zenrows_fetcher
from orchestrator.settings import Settings
from orchestrator.steps.table import step_table


class CloudConfigurationError(RuntimeError):
    pass


def cloud_gateways(settings: Settings) -> dict[str, Any]:
    """Real providers only: a workflow whose secret is missing fails with that reason."""
    base = _required(settings, "public_base_url")
    token = settings.clay_webhook_auth_token
    gateways: dict[str, Any] = {
        "clay": webhook_gateway(settings, base, token.get_secret_value() if token else None),
        "n8n": webhook_gateway(settings, base, None),
    }
    if os.environ.get("ZENROWS_API_KEY"):
        gateways["zenrows"] = zenrows_fetcher(settings, os.environ)
    return gateways


def _required(settings: Settings, name: str) -> str:
    value = getattr(settings, name)
    if value is None:
        raise CloudConfigurationError(f"{name.upper()} must be set in the deployment's secrets")
    return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)


class CloudRuntime:
    def __init__(
        self,
        settings: Settings,
        spawn_step: SpawnStep,
        spawn_pass: SpawnPass,
        dbs: Databases | None = None,
    ) -> None:
        if settings.hq_url() is None and dbs is None:
            raise CloudConfigurationError("DATABASE_URL must be set in the deployment's secrets")
        self.settings = settings
        self.dbs = dbs or open_databases(settings=settings, migrate=False)
        self.signing_key = bytes.fromhex(_required(settings, "callback_signing_key"))
        self.receiver_config = ReceiverConfig(
            self.signing_key,
            _required(settings, "callback_secret"),
            settings.callback_secret_header,
        )
        self.api_key = _required(settings, "api_key")
        self.callback_writer = GroupCommitWriter(self.dbs)
        self.trigger = DatabaseCoalescingTrigger(
            self.dbs, spawn_pass, settings.pass_coalesce_seconds
        )
        self.dispatcher = SpawningDispatcher(spawn_step)
        self.steps = step_table()
        self.ctx = StepContext(
            self.dbs, settings, self.trigger, cloud_gateways(settings), signing_key=self.signing_key
        )

    def orchestrator_pass(self, batch_id: UUID) -> PassResult:
        wait_for_scheduled_pass(self.dbs, batch_id)
        return run_pass(self.dbs, batch_id, self.dispatcher)

    def run_step(self, call: StepCall) -> None:
        execute_call(self.ctx, self.steps, call)

    def sweep(self) -> SweepReport:
        return sweep(self.dbs, self.trigger)

    def close(self) -> None:
        self.callback_writer.close()
        self.dbs.close()
