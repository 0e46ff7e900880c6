"""The runtime of a deployment where steps, passes and receivers run in separate containers.

Everything here is plain code; `worker.py` only supplies the spawn functions. One instance is
opened per container and reused by every input it serves.
"""

from __future__ import annotations

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
from orchestrator.runtimes.providers import (
    Providers,
    clay_gateway,
    describe_webhooks,
    lift_holds,
    n8n_gateway,
    real_zenrows,
    workflows_of,
    zenrows_target,
)
from orchestrator.settings import Settings
from orchestrator.steps.table import step_table


class CloudConfigurationError(RuntimeError):
    pass


def cloud_gateways(settings: Settings, dbs: Databases) -> Providers:
    """Real providers only: a workflow whose webhook is not configured fails with that reason;
    webhook variables that do not fit together stop the container at its start."""
    base = _required(settings, "public_base_url")
    providers = Providers()
    providers.gateways["clay"] = clay_gateway(settings, dbs, base)
    providers.targets["clay"] = describe_webhooks(workflows_of(dbs, "clay"), settings)
    providers.gateways["n8n"] = n8n_gateway(settings, base)
    providers.targets["n8n"] = describe_webhooks(workflows_of(dbs, "n8n"), settings)
    zenrows = real_zenrows(settings)
    if zenrows is not None:
        providers.gateways["zenrows"] = zenrows
        providers.targets["zenrows"] = zenrows_target(settings)
    return providers


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
        self.providers = cloud_gateways(settings, self.dbs)
        self.ctx = StepContext(
            self.dbs, settings, self.trigger, self.providers.gateways, signing_key=self.signing_key
        )
        # A new container may come with a webhook that has room: batches held for want of
        # one send again.
        for batch_id in lift_holds(self.dbs, self.providers.gateways):
            self.trigger.request(batch_id)

    def orchestrator_pass(self, batch_id: UUID) -> PassResult:
        wait_for_scheduled_pass(self.dbs, batch_id)
        return run_pass(self.dbs, batch_id, self.dispatcher)

    def run_step(self, call: StepCall) -> None:
        execute_call(self.ctx, self.steps, call)

    def sweep(self) -> SweepReport:
        return sweep(self.dbs, self.trigger)

    def close(self) -> None:
        self.callback_writer.close()
        self.providers.close()
        self.dbs.close()
