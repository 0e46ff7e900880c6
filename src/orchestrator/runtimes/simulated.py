"""Providers for a local runtime: the real services when their secrets are set, otherwise the
built-in simulators, which speak real HTTP and call our receivers back."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from orchestrator.db.pool import Databases
from orchestrator.providers.simulators.clay import ClaySimulator, SimulatorConfig
from orchestrator.providers.simulators.n8n import n8n_simulator
from orchestrator.providers.simulators.zenrows import ZenrowsSimulator
from orchestrator.runtimes.providers import (
    Providers,
    configured,
    webhook_gateway,
    workflows_of,
    zenrows_fetcher,
)
from orchestrator.settings import Settings
from orchestrator.steps.clay_gateway import ClayGateway


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
    return webhook_gateway(settings, callback_base_url, simulator.config.auth_token, overrides)


def setup_providers(
    dbs: Databases,
    settings: Settings,
    callback_base_url: str,
    callback: tuple[str, str],
    clay_simulator: SimulatorConfig | None = None,
    environ: Mapping[str, str] | None = None,
) -> Providers:
    """Clay, n8n and Zenrows; `callback` is (secret header, secret) for the simulators."""
    env = os.environ if environ is None else environ
    result = Providers()
    token = settings.clay_webhook_auth_token
    if clay_simulator is None and configured(workflows_of(dbs, "clay"), env):
        base = settings.public_base_url or callback_base_url
        result.gateways["clay"] = webhook_gateway(
            settings, base, token.get_secret_value() if token else None
        )
    else:
        config = clay_simulator or SimulatorConfig(
            rate_limit_per_second=settings.clay_simulator_rate_per_second,
            callback_delay_seconds=settings.clay_simulator_delay_seconds,
        )
        sim = _start(ClaySimulator(_with_callback(config, callback)))
        result.simulators["clay"] = sim
        result.gateways["clay"] = simulated_webhooks(dbs, "clay", sim, settings, callback_base_url)
    if configured(workflows_of(dbs, "n8n"), env):
        result.gateways["n8n"] = webhook_gateway(
            settings, settings.public_base_url or callback_base_url, None
        )
    else:
        n8n = _start(n8n_simulator(_with_callback(SimulatorConfig(), callback)))
        result.simulators["n8n"] = n8n
        result.gateways["n8n"] = simulated_webhooks(dbs, "n8n", n8n, settings, callback_base_url)
    if env.get("ZENROWS_API_KEY"):
        result.gateways["zenrows"] = zenrows_fetcher(settings, env)
    else:
        zenrows = ZenrowsSimulator().start()
        result.simulators["zenrows"] = zenrows
        fake_env = {"ZENROWS_API_KEY": zenrows.api_key, "ZENROWS_API_URL": zenrows.url}
        result.gateways["zenrows"] = zenrows_fetcher(settings, fake_env)
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
