"""Provider gateways for a runtime: the real services when their secrets are set, otherwise
the built-in simulators (local runs and tests)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.db.pool import Databases
from orchestrator.providers.simulators.clay import ClaySimulator, SimulatorConfig
from orchestrator.providers.simulators.n8n import n8n_simulator
from orchestrator.providers.simulators.zenrows import ZenrowsSimulator
from orchestrator.providers.zenrows import DEFAULT_BASE_URL, ZenrowsClient
from orchestrator.settings import Settings
from orchestrator.steps.clay_gateway import ClayGateway
from orchestrator.steps.fetchers import ZenrowsHomepageFetcher


@dataclass
class Providers:
    gateways: dict[str, Any] = field(default_factory=dict)
    simulators: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        for simulator in self.simulators.values():
            simulator.stop()
        for gateway in self.gateways.values():
            gateway.close()


def workflows_of(dbs: Databases, provider: str) -> list[dict[str, Any]]:
    with dbs.hq.connection() as conn:
        rows = conn.execute(
            "SELECT workflow_slug, webhook_url_secret_name FROM db_driven_enrichment_workflows"
            " WHERE provider = %s AND is_active",
            (provider,),
        ).fetchall()
    return [dict(r) for r in rows]


def configured(workflows: list[dict[str, Any]], environ: Mapping[str, str]) -> bool:
    return any(environ.get(w["webhook_url_secret_name"] or "") for w in workflows)


def webhook_gateway(
    settings: Settings,
    callback_base_url: str,
    auth_token: str | None,
    overrides: Mapping[str, str] | None = None,
) -> ClayGateway:
    return ClayGateway(
        callback_base_url=callback_base_url,
        auth_token=auth_token,
        # A simulator enforces its own limit (if any) with 429s, which the client honours.
        rate_per_second=settings.clay_rate_per_second if overrides is None else float("inf"),
        max_attempts=settings.clay_max_attempts,
        overrides=overrides,
    )


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


def zenrows_fetcher(settings: Settings, environ: Mapping[str, str]) -> ZenrowsHomepageFetcher:
    client = ZenrowsClient(
        environ["ZENROWS_API_KEY"], base_url=environ.get("ZENROWS_API_URL", DEFAULT_BASE_URL)
    )
    return ZenrowsHomepageFetcher(client)


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
    import dataclasses

    header, secret = callback
    return dataclasses.replace(
        config,
        auth_token=config.auth_token or "simulator-webhook-token",
        callback_secret=secret,
        callback_secret_header=header,
    )


def _start(simulator: ClaySimulator) -> ClaySimulator:
    return simulator.start()
