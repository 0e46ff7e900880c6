-- HQ database. Every step is a row of the registry; a play is an ordered list of steps.

CREATE TABLE db_driven_enrichment_workflows (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workflow_slug TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    overall_step_number INTEGER NOT NULL,
    provider TEXT NOT NULL CHECK (provider IN ('internal', 'clay', 'zenrows', 'n8n')),
    -- What one dispatch of this workflow is about.
    entity_type TEXT NOT NULL DEFAULT 'item' CHECK (entity_type IN ('item', 'company', 'person')),
    destination_db TEXT NOT NULL DEFAULT 'hq' CHECK (destination_db IN ('hq', 'workspace')),
    destination_table_name TEXT,
    destination_field_mappings JSONB NOT NULL DEFAULT '{}'::jsonb,
    -- Name of the environment variable / secret key holding the provider endpoint, never the URL.
    webhook_url_secret_name TEXT,
    credits_per_call NUMERIC(12, 4) NOT NULL DEFAULT 0,
    timeout_seconds INTEGER NOT NULL DEFAULT 900 CHECK (timeout_seconds > 0),
    max_attempts INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts > 0),
    provider_params JSONB NOT NULL DEFAULT '{}'::jsonb,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    -- Identifiers from configuration end up in SQL: only plain lower-case names are allowed.
    CONSTRAINT workflow_slug_shape CHECK (workflow_slug ~ '^[a-z0-9][a-z0-9_-]{0,99}$'),
    CONSTRAINT destination_table_name_shape
        CHECK (destination_table_name IS NULL OR destination_table_name ~ '^[a-z_][a-z0-9_]{0,62}$'),
    CONSTRAINT destination_field_mappings_shape CHECK (
        jsonb_typeof(destination_field_mappings) = 'object'
        AND NOT jsonb_path_exists(
            destination_field_mappings, '$.* ? (!(@.type() == "string" && @ like_regex "^[a-z_][a-z0-9_]{0,62}$"))'
        )
    )
);

CREATE TABLE play_steps (
    play_name TEXT NOT NULL,
    step_number INTEGER NOT NULL CHECK (step_number > 0),
    workflow_slug TEXT NOT NULL
        REFERENCES db_driven_enrichment_workflows(workflow_slug) ON UPDATE CASCADE,
    PRIMARY KEY (play_name, step_number),
    UNIQUE (play_name, workflow_slug)
);

-- Audit trail of every enrichment attempt (written by the logger, always).
CREATE TABLE enrichment_results_log (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workflow_id UUID,
    workflow_slug TEXT NOT NULL,
    company_id UUID,
    company_domain TEXT,
    person_id UUID,
    batch_id UUID,
    play_name TEXT,
    step_number INTEGER,
    status TEXT NOT NULL CHECK (status IN ('success', 'error')),
    error_message TEXT,
    result_table TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_enrichment_results_log_company ON enrichment_results_log(company_id, workflow_slug);
CREATE INDEX idx_enrichment_results_log_batch ON enrichment_results_log(batch_id);

-- THE source of truth for pipeline progression; only written after verified storage.
CREATE TABLE company_play_step_completions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id UUID NOT NULL REFERENCES normalized_companies(id) ON DELETE CASCADE,
    play_name TEXT NOT NULL,
    step_number INTEGER NOT NULL,
    workflow_slug TEXT NOT NULL,
    completed_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    UNIQUE (company_id, play_name, step_number)
);
CREATE INDEX idx_company_play_step_completions_play ON company_play_step_completions(play_name, step_number);

INSERT INTO db_driven_enrichment_workflows (
    workflow_slug, title, overall_step_number, provider, entity_type,
    destination_db, destination_table_name, destination_field_mappings,
    webhook_url_secret_name, credits_per_call, timeout_seconds, max_attempts
) VALUES
    ('normalize_all_core_values', 'Normalize core values', 1, 'internal', 'item',
     'hq', 'batch_items', '{}', NULL, 0, 600, 3),
    ('split', 'Split into companies and people', 2, 'internal', 'item',
     'hq', 'normalized_people', '{}', NULL, 0, 600, 3),
    ('enrich_company_via_waterfall_in_clay', 'Enrich company via Clay waterfall', 3, 'clay', 'company',
     'hq', 'company_enrichment_results', '{}', 'CLAY_COMPANY_WEBHOOK_URL', 1, 1800, 3),
    ('enrich_person_via_waterfall_in_clay', 'Enrich person via Clay waterfall', 4, 'clay', 'person',
     'hq', 'person_enrichment_results', '{}', 'CLAY_PERSON_WEBHOOK_URL', 2, 1800, 3),
    ('consolidate', 'Consolidate into final leads', 5, 'internal', 'item',
     'hq', 'final_leads', '{}', NULL, 0, 600, 3);

INSERT INTO play_steps (play_name, step_number, workflow_slug) VALUES
    ('apollo-lead-enrichment', 1, 'normalize_all_core_values'),
    ('apollo-lead-enrichment', 2, 'split'),
    ('apollo-lead-enrichment', 3, 'enrich_company_via_waterfall_in_clay'),
    ('apollo-lead-enrichment', 4, 'enrich_person_via_waterfall_in_clay'),
    ('apollo-lead-enrichment', 5, 'consolidate');
