"""Synchronous providers as the entity sender sees them: a payload in, result data out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from orchestrator.providers.zenrows import ZenrowsClient
from orchestrator.state.registry import WorkflowConfig


class ZenrowsHomepageFetcher:
    """scrape_homepage_v1: the company's homepage through Zenrows, with the workflow's
    provider_params (js_render, premium_proxy, ...) passed as Zenrows options."""

    def __init__(self, client: ZenrowsClient) -> None:
        self._client = client

    def fetch(self, workflow: WorkflowConfig, payload: dict[str, Any]) -> dict[str, Any]:
        url = f"https://{payload['domain']}"
        page = self._client.scrape(url, workflow.provider_params)
        return {
            "url": url,
            "homepage_html": page.html,
            "scraped_at": datetime.now(UTC).isoformat(),
        }

    def close(self) -> None:
        self._client.close()
