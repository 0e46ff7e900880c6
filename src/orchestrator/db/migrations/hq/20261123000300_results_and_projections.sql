-- HQ database. The audit log is append-only JSON; dashboards read the projections only.

-- Generic immutable results of any workflow whose entity is not a company or person enriched
-- through the entity tables (item-level and manual-play steps).
CREATE TABLE enrichment_results (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workflow_id UUID,
    workflow_slug TEXT NOT NULL,
    entity_type TEXT NOT NULL CHECK (entity_type IN ('item', 'company', 'person')),
    entity_id UUID NOT NULL,
    batch_id UUID REFERENCES upload_batches(id) ON DELETE CASCADE,
    batch_item_id UUID REFERENCES batch_items(id) ON DELETE CASCADE,
    company_domain TEXT,
    dispatch_id UUID UNIQUE,
    data JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_enrichment_results_entity ON enrichment_results(entity_id, workflow_slug);

-- Results are history: a new result is a new row, never an edit of an old one.
CREATE FUNCTION reject_result_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are immutable; record a new result instead', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER enrichment_results_immutable BEFORE UPDATE ON enrichment_results
    FOR EACH ROW EXECUTE FUNCTION reject_result_update();
CREATE TRIGGER company_enrichment_results_immutable BEFORE UPDATE ON company_enrichment_results
    FOR EACH ROW EXECUTE FUNCTION reject_result_update();
CREATE TRIGGER person_enrichment_results_immutable BEFORE UPDATE ON person_enrichment_results
    FOR EACH ROW EXECUTE FUNCTION reject_result_update();

-- Casts that never fail: consolidation reads provider JSON whose shape may drift, and a bad
-- value must become NULL in the projection, not abort the batch.
CREATE FUNCTION try_int(value TEXT) RETURNS INTEGER LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN value::numeric::integer;
EXCEPTION WHEN others THEN
    RETURN NULL;
END;
$$;
CREATE FUNCTION try_date(value TEXT) RETURNS DATE LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN value::date;
EXCEPTION WHEN others THEN
    RETURN NULL;
END;
$$;
CREATE FUNCTION try_bool(value TEXT) RETURNS BOOLEAN LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN value::boolean;
EXCEPTION WHEN others THEN
    RETURN NULL;
END;
$$;

-- The clean table: one row per person of a batch.
CREATE TABLE final_leads (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    batch_id UUID NOT NULL REFERENCES upload_batches(id) ON DELETE CASCADE,
    batch_item_id UUID NOT NULL REFERENCES batch_items(id) ON DELETE CASCADE,
    person_id UUID NOT NULL UNIQUE REFERENCES normalized_people(id) ON DELETE CASCADE,
    company_id UUID NOT NULL REFERENCES normalized_companies(id) ON DELETE CASCADE,
    first_name TEXT,
    last_name TEXT,
    full_name TEXT,
    title TEXT,
    seniority TEXT,
    email TEXT,
    email_verified BOOLEAN,
    linkedin_url TEXT,
    company_name TEXT,
    company_domain TEXT,
    company_linkedin_url TEXT,
    company_industry TEXT,
    company_employee_count INTEGER,
    company_founded_year INTEGER,
    company_hq_city TEXT,
    company_hq_country TEXT,
    company_revenue_range TEXT,
    consolidated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_final_leads_batch ON final_leads(batch_id);
CREATE INDEX idx_final_leads_company_domain ON final_leads(company_domain);

-- One row per past or current job, for "people who used to work at X" filters.
CREATE TABLE person_work_history (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    batch_id UUID NOT NULL REFERENCES upload_batches(id) ON DELETE CASCADE,
    batch_item_id UUID NOT NULL REFERENCES batch_items(id) ON DELETE CASCADE,
    person_id UUID NOT NULL REFERENCES normalized_people(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    company_name TEXT NOT NULL,
    company_domain TEXT,
    title TEXT,
    start_date DATE,
    end_date DATE,
    is_current BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE (person_id, position)
);
CREATE INDEX idx_person_work_history_company_name ON person_work_history(company_name);
CREATE INDEX idx_person_work_history_company_name_ci ON person_work_history(lower(company_name));
CREATE INDEX idx_person_work_history_item ON person_work_history(batch_item_id);
