"""The migrations produce the data model of the seed documents."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from orchestrator.db.pool import Databases

SEED_003_TABLES = {
    "company_workflow_states": {
        "id",
        "company_id",
        "workflow_slug",
        "status",
        "meta",
        "created_at",
        "updated_at",
    },
    "company_enrichment_results": {"id", "company_id", "workflow_slug", "data", "created_at"},
    "person_workflow_states": {
        "id",
        "person_id",
        "workflow_slug",
        "status",
        "meta",
        "created_at",
        "updated_at",
    },
    "person_enrichment_results": {"id", "person_id", "workflow_slug", "data", "created_at"},
}
SEED_003_FOREIGN_KEYS = {
    ("company_workflow_states", "company_id", "normalized_companies", "CASCADE"),
    ("company_enrichment_results", "company_id", "normalized_companies", "CASCADE"),
    ("person_workflow_states", "person_id", "normalized_people", "CASCADE"),
    ("person_enrichment_results", "person_id", "normalized_people", "CASCADE"),
}
SEED_003_INDEXES = {
    "idx_company_workflow_states_lookup",
    "idx_company_workflow_states_status",
    "idx_person_workflow_states_lookup",
    "idx_person_workflow_states_status",
}
HQ_TABLES = {
    "upload_batches",
    "raw_apollo_uploads",
    "batch_items",
    "workflow_states",
    "normalized_companies",
    "normalized_people",
    *SEED_003_TABLES,
    "enrichment_results",
    "final_leads",
    "person_work_history",
    "db_driven_enrichment_workflows",
    "play_steps",
    "enrichment_results_log",
    "company_play_step_completions",
    "entity_dispatches",
    "webhook_submission_counts",
    "receiver_dead_letters",
    "v2_clients",
    "v2_prompts",
    "v2_section_definitions",
    "v2_runs",
    "v2_pipeline_logs",
    "v2_contacts",
    "v2_idempotency_keys",
    "dossiers",
    "contacts",
    "dossier_batches",
    "runners",
    "provider_rate_limits",
    "provider_holds",
    "client_customers",
    "dashboard_sessions",
    "customer_alumni_jobs",  # a view: the alumni matching rule
    "client_credit_caps",
    "budget_holds",
    "credit_ledger",
    "company_results",  # views: an entity's own results and the one it reuses
    "person_results",
}
WORKSPACE_TABLES = {"company_homepage_scrapes", "company_case_studies_page"}
PIPELINE = [
    "normalize_all_core_values",
    "split",
    "enrich_company_via_waterfall_in_clay",
    "enrich_person_via_waterfall_in_clay",
    "consolidate",
]


def _tables(pool_conn: psycopg.Connection[dict[str, object]]) -> set[str]:
    rows = pool_conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    ).fetchall()
    return {str(r["table_name"]) for r in rows}


def test_every_table_lives_in_its_database(dbs: Databases) -> None:
    with dbs.hq.connection() as hq, dbs.workspace.connection() as ws:
        hq_tables, ws_tables = _tables(hq), _tables(ws)
    assert hq_tables == HQ_TABLES
    assert ws_tables == WORKSPACE_TABLES


def test_seed_003_tables_have_the_seed_columns(dbs: Databases) -> None:
    with dbs.hq.connection() as conn:
        for table, columns in SEED_003_TABLES.items():
            rows = conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s",
                (table,),
            ).fetchall()
            assert columns <= {r["column_name"] for r in rows}, table


def test_seed_003_foreign_keys_and_indexes(dbs: Databases) -> None:
    with dbs.hq.connection() as conn:
        rows = conn.execute(
            """
            SELECT c.conrelid::regclass::text AS tbl, a.attname AS col,
                   c.confrelid::regclass::text AS ref,
                   CASE c.confdeltype WHEN 'c' THEN 'CASCADE' ELSE c.confdeltype::text END AS del
            FROM pg_constraint c
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
            WHERE c.contype = 'f'
            """
        ).fetchall()
        fks = {(r["tbl"], r["col"], r["ref"], r["del"]) for r in rows}
        indexes = {
            r["indexname"]
            for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
        }
    assert fks >= SEED_003_FOREIGN_KEYS
    assert indexes >= SEED_003_INDEXES


def _company(conn: psycopg.Connection[dict[str, object]], domain: str = "acme.com") -> uuid.UUID:
    batch = conn.execute(
        "INSERT INTO upload_batches (source_headers) VALUES (ARRAY['Company']) RETURNING id"
    ).fetchone()
    assert batch is not None
    item = conn.execute(
        "INSERT INTO batch_items (batch_id, row_number) VALUES (%s, 1) RETURNING id",
        (batch["id"],),
    ).fetchone()
    company = conn.execute(
        "INSERT INTO normalized_companies (batch_id, domain) VALUES (%s, %s) RETURNING id",
        (batch["id"], domain),
    ).fetchone()
    assert item is not None and company is not None
    conn.execute(
        "INSERT INTO normalized_people (batch_id, batch_item_id, company_id, dedupe_key)"
        " VALUES (%s, %s, %s, 'email:a@acme.com')",
        (batch["id"], item["id"], company["id"]),
    )
    return uuid.UUID(str(company["id"]))


@pytest.mark.parametrize(
    ("table", "key"),
    [("company_workflow_states", "company_id"), ("person_workflow_states", "person_id")],
)
def test_entity_workflow_states_are_unique_per_workflow(
    dbs: Databases, table: str, key: str
) -> None:
    with dbs.hq.connection() as conn:
        company_id = _company(conn)
        entity = conn.execute(
            "SELECT id FROM normalized_people WHERE company_id = %s", (company_id,)
        ).fetchone()
        entity_id = company_id if key == "company_id" else entity["id"]  # type: ignore[index]
        insert = f"INSERT INTO {table} ({key}, workflow_slug) VALUES (%s, %s)"
        conn.execute(insert, (entity_id, "wf"))  # type: ignore[arg-type]
        conn.execute(insert, (entity_id, "other"))  # type: ignore[arg-type]
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(insert, (entity_id, "wf"))  # type: ignore[arg-type]


def test_deleting_a_company_cascades_to_its_states_results_and_people(dbs: Databases) -> None:
    with dbs.hq.connection() as conn:
        company_id = _company(conn)
        person = conn.execute(
            "SELECT id FROM normalized_people WHERE company_id = %s", (company_id,)
        ).fetchone()
        assert person is not None
        conn.execute(
            "INSERT INTO company_workflow_states (company_id, workflow_slug) VALUES (%s, 'wf')",
            (company_id,),
        )
        conn.execute(
            "INSERT INTO company_enrichment_results (company_id, workflow_slug, data)"
            " VALUES (%s, 'wf', '{}')",
            (company_id,),
        )
        conn.execute(
            "INSERT INTO person_workflow_states (person_id, workflow_slug) VALUES (%s, 'wf')",
            (person["id"],),
        )
        conn.execute(
            "INSERT INTO person_enrichment_results (person_id, workflow_slug, data)"
            " VALUES (%s, 'wf', '{}')",
            (person["id"],),
        )
        conn.execute("DELETE FROM normalized_companies WHERE id = %s", (company_id,))
        counts = conn.execute(
            """SELECT (SELECT count(*) FROM company_workflow_states) AS cws,
                      (SELECT count(*) FROM company_enrichment_results) AS cer,
                      (SELECT count(*) FROM person_workflow_states) AS pws,
                      (SELECT count(*) FROM person_enrichment_results) AS per,
                      (SELECT count(*) FROM normalized_people) AS people"""
        ).fetchone()
    assert counts == {"cws": 0, "cer": 0, "pws": 0, "per": 0, "people": 0}


def test_results_are_immutable(dbs: Databases) -> None:
    with dbs.hq.connection() as conn:
        company_id = _company(conn)
        conn.execute(
            "INSERT INTO company_enrichment_results (company_id, workflow_slug, data)"
            " VALUES (%s, 'wf', '{\"a\": 1}')",
            (company_id,),
        )
        with pytest.raises(psycopg.errors.RestrictViolation, match="immutable"):
            conn.execute("UPDATE company_enrichment_results SET data = '{}'")


def test_registry_holds_one_row_per_pipeline_step(dbs: Databases) -> None:
    with dbs.hq.connection() as conn:
        rows = conn.execute(
            """SELECT w.workflow_slug, w.overall_step_number, p.step_number
               FROM db_driven_enrichment_workflows w
               JOIN play_steps p ON p.workflow_slug = w.workflow_slug
               WHERE p.play_name = 'apollo-lead-enrichment' ORDER BY p.step_number"""
        ).fetchall()
        registered = conn.execute(
            "SELECT workflow_slug, count(*) AS n FROM db_driven_enrichment_workflows"
            " WHERE workflow_slug = ANY(%s) GROUP BY 1",
            (PIPELINE,),
        ).fetchall()
    assert [r["workflow_slug"] for r in rows] == PIPELINE
    assert [r["step_number"] for r in rows] == [1, 2, 3, 4, 5]
    assert sorted(r["workflow_slug"] for r in registered) == sorted(PIPELINE)
    assert {r["n"] for r in registered} == {1}


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("destination_table_name", "x; DROP TABLE batch_items"),
        ("destination_table_name", 'Robert"); --'),
        ("destination_field_mappings", '{"a": "b; drop table batch_items"}'),
        ("destination_field_mappings", '{"a": 1}'),
        ("workflow_slug", "bad slug"),
    ],
)
def test_registry_refuses_hostile_identifiers(dbs: Databases, column: str, value: str) -> None:
    row = {
        "workflow_slug": "ok_slug",
        "destination_table_name": "ok_table",
        "destination_field_mappings": "{}",
    }
    row[column] = value
    with dbs.hq.connection() as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            """INSERT INTO db_driven_enrichment_workflows
               (workflow_slug, title, overall_step_number, provider,
                destination_table_name, destination_field_mappings)
               VALUES (%(workflow_slug)s, 't', 9, 'n8n', %(destination_table_name)s,
                       %(destination_field_mappings)s)""",
            row,
        )
