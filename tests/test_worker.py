"""The Modal deployment: `src/worker.py` declares the app, and its functions run the same
pipeline as the local runner when called through `.local()`."""

from __future__ import annotations

import importlib
import secrets
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import UUID

import pytest
import requests

from conftest import DatabasePair
from orchestrator.db.pool import Databases
from orchestrator.engine.passes import run_pass
from orchestrator.engine.spawning import SpawningDispatcher
from orchestrator.providers.simulators.clay import ClaySimulator, SimulatorConfig
from orchestrator.runtimes.service import LocalService, ReceiverServer
from orchestrator.settings import Settings, get_settings
from support.pipeline import apollo_csv, upload
from test_clay_enrichment import SEED_SCENARIO

SRC = Path(__file__).parents[1] / "src"
STEP_METHODS = {
    "normalize_all_core_values": "normalize_all_core_values",
    "split": "split",
    "enrich_company_via_waterfall_in_clay": "start_enrich_company_via_waterfall_in_clay",
    "enrich_person_via_waterfall_in_clay": "start_enrich_person_via_waterfall_in_clay",
    "consolidate": "consolidate",
}


def _import_worker() -> ModuleType:
    sys.modules.pop("worker", None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return importlib.import_module("worker")


def test_worker_imports_cleanly_and_declares_the_deployment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET", "MODAL_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MODAL_CONFIG_PATH", "/nonexistent/modal.toml")
    worker = _import_worker()
    import modal

    functions = {
        name: getattr(worker, name)
        for name in (
            "orchestrator_pass",
            "sweeper",
            "api",
            "receive_enrich_company_via_waterfall_in_clay",
            "receive_enrich_person_via_waterfall_in_clay",
        )
    }
    assert all(isinstance(f, modal.Function) for f in functions.values())
    info = {name: f.info() for name, f in functions.items()}
    for receiver in (
        "receive_enrich_company_via_waterfall_in_clay",
        "receive_enrich_person_via_waterfall_in_clay",
    ):
        assert info[receiver].web_info is not None and info[receiver].web_info.method == "POST"
    assert info["api"].web_info is not None and info["api"].web_info.method is None  # ASGI app
    assert info["sweeper"].schedule is not None and "*/2" in str(info["sweeper"].schedule)
    assert info["orchestrator_pass"].web_info is None and info["orchestrator_pass"].max_retries
    assert all(i.timeout for i in info.values())
    assert isinstance(worker.Steps, modal.Cls)
    steps = worker.Steps()
    for method in [*STEP_METHODS.values(), "run_step"]:
        assert hasattr(steps, method)


# What the containers import: the cloud runtime, the API app, every step, the receivers.
_CLOUD_IMPORTS = """
import sys
sys.path.insert(0, sys.argv[1])
import orchestrator.runtimes.cloud, orchestrator.web.app, orchestrator.steps.table
import orchestrator.web.receiver_routes
from orchestrator.db.migrate import discover, hq_migrations_dir, workspace_migrations_dir
assert discover([hq_migrations_dir(), workspace_migrations_dir()])
loaded = [m.__file__ for n, m in sys.modules.items() if n.split(".")[0] == "orchestrator"]
assert all(f.startswith(sys.argv[1]) for f in loaded), loaded
print(sorted(n for n in sys.modules if n.startswith("orchestrator.providers.simulators")))
"""


def test_the_files_the_image_ships_are_enough_for_every_container(tmp_path: Path) -> None:
    """Copy what `add_local_python_source` ships (its ignore patterns applied as Modal does)
    and import the cloud code from that copy alone: a missing package fails here, not on Modal;
    the simulators are not shipped and not needed."""
    import modal

    worker = _import_worker()
    ignored = modal.FilePatternMatcher(*worker.NOT_SHIPPED)
    for package in worker.SHIPPED_PACKAGES:
        for path in (SRC / package).rglob("*"):
            relative = path.relative_to(SRC / package)
            if path.is_file() and not ignored(relative):
                target = tmp_path / package / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(path.read_bytes())
    assert (tmp_path / "orchestrator/db/sql/entities.sql").exists()
    assert not (tmp_path / "orchestrator/providers/simulators").exists()
    result = subprocess.run(
        [sys.executable, "-c", _CLOUD_IMPORTS, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


class _FakeSpawn:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, call: dict[str, Any]) -> None:
        self.calls.append(call)


def test_a_ten_thousand_item_pass_makes_a_few_dozen_spawns(dbs: Databases) -> None:
    batch = upload(dbs, apollo_csv(10_000, 2_000), "apollo-lead-enrichment").batch_id
    spawn = _FakeSpawn()
    result = run_pass(dbs, batch, SpawningDispatcher(spawn))
    assert result.claimed == 10_000
    assert len(spawn.calls) <= 30
    assert sum(len(c["item_ids"]) for c in spawn.calls) == 10_000


@pytest.fixture
def deployed(
    db_urls: DatabasePair, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ModuleType, ReceiverServer, ClaySimulator, list[Any], list[Any]]]:
    """worker.py wired to the test databases, the Clay simulator and a local web server."""
    secret, server = secrets.token_urlsafe(16), ReceiverServer()
    simulator = ClaySimulator(SimulatorConfig(auth_token="tok", callback_secret=secret)).start()
    env = {
        "DATABASE_URL": db_urls.urls.hq,
        "WORKSPACE_DATABASE_URL": db_urls.urls.workspace,
        "CALLBACK_SECRET": secret,
        "CALLBACK_SIGNING_KEY": secrets.token_hex(32),
        "PUBLIC_BASE_URL": server.url,
        "CLAY_COMPANY_WEBHOOK_URL": simulator.webhook_url("company"),
        "CLAY_PERSON_WEBHOOK_URL": simulator.webhook_url("person"),
        "CLAY_WEBHOOK_AUTH_TOKEN": "tok",
        "PASS_COALESCE_SECONDS": "0.05",
        "API_KEY": "test-api-key",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    worker = _import_worker()
    passes: list[Any] = []
    steps: list[Any] = []
    monkeypatch.setattr(worker, "spawn_pass", passes.append)
    monkeypatch.setattr(worker, "spawn_step", steps.append)
    worker.runtime.cache_clear()
    server.serve(worker.api.local())
    try:
        yield worker, server, simulator, passes, steps
    finally:
        simulator.stop()
        server.stop()
        worker.runtime().close()
        worker.runtime.cache_clear()
        get_settings.cache_clear()


def _drive_like_modal(
    worker: ModuleType, passes: list[Any], steps: list[Any], batch: UUID, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if passes:
            batch_id = passes.pop(0)
            outcome = worker.orchestrator_pass.local(batch_id)
            if outcome["done"] and UUID(batch_id) == batch:
                return
        elif steps:
            call = steps.pop(0)
            method = getattr(worker.Steps(), STEP_METHODS[call["step_name"]])
            method.local(call["batch_id"], call["item_ids"])
        else:
            time.sleep(0.05)
    raise TimeoutError(f"batch {batch} did not finish")


def _projection(dbs: Databases, batch: UUID) -> dict[str, Any]:
    with dbs.hq.connection() as conn:

        def rows(sql: str) -> list[dict[str, Any]]:
            return [dict(r) for r in conn.execute(sql, {"b": batch})]

        return {
            "company_states": rows(
                "SELECT s.status, count(*) AS n FROM company_workflow_states s JOIN"
                " normalized_companies c ON c.id = s.company_id WHERE c.batch_id = %(b)s GROUP BY 1"
            ),
            "company_results": rows(
                "SELECT count(*) AS n FROM company_enrichment_results r JOIN normalized_companies c"
                " ON c.id = r.company_id WHERE c.batch_id = %(b)s"
            ),
            "item_steps": rows(
                "SELECT step_name, status, meta->>'skipped' AS skipped, count(*) AS n"
                " FROM workflow_states WHERE batch_id = %(b)s GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
            ),
            "leads": rows(
                "SELECT full_name, email, title, company_domain, company_industry,"
                " company_employee_count FROM final_leads WHERE batch_id = %(b)s ORDER BY email"
            ),
            "jobs": rows(
                "SELECT p.email, w.position, w.company_name, w.title FROM person_work_history w"
                " JOIN normalized_people p ON p.id = w.person_id WHERE w.batch_id = %(b)s"
                " ORDER BY 1, 2"
            ),
        }


def test_modal_functions_run_the_seed_scenario_like_the_local_runner(
    dbs: Databases,
    deployed: tuple[ModuleType, ReceiverServer, ClaySimulator, list[Any], list[Any]],
    tmp_path: Path,
) -> None:
    worker, server, simulator, passes, steps = deployed
    # The local runner with its own simulator, the reference to compare with.
    with LocalService(Settings(enrich_home=tmp_path), dbs, simulator=SimulatorConfig()) as local:
        local_batch = upload(dbs, SEED_SCENARIO, "apollo-lead-enrichment").batch_id
        local.runtime.run_batch(local_batch, timeout=60)

    created = requests.post(
        f"{server.url}/batches",
        files={"file": ("seed.csv", SEED_SCENARIO, "text/csv")},
        data={"client": "modal"},
        headers={"x-api-key": "test-api-key"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    batch = UUID(created.json()["batch_id"])
    assert passes, "the upload must spawn an orchestrator pass"
    _drive_like_modal(worker, passes, steps, batch)

    assert passes == [] or all(UUID(p) != batch for p in passes)
    assert simulator.submission_count("company") == 3
    assert simulator.submission_count("person") == 6
    cloud, local_view = _projection(dbs, batch), _projection(dbs, local_batch)
    assert cloud == local_view
    assert cloud["company_states"] == [{"status": "COMPLETED", "n": 3}]


@pytest.mark.parametrize(
    "endpoint",
    ["receive_enrich_company_via_waterfall_in_clay", "receive_enrich_person_via_waterfall_in_clay"],
)
def test_the_callback_endpoints_take_requests_as_modal_serves_them(
    dbs: Databases,
    deployed: tuple[ModuleType, ReceiverServer, ClaySimulator, list[Any], list[Any]],
    endpoint: str,
) -> None:
    """Modal wraps a `fastapi_endpoint` function in an app of its own; a request must reach
    the receiver (here refused for its missing secret, with a dead letter), not be taken for
    a query parameter."""
    from fastapi.testclient import TestClient
    from modal._runtime.asgi import magic_fastapi_app

    worker = deployed[0]
    # The function as written, which Modal hands to its wrapper in the container.
    handler = getattr(worker, endpoint)._raw_f_
    app = magic_fastapi_app(handler, "POST", docs=False)
    body = {"entity_id": str(UUID(int=1)), "callback_token": "x.1.y", "data": {}}
    with TestClient(app) as client:
        answer = client.post("/", json=body)
    assert answer.status_code == 401, answer.text
    assert "x-callback-secret" in answer.json()["error"]
    with dbs.hq.connection() as conn:
        kept = conn.execute("SELECT workflow_slug, http_status FROM receiver_dead_letters")
        assert [tuple(r.values()) for r in kept] == [(endpoint.removeprefix("receive_"), 401)]
