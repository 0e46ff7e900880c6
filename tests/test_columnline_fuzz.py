"""Schemathesis fuzzes /api/columnline/ from its OpenAPI schema against the real database.

Valid-looking data must never get a 5xx; invalid data must be refused (4xx) and leave every
table exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from columnline import service
from columnline.models import ClientIn, RunStart, StageStart
from database.pool import Databases
from test_columnline_api import API_KEY, V2_TABLES, columnline_app
from webapp.columnline_routes import PREFIX

MAX_EXAMPLES = 30
AUTH = {"x-api-key": API_KEY}
Check = Callable[..., Any]


@dataclass(frozen=True)
class Known:
    """Rows that exist, so generated requests can hit them and not only 404."""

    slug: str
    run_ids: tuple[str, ...]


def seed(dbs: Databases) -> Known:
    with dbs.hq.connection() as conn:
        service.put_client(conn, "acme", ClientIn(name="Acme"))
        running = service.start_run(conn, RunStart(client_slug="acme", target_company="Globex"))
        service.start_stage(conn, StageStart(run_id=running.run_id, stage="research"))
        other = service.start_run(conn, RunStart(client_slug="acme", target_company="Initech"))
    return Known("acme", (str(running.run_id), str(other.run_id)))


def fingerprint(dbs: Databases) -> dict[str, str]:
    """A digest of every row of every table of the API."""
    digests = " UNION ALL ".join(
        f"SELECT '{t}' AS t, md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), ''))"
        f" AS digest FROM {t} x"
        for t in V2_TABLES
    )
    with dbs.hq.connection() as conn:
        return {r["t"]: r["digest"] for r in conn.execute(digests).fetchall()}


def operations(app: FastAPI) -> list[APIOperation]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    found = [result.ok() for result in schema.get_all_operations()]
    return [op for op in found if op.path.startswith(PREFIX)]


def has_input(operation: APIOperation) -> bool:
    """Whether there is anything but the API key (which the tests send) to make invalid."""
    names = {p.name.lower() for p in operation.iter_parameters()}
    return bool(names - set(AUTH)) or bool(operation.body)


def aimed_at(known: Known) -> Callable[[tuple[Case, bool]], Case]:
    """Point a generated case at existing rows (half the time), so its logic runs too."""

    def aim(drawn: tuple[Case, bool]) -> Case:
        case, use_known = drawn
        if not use_known:
            return case
        if isinstance(case.body, dict) and "run_id" in case.body:
            case.body = {**case.body, "run_id": known.run_ids[len(case.body) % 2]}
        if "run_id" in (case.path_parameters or {}):
            case.path_parameters = {**case.path_parameters, "run_id": known.run_ids[0]}
        if "slug" in (case.path_parameters or {}):
            case.path_parameters = {**case.path_parameters, "slug": known.slug}
        return case

    return aim


def fuzz(operation: APIOperation, strategy: st.SearchStrategy[Case], checks: list[Check]) -> None:
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Case) -> None:
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
    ops = operations(app)
    assert len(ops) == 14
    for operation in ops:
        generated = operation.as_strategy(GenerationMode.POSITIVE, headers=AUTH)
        fuzz(operation, st.tuples(generated, st.booleans()).map(aimed_at(known)), checks)


def test_invalid_input_is_refused_and_changes_nothing(app: FastAPI, dbs: Databases) -> None:
    seed(dbs)
    before = fingerprint(dbs)
    checks: list[Check] = [not_a_server_error, negative_data_rejection, status_code_conformance]
    for operation in filter(has_input, operations(app)):
        fuzz(operation, operation.as_strategy(GenerationMode.NEGATIVE, headers=AUTH), checks)
    assert fingerprint(dbs) == before
