"""The step table: which function runs each workflow. Adding a provider is a line here and
its module; adding a workflow of a known provider is a registry row."""

from __future__ import annotations

from orchestrator.engine.calls import StepTable
from orchestrator.steps.consolidate import consolidate
from orchestrator.steps.entity_sender import fetch_and_store
from orchestrator.steps.normalize import normalize_all_core_values
from orchestrator.steps.split import split
from orchestrator.steps.webhook_sender import send_to_webhook


def step_table() -> StepTable:
    return StepTable(
        internal={
            "normalize_all_core_values": normalize_all_core_values,
            "split": split,
            "consolidate": consolidate,
        },
        providers={
            "clay": send_to_webhook,
            "n8n": send_to_webhook,
            "zenrows": fetch_and_store,
        },
    )
