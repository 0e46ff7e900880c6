-- HQ database. Entities deduplicated within a batch, and entity-level workflow tracking:
-- a company shared by four rows is enriched once and all four items progress.

CREATE TABLE normalized_companies (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    batch_id UUID NOT NULL REFERENCES upload_batches(id) ON DELETE CASCADE,
    domain TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    linkedin_url TEXT,
    employees INTEGER,
    industry TEXT NOT NULL DEFAULT '',
    city TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT '',
    country TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    -- Dedupe is within a batch: batches of different clients never share a company row.
    UNIQUE (batch_id, domain)
);

CREATE TABLE normalized_people (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    batch_id UUID NOT NULL REFERENCES upload_batches(id) ON DELETE CASCADE,
    -- The first item this person appeared on; later duplicates link through batch_items.person_id.
    batch_item_id UUID NOT NULL REFERENCES batch_items(id) ON DELETE CASCADE,
    company_id UUID NOT NULL REFERENCES normalized_companies(id) ON DELETE CASCADE,
    dedupe_key TEXT NOT NULL,
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    full_name TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    email TEXT,
    linkedin_url TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    UNIQUE (batch_id, dedupe_key)
);
CREATE INDEX idx_normalized_people_item ON normalized_people(batch_item_id);
CREATE INDEX idx_normalized_people_company ON normalized_people(company_id);

-- split links every item to its entities, duplicates included.
ALTER TABLE batch_items
    ADD COLUMN company_id UUID REFERENCES normalized_companies(id) ON DELETE SET NULL,
    ADD COLUMN person_id UUID REFERENCES normalized_people(id) ON DELETE SET NULL;
CREATE INDEX idx_batch_items_company ON batch_items(company_id);
CREATE INDEX idx_batch_items_person ON batch_items(person_id);

-- Track company enrichment workflows (mirrors workflow_states pattern)
CREATE TABLE company_workflow_states (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id UUID NOT NULL REFERENCES normalized_companies(id) ON DELETE CASCADE,
    workflow_slug TEXT NOT NULL,  -- e.g., 'enrich_company_via_waterfall_in_clay'
    status TEXT NOT NULL DEFAULT 'PENDING',  -- PENDING, IN_PROGRESS, COMPLETED, FAILED
    meta JSONB,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW(),
    UNIQUE(company_id, workflow_slug)
);

-- Store company enrichment results
CREATE TABLE company_enrichment_results (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id UUID NOT NULL REFERENCES normalized_companies(id) ON DELETE CASCADE,
    workflow_slug TEXT NOT NULL,
    data JSONB,
    created_at TIMESTAMPTZ DEFAULT NOW()
);

-- Track person enrichment workflows
CREATE TABLE person_workflow_states (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    person_id UUID NOT NULL REFERENCES normalized_people(id) ON DELETE CASCADE,
    workflow_slug TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'PENDING',
    meta JSONB,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW(),
    UNIQUE(person_id, workflow_slug)
);

-- Store person enrichment results
CREATE TABLE person_enrichment_results (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    person_id UUID NOT NULL REFERENCES normalized_people(id) ON DELETE CASCADE,
    workflow_slug TEXT NOT NULL,
    data JSONB,
    created_at TIMESTAMPTZ DEFAULT NOW()
);

-- Indexes for query performance
CREATE INDEX idx_company_workflow_states_lookup ON company_workflow_states(company_id, workflow_slug);
CREATE INDEX idx_company_workflow_states_status ON company_workflow_states(status);
CREATE INDEX idx_person_workflow_states_lookup ON person_workflow_states(person_id, workflow_slug);
CREATE INDEX idx_person_workflow_states_status ON person_workflow_states(status);

-- Beyond the seed: what race-free dispatch, leases and deduplicated callbacks need.
ALTER TABLE company_workflow_states
    ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN dispatch_id UUID,
    ADD COLUMN lease_expires_at TIMESTAMPTZ,
    ADD CONSTRAINT company_workflow_states_status_check
        CHECK (status IN ('PENDING', 'IN_PROGRESS', 'COMPLETED', 'FAILED'));
ALTER TABLE person_workflow_states
    ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN dispatch_id UUID,
    ADD COLUMN lease_expires_at TIMESTAMPTZ,
    ADD CONSTRAINT person_workflow_states_status_check
        CHECK (status IN ('PENDING', 'IN_PROGRESS', 'COMPLETED', 'FAILED'));
CREATE INDEX idx_company_workflow_states_lease ON company_workflow_states(lease_expires_at)
    WHERE status = 'IN_PROGRESS';
CREATE INDEX idx_person_workflow_states_lease ON person_workflow_states(lease_expires_at)
    WHERE status = 'IN_PROGRESS';

-- One stored result per dispatch: a duplicate callback for the same dispatch adds nothing.
ALTER TABLE company_enrichment_results ADD COLUMN dispatch_id UUID UNIQUE;
ALTER TABLE person_enrichment_results ADD COLUMN dispatch_id UUID UNIQUE;
CREATE INDEX idx_company_enrichment_results_company ON company_enrichment_results(company_id, workflow_slug);
CREATE INDEX idx_person_enrichment_results_person ON person_enrichment_results(person_id, workflow_slug);
