"""Schemathesis fuzzes /api/columnline/ from its OpenAPI schema against the real database.

Valid-looking data must never get a 5xx; invalid data must be refused (4xx) and leave every
table exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from orchestrator.columnline import config, runs
from orchestrator.columnline.fields import MAX_BODY_BYTES
from orchestrator.columnline.inputs import ClientIn, PromptIn, RunStart, StageComplete, StageStart
from orchestrator.db.pool import Databases
from orchestrator.web.columnline_routes import PREFIX
from test_columnline_api import API_KEY, V2_TABLES, columnline_app

MAX_EXAMPLES = 30
AUTH = {"x-api-key": API_KEY}
Check = Callable[..., Any]
Operation = APIOperation[Any, Any, Any, Any]
AnyCase = Case[Any]


Known = dict[str, str]


def seed(dbs: Databases) -> list[Known]:
    """Rows generated requests can be pointed at, so they run more than the 404 path: a client,
    a prompt, a run with an open stage and a run ready to publish."""
    with dbs.hq.connection() as conn:
        config.put_client(conn, "acme", ClientIn(name="Acme"))
        prompt = PromptIn(stage="research", step_name="extract", template="List claims")
        config.put_prompt(conn, "research.main", prompt)
        run_ids = [
            runs.start_run(conn, RunStart(client_slug="acme", target_company=company)).run_id
            for company in ("Globex", "Initech")
        ]
        for run_id in run_ids:
            runs.start_stage(conn, StageStart(run_id=run_id, stage="research"))
        runs.complete_stage(conn, StageComplete(run_id=run_ids[1], stage="research"))
    names = {"slug": "acme", "client_slug": "acme", "prompt_key": "research.main"}
    return [{**names, "run_id": str(run_id)} for run_id in run_ids]


def fingerprint(dbs: Databases) -> dict[str, str]:
    """A digest of every row of every table of the API."""
    digests = " UNION ALL ".join(
        f"SELECT '{t}' AS t, md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), ''))"
        f" AS digest FROM {t} x"
        for t in V2_TABLES
    )
    with dbs.hq.connection() as conn:
        return {r["t"]: r["digest"] for r in conn.execute(digests).fetchall()}


def operations(app: FastAPI) -> list[Operation]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    found: list[Operation] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        found.append(result.ok())
    return [op for op in found if op.path.startswith(PREFIX)]


def has_input(operation: Operation) -> bool:
    """Whether there is anything but the API key (which the tests send) to make invalid."""
    names = {p.name.lower() for p in operation.iter_parameters()}
    return bool(names - set(AUTH)) or bool(operation.body)


def aim(drawn: tuple[AnyCase, Known | None]) -> AnyCase:
    """The generated case with its ids and keys replaced by existing ones (when drawn)."""
    case, known = drawn
    if known is not None:
        if isinstance(case.body, dict):
            case.body = {k: known.get(k, v) for k, v in case.body.items()}
        if case.path_parameters:
            case.path_parameters = {k: known.get(k, v) for k, v in case.path_parameters.items()}
    return case


def fuzz(operation: Operation, strategy: st.SearchStrategy[AnyCase], checks: list[Check]) -> None:
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: AnyCase) -> None:
        response = case.call()
        case.validate_response(response, checks=checks)

    run()


@pytest.fixture
def app(dbs: Databases) -> FastAPI:
    return columnline_app(dbs)


def test_valid_input_never_gets_a_server_error(app: FastAPI, dbs: Databases) -> None:
    known = seed(dbs)
    checks: list[Check] = [
        not_a_server_error,
        status_code_conformance,
        response_schema_conformance,
    ]
    # Publish first, while the ready run has no stage left open by fuzzed /stages/start calls;
    # the operations after it then also meet a published run.
    ops = sorted(operations(app), key=lambda op: op.path != f"{PREFIX}/publish")
    assert len(ops) == 20
    for operation in ops:
        generated = operation.as_strategy(GenerationMode.POSITIVE, headers=AUTH)
        targets = st.none() | st.sampled_from(known)
        fuzz(operation, st.tuples(generated, targets).map(aim), checks)


def nested(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels - 1):
        value = {"deeper": [value]} if levels % 2 else [value]
    return value


def extreme_body(which: int, run_id: str) -> Any:
    """Bodies past the API's limits: nested past 64 levels, over the size limit as one string
    or as many values, a counter too large for its column."""
    if which == 0:
        return {"run_id": run_id, "stage": "research", "step_name": "x", "output": nested(70)}
    if which == 1:
        return nested(300)
    if which == 2:
        return {"run_id": run_id, "stage": "research", "output": "x" * (MAX_BODY_BYTES + 1)}
    if which == 3:
        return {"run_id": run_id, "contacts": [{"full_name": "A", "data": {"n": [0] * 4_000_000}}]}
    return {"name": "x", "title": "t", "position": 2**40, "stage": "s", "template": "t"}


def extremes(operation: Operation, known: Known) -> st.SearchStrategy[AnyCase]:
    """Cases of `operation` with bodies past the limits, aimed at existing rows. Built from an
    index, so Hypothesis never prints a 10 MB body in a report."""
    path = {p.name: known.get(p.name, "overview") for p in operation.path_parameters}
    return st.integers(0, 4).map(
        lambda which: operation.Case(
            body=extreme_body(which, known["run_id"]),
            headers=AUTH,
            media_type="application/json",
            path_parameters=path,
        )
    )


def refused(ctx: Any, response: Any, case: AnyCase) -> bool | None:
    """Schemathesis' negative-data check, with 413 among the refusals: a generated body past
    the size limit (a text over its maximum length can be) is refused before it is read."""
    if response.status_code == 413:
        return None
    result: bool | None = negative_data_rejection(ctx, response, case)
    return result


def test_invalid_input_is_refused_and_changes_nothing(app: FastAPI, dbs: Databases) -> None:
    known = seed(dbs)[0]
    before = fingerprint(dbs)
    checks: list[Check] = [not_a_server_error, refused, status_code_conformance]
    for operation in filter(has_input, operations(app)):
        fuzz(operation, operation.as_strategy(GenerationMode.NEGATIVE, headers=AUTH), checks)
        if operation.body:
            limits: list[Check] = [not_a_server_error, status_code_conformance]
            fuzz(operation, extremes(operation, known), limits)
    assert fingerprint(dbs) == before
