-- HQ database. Credits are money: what each workflow costs as Clay bills it, a ledger of what
-- every call cost, results of a client reused instead of bought again, and credit caps.

-- A value counts as returned when it is not null, not blank, not an empty list or object:
-- Clay charges no data credits for a data type an enrichment did not find.
CREATE FUNCTION json_has_value(value JSONB) RETURNS BOOLEAN LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE jsonb_typeof(value)
        WHEN 'null' THEN FALSE
        WHEN 'string' THEN btrim(value #>> '{}') <> ''
        WHEN 'array' THEN jsonb_array_length(value) > 0
        WHEN 'object' THEN value <> '{}'::jsonb
        WHEN 'number' THEN TRUE
        WHEN 'boolean' THEN TRUE
        ELSE FALSE END
$$;

-- An answer that found nothing: no field of it holds a value.
CREATE FUNCTION result_has_data(data JSONB) RETURNS BOOLEAN LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_typeof(data) = 'object'
       AND EXISTS (SELECT 1 FROM jsonb_each(data) f WHERE json_has_value(f.value))
$$;

-- The data types of `prices` (type -> data credits) that `data` returned.
CREATE FUNCTION priced_data_types(prices JSONB, data JSONB) RETURNS TEXT[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT COALESCE(array_agg(p.key ORDER BY p.key), '{}')
    FROM jsonb_each(prices) p
    WHERE jsonb_typeof(data) = 'object' AND json_has_value(data -> p.key)
$$;

CREATE FUNCTION data_credits_for(prices JSONB, data JSONB) RETURNS NUMERIC
LANGUAGE sql IMMUTABLE AS $$
    SELECT COALESCE(sum((p.value #>> '{}')::numeric), 0)
    FROM jsonb_each(prices) p
    WHERE jsonb_typeof(data) = 'object' AND json_has_value(data -> p.key)
$$;

-- Prices, as Clay's column settings show them (docs/clay-setup.md). `credits_per_call`, one
-- number per call, could not say what Clay bills; it becomes the Actions of a run.
-- Bounded well above any real price, so that a call's cost always fits the ledger's columns.
ALTER TABLE db_driven_enrichment_workflows
    ADD COLUMN actions_per_run NUMERIC(12, 4) NOT NULL DEFAULT 0
        CONSTRAINT actions_per_run_range CHECK (actions_per_run BETWEEN 0 AND 1000),
    ADD COLUMN callback_actions NUMERIC(12, 4) NOT NULL DEFAULT 0
        CONSTRAINT callback_actions_range CHECK (callback_actions BETWEEN 0 AND 1000),
    ADD COLUMN data_credits JSONB NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT data_credits_shape CHECK (
            jsonb_typeof(data_credits) = 'object'
            AND NOT jsonb_path_exists(
                data_credits, '$.* ? (@.type() != "number" || @ < 0 || @ > 10000)')),
    -- Days a client's COMPLETED result stays fresh enough to reuse; NULL: never reused.
    ADD COLUMN reuse_window_days INTEGER
        CONSTRAINT reuse_window_days_range
        CHECK (reuse_window_days IS NULL OR reuse_window_days BETWEEN 1 AND 3650);
UPDATE db_driven_enrichment_workflows SET actions_per_run = credits_per_call;
-- The seed's Clay waterfalls: the HTTP-API column that calls back is an Action per row, and the
-- data types they buy (figures to replace with those of your table's columns).
UPDATE db_driven_enrichment_workflows
SET callback_actions = 1, data_credits = '{"employee_count": 1, "industry": 1}'
WHERE workflow_slug = 'enrich_company_via_waterfall_in_clay';
UPDATE db_driven_enrichment_workflows
SET callback_actions = 1, data_credits = '{"email": 2, "work_history": 1}'
WHERE workflow_slug = 'enrich_person_via_waterfall_in_clay';
ALTER TABLE db_driven_enrichment_workflows DROP COLUMN credits_per_call;

-- The most one call of a workflow can cost: its Actions and every data type found.
CREATE FUNCTION workflow_call_ceiling(w db_driven_enrichment_workflows) RETURNS NUMERIC
LANGUAGE sql STABLE AS $$
    SELECT w.actions_per_run + w.callback_actions
           + COALESCE((SELECT sum((p.value #>> '{}')::numeric) FROM jsonb_each(w.data_credits) p), 0)
$$;

-- Batches: held before launch (HELD), whether results may be reused, an optional credit cap.
ALTER TABLE upload_batches DROP CONSTRAINT upload_batches_status_check;
ALTER TABLE upload_batches ADD CONSTRAINT upload_batches_status_check
    CHECK (status IN ('HELD', 'RUNNING', 'COMPLETED', 'FAILED'));
ALTER TABLE upload_batches
    ADD COLUMN reuse_results BOOLEAN NOT NULL DEFAULT TRUE,
    ADD COLUMN credit_cap NUMERIC(14, 4)
        CONSTRAINT credit_cap_not_negative CHECK (credit_cap IS NULL OR credit_cap >= 0);
CREATE INDEX idx_upload_batches_client ON upload_batches(client_name, created_at);

CREATE TABLE client_credit_caps (
    client_name TEXT PRIMARY KEY,
    credit_cap NUMERIC(14, 4) NOT NULL CONSTRAINT client_credit_cap_not_negative CHECK (credit_cap >= 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- A batch that reached a cap sends nothing more: passes leave its paid item-steps PENDING until
-- the cap is raised. The reason names the cap and the command that raises it.
CREATE TABLE budget_holds (
    batch_id UUID PRIMARY KEY REFERENCES upload_batches(id) ON DELETE CASCADE,
    reason TEXT NOT NULL,
    held_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- Reuse: an entity completed from a COMPLETED result of another batch of the same client links
-- that immutable row; nothing is copied.
ALTER TABLE company_workflow_states
    ADD COLUMN reused_result_id UUID REFERENCES company_enrichment_results(id);
ALTER TABLE person_workflow_states
    ADD COLUMN reused_result_id UUID REFERENCES person_enrichment_results(id);
CREATE INDEX idx_company_workflow_states_reused ON company_workflow_states(reused_result_id)
    WHERE reused_result_id IS NOT NULL;
CREATE INDEX idx_person_workflow_states_reused ON person_workflow_states(reused_result_id)
    WHERE reused_result_id IS NOT NULL;
-- Finding a client's earlier entity by its key, across batches.
CREATE INDEX idx_normalized_companies_domain ON normalized_companies(domain);
CREATE INDEX idx_normalized_people_dedupe_key ON normalized_people(dedupe_key);

-- The results an entity has, its own and the one it reuses: what consolidation, verification
-- and the sweeper read.
CREATE VIEW company_results AS
SELECT r.id AS result_id, r.company_id, r.workflow_slug, r.data, r.created_at,
       NULL::uuid AS reused_from_company_id
FROM company_enrichment_results r
UNION ALL
SELECT r.id, s.company_id, s.workflow_slug, r.data, r.created_at, r.company_id
FROM company_workflow_states s
JOIN company_enrichment_results r ON r.id = s.reused_result_id;

CREATE VIEW person_results AS
SELECT r.id AS result_id, r.person_id, r.workflow_slug, r.data, r.created_at,
       NULL::uuid AS reused_from_person_id
FROM person_enrichment_results r
UNION ALL
SELECT r.id, s.person_id, s.workflow_slug, r.data, r.created_at, r.person_id
FROM person_workflow_states s
JOIN person_enrichment_results r ON r.id = s.reused_result_id;

-- The ledger, the way Clay bills: one row per charge, append only.
--   run     Actions of the row's enrichment run, when the provider accepts the call
--   answer  the callback's Action, and data credits per data type the answer returned
--   reuse   nothing spent: what a reused result would have cost (saved by reuse)
CREATE TABLE credit_ledger (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    batch_id UUID REFERENCES upload_batches(id) ON DELETE CASCADE,
    client_name TEXT NOT NULL,
    workflow_slug TEXT NOT NULL,
    entity_type TEXT NOT NULL CHECK (entity_type IN ('company', 'person')),
    entity_id UUID NOT NULL,
    dispatch_id UUID,
    entry TEXT NOT NULL CHECK (entry IN ('run', 'answer', 'reuse')),
    actions NUMERIC(12, 4) NOT NULL DEFAULT 0,
    data_credits NUMERIC(12, 4) NOT NULL DEFAULT 0,
    data_types TEXT[] NOT NULL DEFAULT '{}',
    -- The answer's stored result, or the result reused.
    result_id UUID,
    UNIQUE (dispatch_id, entry),
    CONSTRAINT reuse_has_no_dispatch CHECK ((entry = 'reuse') = (dispatch_id IS NULL))
);
CREATE INDEX idx_credit_ledger_batch ON credit_ledger(batch_id, workflow_slug);
CREATE INDEX idx_credit_ledger_client ON credit_ledger(client_name, recorded_at);
CREATE UNIQUE INDEX idx_credit_ledger_reuse ON credit_ledger(batch_id, workflow_slug, entity_id)
    WHERE entry = 'reuse';
CREATE TRIGGER credit_ledger_append_only BEFORE UPDATE ON credit_ledger
    FOR EACH ROW EXECUTE FUNCTION reject_result_update();

-- Every path that marks a call accepted (`sent_at` set) or answered (`callback_at` set: a stored
-- result, an error answer) goes through here, so no code path can spend without a ledger row:
-- a `run` row with the run's Actions, an `answer` row with the callback's Action and the data
-- credits of the data types its stored result holds (an error answer has none). Once per
-- statement, over the rows it changed (a chunk's record is one statement for 500 calls); after
-- the statement, so it sees the result a sibling part of the statement stored.
CREATE FUNCTION bill_dispatches() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO credit_ledger (batch_id, client_name, workflow_slug, entity_type, entity_id,
                               dispatch_id, entry, actions, data_credits, data_types, result_id)
    SELECT b.id, b.client_name, n.workflow_slug, n.entity_type, n.entity_id, n.id, e.entry,
           CASE e.entry WHEN 'run' THEN w.actions_per_run ELSE w.callback_actions END,
           CASE e.entry WHEN 'run' THEN 0 ELSE data_credits_for(w.data_credits, r.data) END,
           CASE e.entry WHEN 'run' THEN '{}' ELSE priced_data_types(w.data_credits, r.data) END,
           r.id
    FROM new_rows n
    JOIN old_rows o ON o.id = n.id
    CROSS JOIN LATERAL (
        SELECT 'run' AS entry WHERE o.sent_at IS NULL AND n.sent_at IS NOT NULL
        UNION ALL
        SELECT 'answer' WHERE o.callback_at IS NULL AND n.callback_at IS NOT NULL
    ) e
    JOIN db_driven_enrichment_workflows w ON w.workflow_slug = n.workflow_slug
    JOIN upload_batches b ON b.id = COALESCE(n.batch_id,
        (SELECT c.batch_id FROM normalized_companies c WHERE c.id = n.entity_id),
        (SELECT p.batch_id FROM normalized_people p WHERE p.id = n.entity_id))
    LEFT JOIN LATERAL (
        SELECT x.id, x.data FROM company_enrichment_results x
        WHERE e.entry = 'answer' AND n.entity_type = 'company' AND x.dispatch_id = n.id
        UNION ALL
        SELECT x.id, x.data FROM person_enrichment_results x
        WHERE e.entry = 'answer' AND n.entity_type = 'person' AND x.dispatch_id = n.id
    ) r ON TRUE
    ORDER BY n.id, e.entry
    ON CONFLICT (dispatch_id, entry) DO NOTHING;
    RETURN NULL;
END;
$$;
CREATE TRIGGER entity_dispatches_bill AFTER UPDATE ON entity_dispatches
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bill_dispatches();

-- The ledger is what a call cost; the dispatch keeps what happened to it.
ALTER TABLE entity_dispatches DROP COLUMN credits;
