from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from orchestrator.db.pool import Databases, open_databases
from orchestrator.db.urls import DatabaseUrls
from orchestrator.settings import Settings
from support.postgres import (
    PostgresServer,
    Templates,
    create_database,
    drop_database,
    find_postgres,
    migrated_templates,
    unique_name,
)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    with find_postgres() as server:
        yield server


def pytest_report_header(config: pytest.Config) -> str:
    import os

    if os.environ.get("TEST_DATABASE_URL"):
        return "postgres: TEST_DATABASE_URL"
    return "postgres: testcontainers if a Docker engine answers, else embedded"


@pytest.fixture(scope="session")
def templates(pg_server: PostgresServer) -> Iterator[Templates]:
    with migrated_templates(pg_server) as tpl:
        yield tpl


@dataclass(frozen=True)
class DatabasePair:
    urls: DatabaseUrls
    hq_name: str
    workspace_name: str


@pytest.fixture
def db_urls(pg_server: PostgresServer, templates: Templates) -> Iterator[DatabasePair]:
    """A fresh, migrated HQ and Workspace database pair for one test."""
    hq_name, ws_name = unique_name("t_hq"), unique_name("t_ws")
    hq = create_database(pg_server, hq_name, template=templates.hq)
    workspace = create_database(pg_server, ws_name, template=templates.workspace)
    try:
        yield DatabasePair(DatabaseUrls(hq=hq, workspace=workspace), hq_name, ws_name)
    finally:
        drop_database(pg_server, hq_name)
        drop_database(pg_server, ws_name)


@pytest.fixture
def dbs(db_urls: DatabasePair) -> Iterator[Databases]:
    settings = Settings(pool_min_size=1, pool_max_size=12)
    databases = open_databases(db_urls.urls, settings=settings, migrate=False)
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture
def local_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for an in-process service: keys kept in a temporary home."""
    return Settings(enrich_home=tmp_path_factory.mktemp("enrich-home"), pool_max_size=12)


@pytest.fixture
def empty_database(pg_server: PostgresServer) -> Iterator[str]:
    """A database with nothing in it, not even migrations."""
    name = unique_name("t_empty")
    url = create_database(pg_server, name)
    try:
        yield url
    finally:
        drop_database(pg_server, name)
