"""Gateways to the real providers, as a runtime (local or cloud) sets them up, and the one line
that says where each provider's calls go."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from orchestrator.db.pool import Databases
from orchestrator.providers.clay_client import webhook_host
from orchestrator.providers.zenrows import DEFAULT_BASE_URL, ZenrowsClient
from orchestrator.settings import Settings
from orchestrator.state.registry import cached_workflow
from orchestrator.steps.clay_gateway import ClayGateway
from orchestrator.steps.fetchers import ZenrowsHomepageFetcher
from orchestrator.steps.send_rate import SharedSendRate
from orchestrator.steps.submissions import free_submissions, held_workflows, lift_hold
from orchestrator.steps.webhook_config import ClayConfigurationError, configured_endpoints

log = logging.getLogger(__name__)

SIMULATOR = "simulator"


@dataclass
class Providers:
    gateways: dict[str, Any] = field(default_factory=dict)
    simulators: dict[str, Any] = field(default_factory=dict)
    # Where each provider's calls go, for people: "simulator", or hosts and webhook counts.
    targets: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        for simulator in self.simulators.values():
            simulator.stop()
        for gateway in self.gateways.values():
            gateway.close()


def workflows_of(dbs: Databases, provider: str) -> list[dict[str, Any]]:
    with dbs.hq.connection() as conn:
        rows = conn.execute(
            "SELECT workflow_slug, webhook_url_secret_name FROM db_driven_enrichment_workflows"
            " WHERE provider = %s AND is_active ORDER BY workflow_slug",
            (provider,),
        ).fetchall()
    return [dict(r) for r in rows]


def configured(workflows: list[dict[str, Any]], settings: Settings) -> bool:
    return any(settings.lookup(w["webhook_url_secret_name"] or "") for w in workflows)


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def clay_gateway(settings: Settings, dbs: Databases, callback_base_url: str) -> ClayGateway:
    """Real Clay: one send pace per workspace shared through the database, lifetime limits."""
    # An infinite rate (a benchmark's own simulator, say) paces nothing.
    unlimited = math.isinf(settings.clay_rate_per_second)
    shared_rate = (
        None
        if unlimited
        else SharedSendRate(
            dbs,
            f"clay:{settings.clay_workspace}",
            settings.clay_rate_per_second,
            settings.clay_rate_burst,
        )
    )
    return ClayGateway(
        callback_base_url=callback_base_url,
        lookup=settings.lookup,
        fallback_token=_secret(settings.clay_webhook_auth_token),
        shared_rate=shared_rate,
        max_attempts=settings.clay_max_attempts,
        submission_limit=settings.clay_webhook_submission_limit,
        max_payload_bytes=settings.clay_max_payload_bytes,
    )


def n8n_gateway(settings: Settings, callback_base_url: str) -> ClayGateway:
    return ClayGateway(
        callback_base_url=callback_base_url,
        lookup=settings.lookup,
        max_attempts=settings.clay_max_attempts,
    )


def simulated_gateway(
    settings: Settings,
    callback_base_url: str,
    overrides: Mapping[str, str],
    token: str | None,
    max_payload_bytes: int | None = None,
) -> ClayGateway:
    """Every workflow to this process's own simulator (which enforces its limits with 429s)."""
    return ClayGateway(
        callback_base_url=callback_base_url,
        lookup=settings.lookup,
        max_attempts=settings.clay_max_attempts,
        overrides=overrides,
        override_token=token,
        max_payload_bytes=max_payload_bytes,
        simulated=True,
    )


def zenrows_fetcher(api_key: str, base_url: str | None) -> ZenrowsHomepageFetcher:
    return ZenrowsHomepageFetcher(ZenrowsClient(api_key, base_url=base_url or DEFAULT_BASE_URL))


def real_zenrows(settings: Settings) -> ZenrowsHomepageFetcher | None:
    key = _secret(settings.zenrows_api_key)
    return zenrows_fetcher(key, settings.zenrows_api_url) if key else None


def zenrows_target(settings: Settings) -> str:
    return webhook_host(settings.zenrows_api_url or DEFAULT_BASE_URL)


def describe_webhooks(workflows: list[dict[str, Any]], settings: Settings) -> str:
    """'api.clay.com (company 3 webhooks, person 1)'; raises ClayConfigurationError when a
    workflow's variables do not fit together, so a bad list stops a process at its start."""
    hosts: list[str] = []
    counts: list[str] = []
    for workflow in workflows:
        name = workflow["webhook_url_secret_name"] or ""
        endpoints = configured_endpoints(name, settings.lookup) if name else []
        if not endpoints:
            counts.append(f"{workflow['workflow_slug']}: not configured")
            continue
        hosts.extend(e.host for e in endpoints if e.host not in hosts)
        counts.append(f"{_short(workflow['workflow_slug'])} {len(endpoints)}")
    return f"{', '.join(hosts) or 'nowhere'} ({', '.join(counts)})"


def _short(slug: str) -> str:
    # enrich_company_via_waterfall_in_clay -> company
    parts = slug.split("_")
    return parts[1] if len(parts) > 2 and parts[0] == "enrich" else slug


def lift_holds(dbs: Databases, gateways: Mapping[str, Any]) -> list[UUID]:
    """Holds of workflows whose webhooks (as this process is configured) have room again are
    lifted; the batches that waited on them, for a pass each."""
    waiting: list[UUID] = []
    for slug, reason in held_workflows(dbs).items():
        workflow = cached_workflow(dbs, slug)
        gateway = gateways.get(workflow.provider)
        limit = getattr(gateway, "submission_limit", None)
        if not isinstance(gateway, ClayGateway) or limit is None:
            continue
        try:
            room = free_submissions(dbs, gateway.endpoints(workflow), limit)
        except ClayConfigurationError:
            continue
        if room > 0:
            log.warning("%s sends again: its webhooks can take %d more rows", slug, room)
            waiting.extend(lift_hold(dbs, slug))
        else:
            log.error("%s is still stopped: %s", slug, reason)
    return waiting
