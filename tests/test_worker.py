"""The Modal deployment: `src/worker.py` declares the app, and its functions run the same
pipeline as the local runner when called through `.local()`."""

from __future__ import annotations

import ast
import importlib
import secrets
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


@pytest.fixture
def no_modal_account(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET", "MODAL_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MODAL_CONFIG_PATH", "/nonexistent/modal.toml")
    for name in (
        "MODAL_PROXY_AUTH",
        "DATABASE_CONNECTION_BUDGET",
        "POOL_MAX_SIZE",
        "POOL_MIN_SIZE",
    ):
        monkeypatch.delenv(name, raising=False)


RECEIVERS = {
    "receive_enrich_company_via_waterfall_in_clay": "enrich_company_via_waterfall_in_clay",
    "receive_enrich_person_via_waterfall_in_clay": "enrich_person_via_waterfall_in_clay",
}


def _class_function(cls: Any) -> Any:
    return cls._get_class_service_function()


def _web_configs(cls: Any) -> dict[str, Any]:
    """Each web method's webhook configuration, as Modal sends it at deploy."""
    from modal._utils.async_utils import synchronizer

    partials = synchronizer._translate_in(cls)._get_partial_functions()
    return {
        name: p.params.webhook_config
        for name, p in partials.items()
        if p.params.webhook_config is not None and p.params.webhook_config.type
    }


def test_worker_imports_cleanly_and_declares_the_deployment(no_modal_account: None) -> None:
    worker = _import_worker()
    import modal

    functions = {name: getattr(worker, name) for name in ("orchestrator_pass", "sweeper", "api")}
    assert all(isinstance(f, modal.Function) for f in functions.values())
    info = {name: f.info() for name, f in functions.items()}
    assert info["api"].web_info is not None and info["api"].web_info.method is None  # ASGI app
    assert info["orchestrator_pass"].web_info is None and info["orchestrator_pass"].max_retries
    assert all(i.timeout for i in info.values())
    assert isinstance(worker.Steps, modal.Cls)
    steps = worker.Steps()
    for method in [*STEP_METHODS.values(), "run_step"]:
        assert hasattr(steps, method)
    # The receivers: one class, its pool opened by @modal.enter, 50 callbacks at once.
    assert isinstance(worker.Receivers, modal.Cls)
    receivers = _class_function(worker.Receivers).info()
    assert receivers.concurrency_info is not None
    assert receivers.concurrency_info.max_inputs == 50
    details = receivers.method_details
    for endpoint in RECEIVERS:
        assert details[endpoint].method == "POST"
    assert details["receivers"].method is None  # the /receivers/<slug> ASGI app
    # Labels keep the URLs the endpoints had as plain functions (<app>-<function>).
    labels = {name: c.requested_suffix for name, c in _web_configs(worker.Receivers).items()}
    assert labels == {
        "receive_enrich_company_via_waterfall_in_clay": (
            "enrichment-orchestrator-receive-enrich-company-via-waterfall-in-clay"
        ),
        "receive_enrich_person_via_waterfall_in_clay": (
            "enrichment-orchestrator-receive-enrich-person-via-waterfall-in-clay"
        ),
        "receivers": "enrichment-orchestrator-receivers",
    }
    assert worker.api.info().web_info is not None


def _decorator_keywords(worker_source: str) -> dict[str, dict[str, str]]:
    """The keywords of each `@app.function(...)` / `@app.cls(...)` in worker.py, as code."""
    declared = {}
    for node in ast.parse(worker_source).body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for decorator in node.decorator_list:
            if (
                isinstance(decorator, ast.Call)
                and isinstance(decorator.func, ast.Attribute)
                and isinstance(decorator.func.value, ast.Name)
                and decorator.func.value.id == "app"
                and decorator.func.attr in ("function", "cls")
            ):
                declared[node.name] = {
                    str(k.arg): ast.unparse(k.value) for k in decorator.keywords if k.arg
                }
    return declared


def test_every_function_declares_its_max_containers_from_the_budget_table(
    no_modal_account: None,
) -> None:
    worker = _import_worker()
    declared = _decorator_keywords((SRC / "worker.py").read_text(encoding="utf-8"))
    assert set(declared) == set(worker.MAX_CONTAINERS)
    for name, keywords in declared.items():
        assert keywords.get("max_containers") == f"MAX_CONTAINERS['{name}']", name


def test_the_sweeper_runs_one_at_a_time_and_cannot_pile_up(no_modal_account: None) -> None:
    worker = _import_worker()
    info = worker.sweeper.info()
    assert worker.MAX_CONTAINERS["sweeper"] == 1
    assert str(info.schedule) == f"Cron('*/{worker.SWEEP_EVERY_MINUTES} * * * *', UTC)"
    # Stopped before the next run is due, and never retried into the next one.
    assert info.timeout < worker.SWEEP_EVERY_MINUTES * 60
    assert not info.max_retries


def test_proxy_auth_guards_the_api_and_never_the_receivers(
    no_modal_account: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for value, guarded in (("true", True), ("false", False)):
        monkeypatch.setenv("MODAL_PROXY_AUTH", value)
        worker = _import_worker()
        web = worker.api.info().web_info
        assert web is not None and web.unauthenticated is not guarded
        details = _class_function(worker.Receivers).info().method_details
        assert all(endpoint.unauthenticated for endpoint in details.values())
        assert worker.deployment["MODAL_PROXY_AUTH"] == value


def test_proxy_auth_refuses_a_callback_base_on_the_api(
    no_modal_account: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clay calls PUBLIC_BASE_URL/receivers/<slug>; behind proxy auth the api would refuse it."""
    from orchestrator.runtimes.cloud import CloudConfigurationError

    monkeypatch.setenv("MODAL_PROXY_AUTH", "true")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://acme--enrichment-orchestrator-api.modal.run")
    with pytest.raises(CloudConfigurationError, match="enrichment-orchestrator-receivers"):
        _import_worker()
    monkeypatch.setenv(
        "PUBLIC_BASE_URL", "https://acme--enrichment-orchestrator-receivers.modal.run"
    )
    _import_worker()


def test_a_budget_too_small_for_every_container_fails_the_deploy(
    no_modal_account: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.runtimes.budget import ConnectionBudgetError

    monkeypatch.setenv("DATABASE_CONNECTION_BUDGET", "12")
    with pytest.raises(ConnectionBudgetError) as refused:
        _import_worker()
    message = str(refused.value)
    assert "DATABASE_CONNECTION_BUDGET=12" in message
    assert "Steps 20" in message and "sweeper 1" in message


def test_each_container_pool_is_its_share_of_the_budget(
    no_modal_account: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.runtimes.budget import connections

    monkeypatch.setenv("DATABASE_CONNECTION_BUDGET", "60")
    monkeypatch.setenv("POOL_MIN_SIZE", "2")
    worker = _import_worker()
    assert connections(worker.POOL_SIZES, worker.MAX_CONTAINERS) <= 60
    assert min(worker.POOL_SIZES.values()) >= 1
    # The figure checked at deploy travels to the containers.
    assert worker.deployment["DATABASE_CONNECTION_BUDGET"] == "60"

    class Recorder:
        def __init__(self, settings: Settings, *spawns: Any) -> None:
            self.settings = settings

        def close(self) -> None:
            pass

    monkeypatch.setattr(worker, "CloudRuntime", Recorder)
    try:
        opened = {f: worker.runtime(f).settings for f in worker.MAX_CONTAINERS}
    finally:
        worker.close_runtimes()
    for function, settings in opened.items():
        assert settings.pool_max_size == worker.POOL_SIZES[function]
        assert settings.pool_min_size == min(2, worker.POOL_SIZES[function])


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
    worker.close_runtimes()
    server.serve(worker.api.local())
    try:
        yield worker, server, simulator, passes, steps
    finally:
        simulator.stop()
        server.stop()
        worker.close_runtimes()
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


def _serve_like_a_container(worker: ModuleType) -> tuple[Any, dict[str, Any]]:
    """A Receivers container as Modal starts one: the instance, its @modal.enter methods, then
    each web method bound to the instance and wrapped the way Modal wraps it."""
    from modal._partial_function import _find_callables_for_obj, _PartialFunctionFlags
    from modal._runtime.asgi import magic_fastapi_app
    from modal._utils.async_utils import synchronizer

    instance = worker.Receivers()._cached_user_cls_instance()
    for enter in _find_callables_for_obj(
        instance, _PartialFunctionFlags.ENTER_POST_SNAPSHOT
    ).values():
        enter()
    partials = synchronizer._translate_in(worker.Receivers)._get_partial_functions()
    apps = {}
    for name, config in _web_configs(worker.Receivers).items():
        bound = partials[name].raw_f.__get__(instance)
        if config.method:
            apps[name] = magic_fastapi_app(bound, config.method, config.web_endpoint_docs)
        else:
            apps[name] = bound()
    return instance, apps


def test_the_receivers_open_their_pool_when_the_container_starts(
    deployed: tuple[ModuleType, ReceiverServer, ClaySimulator, list[Any], list[Any]],
) -> None:
    from modal._partial_function import _find_callables_for_obj, _PartialFunctionFlags

    worker = deployed[0]
    worker.close_runtimes()
    instance, _ = _serve_like_a_container(worker)
    # Before any callback: the runtime is open, its pool holds a connection.
    opened = instance.runtime
    assert worker.runtime("Receivers") is opened
    assert opened.dbs.hq.get_stats()["pool_size"] >= 1
    for leave in _find_callables_for_obj(instance, _PartialFunctionFlags.EXIT).values():
        leave()
    assert "Receivers" not in worker._runtimes


@pytest.mark.parametrize("endpoint", [*RECEIVERS, "receivers"])
def test_the_callback_endpoints_take_requests_as_modal_serves_them(
    dbs: Databases,
    deployed: tuple[ModuleType, ReceiverServer, ClaySimulator, list[Any], list[Any]],
    endpoint: str,
) -> None:
    """Modal wraps a `fastapi_endpoint` method in an app of its own; a request must reach the
    receiver (here refused for its missing secret, with a dead letter), not be taken for a
    query parameter. The `receivers` app serves /receivers/<slug> for every workflow."""
    from fastapi.testclient import TestClient

    worker = deployed[0]
    _, apps = _serve_like_a_container(worker)
    slug = RECEIVERS.get(endpoint, "enrich_person_via_waterfall_in_clay")
    path = "/" if endpoint in RECEIVERS else f"/receivers/{slug}"
    body = {"entity_id": str(UUID(int=1)), "callback_token": "x.1.y", "data": {}}
    with TestClient(apps[endpoint]) as client:
        answer = client.post(path, json=body)
    assert answer.status_code == 401, answer.text
    assert "x-callback-secret" in answer.json()["error"]
    with dbs.hq.connection() as conn:
        kept = conn.execute("SELECT workflow_slug, http_status FROM receiver_dead_letters")
        assert [tuple(r.values()) for r in kept] == [(slug, 401)]
