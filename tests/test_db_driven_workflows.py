"""DB-driven workflows: a step is a registry row plus a destination table, no code."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
import requests
from typer.testing import CliRunner

from conftest import DatabasePair
from orchestrator.cli.main import app
from orchestrator.db.pool import Databases
from orchestrator.engine.plays import run_play_step
from orchestrator.runtimes.service import LocalService
from orchestrator.settings import Settings, get_settings
from orchestrator.state.registry import RegistryError
from support.faults import rows, scalar, wait_until
from support.pipeline import add_normalize_split_play, apollo_csv, upload

CASE_STUDIES_ROW = """
INSERT INTO db_driven_enrichment_workflows (
  workflow_slug, title, overall_step_number, provider,
  destination_db, destination_table_name, destination_field_mappings,
  entity_type, webhook_url_secret_name
) VALUES (
  'extract-case-studies-via-n8n', 'Extract Case Studies', 3, 'n8n',
  'workspace', 'company_case_studies',
  '{"case_study_urls": "urls", "extracted_at": "extracted_at"}',
  'company', 'N8N_CASE_STUDIES_WEBHOOK_URL'
)"""
CASE_STUDIES_TABLE = """
CREATE TABLE company_case_studies (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  company_id UUID,
  company_domain TEXT,
  urls JSONB,
  extracted_at TIMESTAMPTZ,
  created_at TIMESTAMPTZ DEFAULT now()
)"""


def _workspace(dbs: Databases, statement: str) -> None:
    with dbs.workspace.connection() as conn:
        conn.execute(statement)  # type: ignore[arg-type]


def _companies_batch(dbs: Databases, local_settings: Settings) -> uuid.UUID:
    play = add_normalize_split_play(dbs)
    batch = upload(dbs, apollo_csv(60, 12, seed=8), play).batch_id
    with LocalService(local_settings, dbs) as service:
        service.runtime.run_batch(batch, timeout=60)
    return batch


def _run_and_wait(service: LocalService, step: int, batch: uuid.UUID, slug: str) -> None:
    run_play_step(service.dbs, service.runtime.dispatcher, "company-research", step, batch_id=batch)
    wait_until(
        lambda: (
            scalar(
                service.dbs,
                "SELECT count(*) FROM normalized_companies c LEFT JOIN company_workflow_states s"
                " ON s.company_id = c.id AND s.workflow_slug = %s"
                " WHERE c.batch_id = %s"
                " AND (s.status IS NULL OR s.status IN ('PENDING', 'IN_PROGRESS'))",
                slug,
                batch,
            )
            == 0
        ),
        timeout=60,
    )


def test_a_new_workflow_is_a_registry_row_and_a_workspace_table(
    dbs: Databases, local_settings: Settings
) -> None:
    batch = _companies_batch(dbs, local_settings)
    with dbs.hq.connection() as conn:
        conn.execute(CASE_STUDIES_ROW)
        conn.execute(
            "INSERT INTO play_steps VALUES ('company-research', 2, 'extract-case-studies-via-n8n')"
        )
    _workspace(dbs, CASE_STUDIES_TABLE)
    companies = scalar(dbs, "SELECT count(*) FROM normalized_companies WHERE batch_id = %s", batch)

    with LocalService(local_settings, dbs) as service:
        answer = requests.post(
            f"{service.server.url}/plays/company-research/steps/2/run",
            json={"batch_id": str(batch)},
            headers={"x-api-key": service.runtime.api_key},
            timeout=30,
        )
        assert answer.status_code == 202, answer.text
        assert answer.json()["companies"] == companies
        wait_until(
            lambda: (
                scalar(
                    dbs,
                    "SELECT count(*) FROM company_play_step_completions"
                    " WHERE play_name = 'company-research'",
                )
                == companies
            )
        )
        n8n = service.providers.simulators["n8n"]
        assert n8n.submission_count() == companies

    with dbs.workspace.connection() as conn:
        stored = [
            dict(r)
            for r in conn.execute(
                "SELECT company_id, company_domain, urls, extracted_at FROM company_case_studies"
            )
        ]
    assert len(stored) == companies
    assert all(
        r["urls"] and r["urls"][0].startswith(f"https://{r['company_domain']}/") for r in stored
    )
    assert all(r["extracted_at"] is not None for r in stored)
    logs = rows(
        dbs,
        "SELECT status, result_table, play_name, step_number, count(*) AS n"
        " FROM enrichment_results_log WHERE workflow_slug = %s GROUP BY 1, 2, 3, 4",
        "extract-case-studies-via-n8n",
    )
    assert logs == [
        {
            "status": "success",
            "result_table": "company_case_studies",
            "play_name": "company-research",
            "step_number": 2,
            "n": companies,
        }
    ]


@pytest.mark.parametrize("breakage", ["storage_fails", "row_not_verified"])
def test_no_completion_without_verified_storage(
    dbs: Databases, local_settings: Settings, breakage: str
) -> None:
    batch = _companies_batch(dbs, local_settings)
    if breakage == "storage_fails":
        _workspace(
            dbs,
            "ALTER TABLE company_homepage_scrapes ALTER COLUMN scraped_at TYPE integer USING NULL",
        )
    else:
        _workspace(
            dbs,
            """
            CREATE FUNCTION vanish() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN DELETE FROM company_homepage_scrapes WHERE id = NEW.id; RETURN NULL; END; $$;
            CREATE TRIGGER vanish AFTER INSERT ON company_homepage_scrapes
                FOR EACH ROW EXECUTE FUNCTION vanish();""",
        )
    with LocalService(local_settings, dbs) as service:
        _run_and_wait(service, 1, batch, "scrape-homepage-via-zenrows")

    assert scalar(dbs, "SELECT count(*) FROM company_play_step_completions") == 0
    failed = rows(
        dbs,
        "SELECT status, meta->>'error' AS error FROM company_workflow_states"
        " WHERE workflow_slug = 'scrape-homepage-via-zenrows'",
    )
    assert failed and {f["status"] for f in failed} == {"FAILED"}
    assert all(f["error"].startswith("storage failed") for f in failed)
    assert scalar(
        dbs,
        "SELECT count(*) FROM enrichment_results_log WHERE status = 'error'"
        " AND error_message LIKE 'storage failed%%'",
    ) == len(failed)


def test_homepage_scrape_goes_through_zenrows_into_the_workspace(
    dbs: Databases, local_settings: Settings
) -> None:
    batch = _companies_batch(dbs, local_settings)
    with LocalService(local_settings, dbs) as service:
        _run_and_wait(service, 1, batch, "scrape-homepage-via-zenrows")
        zenrows = service.providers.simulators["zenrows"]
        seen = list(zenrows.requests)
    companies = scalar(dbs, "SELECT count(*) FROM normalized_companies")
    assert len(seen) == companies
    assert all(r["js_render"] == "true" and r["premium_proxy"] == "true" for r in seen)
    with dbs.workspace.connection() as conn:
        pages = [
            dict(r)
            for r in conn.execute(
                "SELECT company_domain, homepage_html, scraped_at FROM company_homepage_scrapes"
            )
        ]
    assert len(pages) == companies
    assert all(f"Welcome to {p['company_domain']}" in p["homepage_html"] for p in pages)
    assert (
        scalar(
            dbs,
            "SELECT count(*) FROM company_play_step_completions"
            " WHERE play_name = 'company-research' AND step_number = 1",
        )
        == companies
    )


@pytest.fixture
def enrich_env(db_urls: DatabasePair, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", db_urls.urls.hq)
    monkeypatch.setenv("WORKSPACE_DATABASE_URL", db_urls.urls.workspace)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_integrity_finds_orphans_in_both_databases_and_fix_removes_exactly_those(
    dbs: Databases, local_settings: Settings, enrich_env: None
) -> None:
    with LocalService(local_settings, dbs) as service:
        batch = upload(dbs, apollo_csv(40, 8, seed=12), "apollo-lead-enrichment").batch_id
        service.runtime.run_batch(batch, timeout=120)
        _run_and_wait(service, 1, batch, "scrape-homepage-via-zenrows")
    all_completions = rows(
        dbs, "SELECT id, company_id, workflow_slug FROM company_play_step_completions ORDER BY id"
    )
    assert {c["workflow_slug"] for c in all_completions} == {
        "enrich_company_via_waterfall_in_clay",
        "scrape-homepage-via-zenrows",
    }
    hq_victim = next(
        c for c in all_completions if c["workflow_slug"] == "enrich_company_via_waterfall_in_clay"
    )
    ws_victim = next(
        c
        for c in all_completions
        if c["workflow_slug"] == "scrape-homepage-via-zenrows"
        and c["company_id"] != hq_victim["company_id"]
    )
    with dbs.hq.connection() as conn:
        conn.execute(
            "DELETE FROM company_enrichment_results WHERE company_id = %s",
            (hq_victim["company_id"],),
        )
    with dbs.workspace.connection() as conn:
        conn.execute(
            "DELETE FROM company_homepage_scrapes WHERE company_id = %s", (ws_victim["company_id"],)
        )

    found = CliRunner().invoke(app, ["integrity"])
    assert found.exit_code == 1
    assert "2 orphaned" in found.output
    assert str(hq_victim["company_id"]) in found.output
    assert str(ws_victim["company_id"]) in found.output
    fixed = CliRunner().invoke(app, ["integrity", "--fix"])
    assert fixed.exit_code == 0 and "deleted 2 orphaned completions" in fixed.output
    remaining = rows(dbs, "SELECT id FROM company_play_step_completions ORDER BY id")
    assert [r["id"] for r in remaining] == [
        c["id"] for c in all_completions if c["id"] not in (hq_victim["id"], ws_victim["id"])
    ]
    assert CliRunner().invoke(app, ["integrity"]).exit_code == 0


def test_a_malicious_registry_row_is_refused_and_nothing_runs(
    dbs: Databases, local_settings: Settings, enrich_env: None
) -> None:
    batch = _companies_batch(dbs, local_settings)
    with dbs.hq.connection() as conn:
        # As if someone edited the table without its constraints.
        conn.execute(
            "ALTER TABLE db_driven_enrichment_workflows"
            " DROP CONSTRAINT destination_table_name_shape"
        )
        conn.execute("""
            INSERT INTO db_driven_enrichment_workflows (workflow_slug, title, overall_step_number,
                provider, entity_type, destination_db, destination_table_name)
            VALUES ('evil', 'Evil', 9, 'zenrows', 'company', 'workspace',
                    'x; DROP TABLE batch_items')""")
        conn.execute("INSERT INTO play_steps VALUES ('company-research', 3, 'evil')")
    with (
        LocalService(local_settings, dbs) as service,
        pytest.raises(RegistryError, match="invalid configuration: destination_table_name"),
    ):
        run_play_step(dbs, service.runtime.dispatcher, "company-research", 3, batch_id=batch)
    listing = CliRunner().invoke(app, ["workflows"])
    assert listing.exit_code == 1 and "evil: " in listing.output
    assert scalar(dbs, "SELECT to_regclass('batch_items') IS NOT NULL")
    assert scalar(dbs, "SELECT count(*) FROM company_workflow_states") == 0
    with pytest.raises(psycopg.errors.UndefinedTable), dbs.workspace.connection() as conn:
        conn.execute('SELECT 1 FROM "x; DROP TABLE batch_items"')
