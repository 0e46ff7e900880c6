"""Gateways to the real providers, as a runtime (local or cloud) sets them up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.db.pool import Databases
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
        # Overrides point at simulators this process runs (runtimes.simulated).
        simulated=overrides is not None,
    )


def zenrows_fetcher(settings: Settings, environ: Mapping[str, str]) -> ZenrowsHomepageFetcher:
    client = ZenrowsClient(
        environ["ZENROWS_API_KEY"], base_url=environ.get("ZENROWS_API_URL", DEFAULT_BASE_URL)
    )
    return ZenrowsHomepageFetcher(client)
