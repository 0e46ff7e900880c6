"""Providers for a local runtime: the real services when their secrets are set, otherwise the
built-in simulators, which speak real HTTP and call our receivers back."""

from __future__ import annotations

import dataclasses

from orchestrator.db.pool import Databases
from orchestrator.providers.simulators.clay import ClaySimulator, SimulatorConfig
from orchestrator.providers.simulators.n8n import n8n_simulator
from orchestrator.providers.simulators.zenrows import ZenrowsSimulator
from orchestrator.runtimes.providers import (
    SIMULATOR,
    Providers,
    clay_gateway,
    configured,
    describe_webhooks,
    n8n_gateway,
    real_zenrows,
    simulated_gateway,
    workflows_of,
    zenrows_fetcher,
    zenrows_target,
)
from orchestrator.settings import Settings
from orchestrator.steps.clay_gateway import ClayGateway
from orchestrator.steps.webhook_config import ClayConfigurationError


def simulated_webhooks(
    dbs: Databases,
    provider: str,
    simulator: ClaySimulator,
    settings: Settings,
    callback_base_url: str,
) -> ClayGateway:
    overrides = {
        w["workflow_slug"]: simulator.webhook_url(w["workflow_slug"])
        for w in workflows_of(dbs, provider)
    }
    cap = settings.clay_max_payload_bytes if provider == "clay" else None
    return simulated_gateway(
        settings, callback_base_url, overrides, simulator.config.auth_token, cap
    )


def setup_providers(
    dbs: Databases,
    settings: Settings,
    callback_base_url: str,
    callback: tuple[str, str],
    clay_simulator: SimulatorConfig | None = None,
) -> Providers:
    """Clay, n8n and Zenrows, each real where its variables are set (in the environment or
    `.env`), else simulated; `callback` is (secret header, secret) for the simulators."""
    result = Providers()
    base = settings.public_base_url or callback_base_url
    clay_workflows = workflows_of(dbs, "clay")
    if clay_simulator is None and configured(clay_workflows, settings):
        if settings.callback_secret is None:
            # Without it every callback of the real Clay is refused, and the run waits for
            # nothing until the leases expire.
            raise ClayConfigurationError(
                "CALLBACK_SECRET must be set when Clay webhooks are: Clay's HTTP API column"
                " sends it back in the x-callback-secret header (see docs/clay-setup.md)"
            )
        result.targets["clay"] = describe_webhooks(clay_workflows, settings)
        result.gateways["clay"] = clay_gateway(settings, dbs, base)
    else:
        config = clay_simulator or SimulatorConfig(
            rate_limit_per_second=settings.clay_simulator_rate_per_second,
            callback_delay_seconds=settings.clay_simulator_delay_seconds,
        )
        sim = _start(ClaySimulator(_with_callback(config, callback)))
        result.simulators["clay"] = sim
        result.gateways["clay"] = simulated_webhooks(dbs, "clay", sim, settings, callback_base_url)
    n8n_workflows = workflows_of(dbs, "n8n")
    if configured(n8n_workflows, settings):
        result.targets["n8n"] = describe_webhooks(n8n_workflows, settings)
        result.gateways["n8n"] = n8n_gateway(settings, base)
    else:
        n8n = _start(n8n_simulator(_with_callback(SimulatorConfig(), callback)))
        result.simulators["n8n"] = n8n
        result.gateways["n8n"] = simulated_webhooks(dbs, "n8n", n8n, settings, callback_base_url)
    zenrows = real_zenrows(settings)
    if zenrows is not None:
        result.targets["zenrows"] = zenrows_target(settings)
        result.gateways["zenrows"] = zenrows
    else:
        simulator = ZenrowsSimulator().start()
        result.simulators["zenrows"] = simulator
        result.gateways["zenrows"] = zenrows_fetcher(simulator.api_key, simulator.url)
    for name in result.simulators:
        result.targets[name] = SIMULATOR
    return result


def _with_callback(config: SimulatorConfig, callback: tuple[str, str]) -> SimulatorConfig:
    header, secret = callback
    return dataclasses.replace(
        config,
        auth_token=config.auth_token or "simulator-webhook-token",
        callback_secret=secret,
        callback_secret_header=header,
    )


def _start(simulator: ClaySimulator) -> ClaySimulator:
    return simulator.start()
