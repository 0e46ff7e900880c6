-- HQ database. Upload side of the pipeline: an upload batch, its raw rows at full fidelity,
-- one batch item per row, and per-item progress through the pipeline's steps.

-- Named upload_batches so it cannot be confused with the production `dossier_batches` of the
-- V2 dossier pipeline.
CREATE TABLE upload_batches (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    client_name TEXT NOT NULL DEFAULT 'default',
    play_name TEXT NOT NULL DEFAULT 'apollo-lead-enrichment',
    file_name TEXT,
    file_sha256 TEXT,
    -- Header order of the source file; raw rows store their values in this order.
    source_headers TEXT[] NOT NULL,
    row_count INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'RUNNING'
        CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    finished_at TIMESTAMPTZ
);
CREATE INDEX idx_upload_batches_file ON upload_batches(client_name, file_sha256);

-- Every CSV row exactly as it was read, values in source_headers order.
CREATE TABLE raw_apollo_uploads (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id UUID NOT NULL REFERENCES upload_batches(id) ON DELETE CASCADE,
    row_number INTEGER NOT NULL,
    raw_values TEXT[] NOT NULL,
    UNIQUE (batch_id, row_number)
);

CREATE TABLE batch_items (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    batch_id UUID NOT NULL REFERENCES upload_batches(id) ON DELETE CASCADE,
    row_number INTEGER NOT NULL,
    -- Apollo fields as uploaded (mapped by header alias, not yet normalized).
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    company_name TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT '',
    person_linkedin_url TEXT NOT NULL DEFAULT '',
    website TEXT NOT NULL DEFAULT '',
    company_linkedin_url TEXT NOT NULL DEFAULT '',
    employees TEXT NOT NULL DEFAULT '',
    industry TEXT NOT NULL DEFAULT '',
    city TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT '',
    country TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    -- Output of normalize_all_core_values; NULL until that step ran.
    normalized JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    UNIQUE (batch_id, row_number)
);

CREATE TABLE workflow_states (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Denormalized from batch_items so an orchestrator pass reads one table per batch.
    batch_id UUID NOT NULL REFERENCES upload_batches(id) ON DELETE CASCADE,
    item_id UUID NOT NULL REFERENCES batch_items(id) ON DELETE CASCADE,
    step_name TEXT NOT NULL,
    step_number INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'PENDING'
        CHECK (status IN ('PENDING', 'IN_PROGRESS', 'COMPLETED', 'FAILED')),
    meta JSONB NOT NULL DEFAULT '{}'::jsonb,
    attempts INTEGER NOT NULL DEFAULT 0,
    -- An IN_PROGRESS row past this moment is stale; the sweeper retries or fails it.
    lease_expires_at TIMESTAMPTZ,
    -- Set once the orchestrator has created this item's next step (or found there is none), so
    -- each pass looks only at newly completed rows.
    advanced BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    UNIQUE (item_id, step_name)
);
CREATE INDEX idx_workflow_states_progress ON workflow_states(batch_id, step_number, status);
CREATE INDEX idx_workflow_states_pending ON workflow_states(batch_id, status)
    WHERE status IN ('PENDING', 'IN_PROGRESS');
CREATE INDEX idx_workflow_states_lease ON workflow_states(lease_expires_at)
    WHERE status = 'IN_PROGRESS';
CREATE INDEX idx_workflow_states_to_advance ON workflow_states(batch_id)
    WHERE status = 'COMPLETED' AND NOT advanced;
