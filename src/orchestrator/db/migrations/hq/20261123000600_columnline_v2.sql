-- HQ database. The V2 dossier pipeline driven by Make.com through /api/columnline/.
-- Its production `batches` table is named dossier_batches so it cannot be confused with the
-- upload_batches of the lead pipeline.

-- Config tables (persist across runs)
CREATE TABLE v2_clients (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    icp JSONB NOT NULL DEFAULT '{}'::jsonb,
    industry_research JSONB NOT NULL DEFAULT '{}'::jsonb,
    config JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE TABLE v2_prompts (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    prompt_key TEXT NOT NULL UNIQUE,
    stage TEXT NOT NULL,
    step_name TEXT NOT NULL,
    model TEXT,
    template TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE TABLE v2_section_definitions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    section_key TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    position INTEGER NOT NULL,
    config JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- Execution tables (created per run)
CREATE TABLE v2_runs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id UUID NOT NULL REFERENCES v2_clients(id),
    target_company TEXT NOT NULL,
    target_domain TEXT,
    status TEXT NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'completed', 'failed', 'published')),
    current_stage TEXT,
    input JSONB NOT NULL DEFAULT '{}'::jsonb,
    started_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    completed_at TIMESTAMPTZ,
    published_at TIMESTAMPTZ
);
CREATE INDEX idx_v2_runs_client ON v2_runs(client_id, started_at DESC);

CREATE TABLE v2_pipeline_logs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id UUID NOT NULL REFERENCES v2_runs(id) ON DELETE CASCADE,
    event_type TEXT NOT NULL CHECK (event_type IN ('step', 'stage_start', 'stage_complete')),
    stage TEXT NOT NULL,
    step_name TEXT,
    prompt_key TEXT,
    prompt TEXT,
    input JSONB,
    output JSONB,
    model TEXT,
    tokens_in INTEGER,
    tokens_out INTEGER,
    duration_ms INTEGER,
    status TEXT NOT NULL DEFAULT 'success' CHECK (status IN ('success', 'error')),
    error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_v2_pipeline_logs_run ON v2_pipeline_logs(run_id, id);
-- A stage starts once and completes once per run.
CREATE UNIQUE INDEX uq_v2_pipeline_logs_stage_event ON v2_pipeline_logs(run_id, stage, event_type)
    WHERE event_type IN ('stage_start', 'stage_complete');

CREATE TABLE v2_contacts (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id UUID NOT NULL REFERENCES v2_runs(id) ON DELETE CASCADE,
    full_name TEXT NOT NULL,
    title TEXT,
    email TEXT,
    linkedin_url TEXT,
    data JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_v2_contacts_run ON v2_contacts(run_id);

-- Production tables (published dossiers)
CREATE TABLE dossier_batches (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id UUID NOT NULL REFERENCES v2_clients(id),
    name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE TABLE dossiers (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    -- One dossier per run: publishing twice is a no-op.
    run_id UUID NOT NULL UNIQUE REFERENCES v2_runs(id),
    client_id UUID NOT NULL REFERENCES v2_clients(id),
    dossier_batch_id UUID REFERENCES dossier_batches(id),
    target_company TEXT NOT NULL,
    target_domain TEXT,
    sections JSONB NOT NULL DEFAULT '{}'::jsonb,
    published_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE TABLE contacts (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    dossier_id UUID NOT NULL REFERENCES dossiers(id) ON DELETE CASCADE,
    source_contact_id UUID UNIQUE REFERENCES v2_contacts(id) ON DELETE SET NULL,
    full_name TEXT NOT NULL,
    title TEXT,
    email TEXT,
    linkedin_url TEXT,
    data JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_contacts_dossier ON contacts(dossier_id);
