"""Configuration as a user writes it: a `.env` file reaches every provider, and each run says
where its calls and rows go."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest

from conftest import DatabasePair
from orchestrator.db.pool import Databases
from orchestrator.db.urls import (
    ConfigurationError,
    DatabaseUrls,
    pooler_of,
    require_session,
    resolve_database_urls,
)
from orchestrator.providers.simulators.clay import ClaySimulator, SimulatorConfig
from orchestrator.runtimes.cloud import cloud_gateways
from orchestrator.runtimes.providers import SIMULATOR, clay_gateway
from orchestrator.runtimes.simulated import setup_providers
from orchestrator.settings import Settings
from orchestrator.state.registry import load_workflow
from orchestrator.steps.clay_gateway import ClayGateway
from support.cli import cli_env, enrich_argv
from support.pipeline import apollo_csv

N8N_ROW = """
INSERT INTO db_driven_enrichment_workflows (workflow_slug, title, overall_step_number, provider,
    destination_db, destination_table_name, entity_type, webhook_url_secret_name)
VALUES ('case-studies-via-n8n', 'Case studies', 9, 'n8n', 'workspace', 'company_case_studies',
    'company', 'N8N_CASE_STUDIES_WEBHOOK_URL')
"""

DOTENV = """
# as a user writes it: comments, quotes, a list over two webhooks
CLAY_COMPANY_WEBHOOK_URL="https://api.clay.com/v3/sources/webhook/company-a, https://api.clay.com/v3/sources/webhook/company-b"
CLAY_COMPANY_WEBHOOK_AUTH_TOKEN="token-a,token-b"
CLAY_PERSON_WEBHOOK_URL=https://api.clay.com/v3/sources/webhook/person-a
CLAY_PERSON_WEBHOOK_AUTH_TOKEN=token-p
N8N_CASE_STUDIES_WEBHOOK_URL=https://n8n.example.com/webhook/case-studies
ZENROWS_API_KEY=zr-key
ZENROWS_API_URL=https://zenrows.example.com/v1/
PUBLIC_BASE_URL=https://me--enrichment-orchestrator-api.modal.run
CALLBACK_SECRET=cb-secret
CALLBACK_SIGNING_KEY=00112233445566778899aabbccddeeff
API_KEY=api-key
"""


@pytest.fixture
def dotenv_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings read in a folder whose `.env` configures every provider, with none of it in the
    environment."""
    for name in (*_names(DOTENV), "CLAY_WEBHOOK_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text(DOTENV)
    monkeypatch.chdir(tmp_path)
    return Settings(enrich_home=tmp_path / "home")


def _names(dotenv: str) -> list[str]:
    return [line.split("=")[0] for line in dotenv.splitlines() if "=" in line and line[0] != "#"]


def _webhooks(dbs: Databases, gateway: ClayGateway, slug: str) -> list[tuple[str, str | None]]:
    with dbs.hq.connection() as conn:
        workflow = load_workflow(conn, slug)
    return [(e.url.rsplit("/", 1)[-1], e.auth_token) for e in gateway.endpoints(workflow)]


def _check_every_provider(dbs: Databases, gateways: dict[str, object]) -> None:
    clay, n8n = gateways["clay"], gateways["n8n"]
    assert isinstance(clay, ClayGateway) and isinstance(n8n, ClayGateway)
    assert not clay.simulated and not n8n.simulated
    assert _webhooks(dbs, clay, "enrich_company_via_waterfall_in_clay") == [
        ("company-a", "token-a"),
        ("company-b", "token-b"),
    ]
    assert _webhooks(dbs, clay, "enrich_person_via_waterfall_in_clay") == [("person-a", "token-p")]
    assert _webhooks(dbs, n8n, "case-studies-via-n8n") == [("case-studies", None)]
    zenrows = gateways["zenrows"]
    assert zenrows._client._base_url == "https://zenrows.example.com/v1/"  # type: ignore[attr-defined]
    assert zenrows._client._api_key == "zr-key"  # type: ignore[attr-defined]


def test_dotenv_values_reach_every_provider_of_a_local_run(
    dbs: Databases, dotenv_settings: Settings
) -> None:
    with dbs.hq.connection() as conn:
        conn.execute(N8N_ROW)
    providers = setup_providers(dbs, dotenv_settings, "http://127.0.0.1:1", ("h", "s"))
    try:
        assert providers.simulators == {}
        _check_every_provider(dbs, providers.gateways)
        assert providers.targets == {
            "clay": "api.clay.com (company 2, person 1)",
            "n8n": "n8n.example.com (case-studies-via-n8n 1)",
            "zenrows": "zenrows.example.com",
        }
        assert providers.gateways["clay"].callback_base_url == dotenv_settings.public_base_url
    finally:
        providers.close()


def test_dotenv_values_reach_every_provider_of_a_deployment(
    dbs: Databases, dotenv_settings: Settings
) -> None:
    with dbs.hq.connection() as conn:
        conn.execute(N8N_ROW)
    providers = cloud_gateways(dotenv_settings, dbs)
    try:
        _check_every_provider(dbs, providers.gateways)
    finally:
        providers.close()


def test_a_webhook_list_that_does_not_fit_its_tokens_stops_a_container_at_its_start(
    dbs: Databases, dotenv_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAY_PERSON_WEBHOOK_AUTH_TOKEN", "one,two")
    with pytest.raises(Exception, match="CLAY_PERSON_WEBHOOK_URL lists 1 webhook URL"):
        cloud_gateways(Settings(), dbs)


def test_the_pooler_is_told_by_the_port_or_said_outright() -> None:
    pooled = "postgresql://postgres.ref:pw@aws-0-eu-west-1.pooler.supabase.com:6543/postgres"
    session = "postgresql://postgres.ref:pw@aws-0-eu-west-1.pooler.supabase.com:5432/postgres"
    assert pooler_of(pooled) == "transaction"
    assert pooler_of(session) == "none"
    assert pooler_of(session, "transaction") == "transaction"
    assert pooler_of("host=db port=6543 dbname=x", "session") == "session"
    shown = DatabaseUrls(pooled, pooled, pooler="transaction").describe()
    assert shown == "aws-0-eu-west-1.pooler.supabase.com:6543/postgres (transaction pooler)"
    assert "pw" not in shown
    two = Settings(database_url=session, workspace_database_url=pooled.replace("ref", "ws"))
    urls = resolve_database_urls(two)
    assert (urls.pooler, urls.workspace_pooler) == ("none", "transaction")
    with pytest.raises(ConfigurationError, match="WORKSPACE_DATABASE_URL points at a transaction"):
        require_session(urls)


def test_migrations_refuse_a_transaction_pooler_with_what_to_use(tmp_path: Path) -> None:
    env = cli_env(tmp_path, DATABASE_URL="postgresql://postgres:pw@127.0.0.1:6543/postgres")
    done = subprocess.run(
        enrich_argv("db", "migrate"), env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "transaction pooler (127.0.0.1:6543/postgres: port 6543" in done.stdout
    assert "port 5432" in done.stdout and "Traceback" not in done.stdout + done.stderr


def test_enrich_run_names_where_calls_and_rows_go(db_urls: DatabasePair, tmp_path: Path) -> None:
    sample = tmp_path / "leads.csv"
    sample.write_bytes(apollo_csv(6, 3, seed=11))
    simulated = subprocess.run(
        enrich_argv("run", str(sample)),
        env=cli_env(tmp_path / "a", db_urls),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert simulated.returncode == 0, simulated.stderr
    lines = [x for x in simulated.stderr.splitlines() if x.startswith("targets:")]
    assert lines == [
        "targets: clay=simulator, n8n=simulator, zenrows=simulator;"
        f" database={db_urls.urls.describe()}"
    ]
    # Clay configured in a `.env` file only: the run says so, and Clay gets the rows.
    work = tmp_path / "b"
    work.mkdir()
    secret = "env-file-secret"
    with ClaySimulator(SimulatorConfig(callback_secret=secret)) as clay:
        (work / ".env").write_text(
            f"CLAY_COMPANY_WEBHOOK_URL={clay.webhook_url('company')}\n"
            f"CLAY_PERSON_WEBHOOK_URL={clay.webhook_url('person')}\n"
            f"CALLBACK_SECRET={secret}\n"
        )
        sample.write_bytes(apollo_csv(6, 3, seed=12))
        real = subprocess.run(
            enrich_argv("run", str(sample)),
            env=cli_env(tmp_path / "b-home", db_urls),
            cwd=work,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert real.returncode == 0, real.stderr
        host = clay.url.split("//")[1]
        assert f"targets: clay={host} (company 1, person 1), n8n={SIMULATOR}" in real.stderr
        assert clay.submission_count("company") == 3


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {"CLAY_COMPANY_WEBHOOK_URL": "https://hooks.example/s1"},
            "CALLBACK_SECRET must be set when Clay webhooks are",
        ),
        (
            {"CLAY_RATE_PER_SECOND": "ten", "DATABASE_POOLER": "txn"},
            "CLAY_RATE_PER_SECOND: Input should be a valid number",
        ),
        ({"POOL_MIN_SIZE": "5", "POOL_MAX_SIZE": "2"}, "POOL_MIN_SIZE (5) is above POOL_MAX_SIZE"),
        ({"CALLBACK_SIGNING_KEY": "zz"}, "CALLBACK_SIGNING_KEY: must be hexadecimal"),
        ({"CLAY_MAX_ATTEMPTS": "0"}, "CLAY_MAX_ATTEMPTS: Input should be greater than or equal"),
        ({"PUBLIC_BASE_URL": "not-a-url"}, "PUBLIC_BASE_URL: must be an http(s) URL"),
        (
            {"DATABASE_URL": "mysql://postgres:Sup3rs1cret@127.0.0.1:5432/x"},
            "expected postgresql://user:password@host:port/database",
        ),
        (
            {
                "CLAY_COMPANY_WEBHOOK_URL": "https://hooks.example/s1;https://hooks.example/s2",
                "CALLBACK_SECRET": "cb",
            },
            "CLAY_COMPANY_WEBHOOK_URL: the entry 'https://hooks.example/...' is not one",
        ),
        (
            {
                "CLAY_COMPANY_WEBHOOK_URL": "https://hooks.example/s1,https://hooks.example/s2",
                "CLAY_COMPANY_WEBHOOK_AUTH_TOKEN": "secret-token-1",
                "CALLBACK_SECRET": "cb",
            },
            "lists 2 webhook URL(s) but CLAY_COMPANY_WEBHOOK_AUTH_TOKEN lists 1 token(s)",
        ),
    ],
)
def test_bad_configuration_is_one_line_before_anything_is_uploaded(
    db_urls: DatabasePair, tmp_path: Path, extra: dict[str, str], expected: str
) -> None:
    sample = tmp_path / "leads.csv"
    sample.write_bytes(apollo_csv(6, 3, seed=13))
    done = subprocess.run(
        enrich_argv("run", str(sample)),
        env=cli_env(tmp_path, db_urls, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr + done.stdout
    assert len(done.stderr.strip().splitlines()) == 1
    # Neither the URLs' secret parts nor a token are echoed.
    assert "s1" not in done.stderr and "secret-token" not in done.stderr
    with psycopg.connect(db_urls.urls.hq) as conn:
        assert conn.execute("SELECT count(*) FROM upload_batches").fetchone() == (0,)


def test_an_infinite_clay_rate_paces_nothing(dbs: Databases) -> None:
    paced = clay_gateway(Settings(), dbs, "http://127.0.0.1:1")
    unpaced = clay_gateway(Settings(clay_rate_per_second=float("inf")), dbs, "http://127.0.0.1:1")
    try:
        assert paced.shared_rate is not None and paced.shared_rate.rate_per_second == 10.0
        assert unpaced.shared_rate is None
    finally:
        paced.close()
        unpaced.close()
