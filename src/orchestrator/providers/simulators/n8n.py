"""An n8n workflow stand-in: the Clay simulator's webhook and callback machinery with
n8n-shaped results (a case-study extraction), so asynchronous n8n steps run locally and in
tests over real HTTP."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from orchestrator.providers.simulators.clay import ClaySimulator, SimulatorConfig

EXTRACTED_AT = "2025-01-01T00:00:00+00:00"


def synthesize_case_studies(row: Mapping[str, object]) -> dict[str, Any]:
    """Deterministic from the company's domain: the same row always gives the same result."""
    domain = str(row.get("domain") or row.get("company_domain") or "example.com")
    seed = int(hashlib.sha256(domain.encode()).hexdigest()[:8], 16)
    count = 1 + seed % 4
    return {
        "case_study_urls": [f"https://{domain}/customers/story-{i + 1}" for i in range(count)],
        "extracted_at": EXTRACTED_AT,
        "pages_scanned": 5 + seed % 20,
    }


def n8n_simulator(config: SimulatorConfig | None = None) -> ClaySimulator:
    return ClaySimulator(config, synthesizer=synthesize_case_studies)
