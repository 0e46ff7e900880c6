"""Modal deployment: `modal deploy src/worker.py`.

The only module that imports modal. It declares the image, secrets, functions, web endpoints
and the sweeper schedule, and each function calls plain code (`orchestrator.runtimes.cloud`)
that tests call without Modal. Every function is idempotent: Modal may re-run a preempted input.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from uuid import UUID

import modal

# FastAPI reads the endpoints' annotations: `Request` must be the real class for Modal's
# wrapper to hand over the request instead of asking for a query parameter named "request".
from fastapi import Request, Response

from orchestrator.engine.dispatch import StepCall
from orchestrator.runtimes.cloud import CloudRuntime
from orchestrator.settings import Settings

APP_NAME = "enrichment-orchestrator"
SHIPPED_PACKAGES = ("entities", "orchestrator")
# Paths inside those packages; the simulators stay home: a deployment talks to real providers.
NOT_SHIPPED = (
    "**/__pycache__/**",
    "**/*.pyc",
    "providers/simulators",
    # The laptop's whole-service runtime and the command line: no container runs them.
    "runtimes/service.py",
    "runtimes/simulated.py",
    "cli",
)

image = (
    modal.Image.debian_slim(python_version="3.11")
    .pip_install(
        "fastapi==0.165.0",
        "httptools==0.9.0",
        "idna==3.20",
        "platformdirs==4.14.7",
        "psycopg[binary]==3.3.9",
        "psycopg-pool==3.3.3",
        "publicsuffixlist==1.1.2.20261023",
        "pydantic==2.14.3",
        "pydantic-settings==2.16.3",
        "python-multipart==0.0.34",
        "requests==2.34.2",
        "sqlparse==0.6.1",
        "uvicorn==0.54.0",
        "uvloop==0.23.0",
    )
    # Our two packages with their data files (the default would ship Python files only).
    .add_local_python_source(*SHIPPED_PACKAGES, ignore=list(NOT_SHIPPED))
)

secrets = [
    modal.Secret.from_name("enrich-database", required_keys=["DATABASE_URL"]),
    modal.Secret.from_name(
        "enrich-clay",
        required_keys=[
            "CLAY_COMPANY_WEBHOOK_URL",
            "CLAY_PERSON_WEBHOOK_URL",
            "CLAY_WEBHOOK_AUTH_TOKEN",
        ],
    ),
    modal.Secret.from_name(
        "enrich-callbacks",
        required_keys=["CALLBACK_SECRET", "CALLBACK_SIGNING_KEY", "PUBLIC_BASE_URL", "API_KEY"],
    ),
]

app = modal.App(APP_NAME, image=image, secrets=secrets)

# Retrying is safe for every step: claims are atomic and conditional, so a re-run never calls
# Clay twice for an entity; a crash between claim and send is recovered by the sweeper.
step_retries = modal.Retries(max_retries=3, backoff_coefficient=2.0, initial_delay=2.0)


def spawn_step(call: dict[str, Any]) -> None:
    Steps().run_step.spawn(call)


def spawn_pass(batch_id: str) -> None:
    orchestrator_pass.spawn(batch_id)


@cache
def runtime() -> CloudRuntime:
    """One runtime (and connection pool) per container, reused across inputs."""
    return CloudRuntime(Settings(), spawn_step, spawn_pass)


@app.cls(timeout=900, retries=step_retries, max_containers=20, scaledown_window=120)
class Steps:
    """Step functions. A chunk of item ids in, that chunk's item-steps finished out."""

    @modal.enter()
    def open(self) -> None:
        self.runtime = runtime()

    @modal.exit()
    def close(self) -> None:
        self.runtime.close()
        runtime.cache_clear()

    def _run(self, step: str, batch_id: str, item_ids: list[str]) -> None:
        call = StepCall(UUID(batch_id), step, tuple(UUID(i) for i in item_ids))
        self.runtime.run_step(call)

    @modal.method()
    def run_step(self, call: dict[str, Any]) -> None:
        """Any registry workflow, including ones added as rows after deploy and manual play
        runs over companies (`StepCall.to_json()` form)."""
        self.runtime.run_step(StepCall.from_json(call))

    @modal.method()
    def normalize_all_core_values(self, batch_id: str, item_ids: list[str]) -> None:
        self._run("normalize_all_core_values", batch_id, item_ids)

    @modal.method()
    def split(self, batch_id: str, item_ids: list[str]) -> None:
        self._run("split", batch_id, item_ids)

    @modal.method()
    def start_enrich_company_via_waterfall_in_clay(
        self, batch_id: str, item_ids: list[str]
    ) -> None:
        self._run("enrich_company_via_waterfall_in_clay", batch_id, item_ids)

    @modal.method()
    def start_enrich_person_via_waterfall_in_clay(self, batch_id: str, item_ids: list[str]) -> None:
        self._run("enrich_person_via_waterfall_in_clay", batch_id, item_ids)

    @modal.method()
    def consolidate(self, batch_id: str, item_ids: list[str]) -> None:
        self._run("consolidate", batch_id, item_ids)


@app.function(timeout=300, retries=step_retries)
def orchestrator_pass(batch_id: str) -> dict[str, Any]:
    result = runtime().orchestrator_pass(UUID(batch_id))
    return {
        "applied": result.applied,
        "advanced": result.advanced,
        "claimed": result.claimed,
        "done": result.done,
    }


@app.function(timeout=600, schedule=modal.Cron("*/2 * * * *"))
def sweeper() -> dict[str, Any]:
    report = runtime().sweep()
    return {"entities": dict(report.entities), "items": dict(report.items)}


async def _receive(workflow_slug: str, request: Request) -> Response:
    from orchestrator.web.receiver_routes import receive_request

    return await receive_request(runtime(), workflow_slug, request)


@app.function(timeout=60)
@modal.concurrent(max_inputs=50)
@modal.fastapi_endpoint(method="POST")
async def receive_enrich_company_via_waterfall_in_clay(request: Request) -> Response:
    return await _receive("enrich_company_via_waterfall_in_clay", request)


@app.function(timeout=60)
@modal.concurrent(max_inputs=50)
@modal.fastapi_endpoint(method="POST")
async def receive_enrich_person_via_waterfall_in_clay(request: Request) -> Response:
    return await _receive("enrich_person_via_waterfall_in_clay", request)


@app.function(timeout=150)
@modal.concurrent(max_inputs=50)
@modal.asgi_app()
def api() -> Any:
    """Uploads, status and receivers (and later APIs) as one FastAPI app."""
    from orchestrator.web.app import create_app

    rt = runtime()
    web = create_app(lambda: rt)
    web.state.runtime = rt
    return web
