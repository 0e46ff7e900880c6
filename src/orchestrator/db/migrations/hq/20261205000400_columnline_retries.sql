-- HQ database. The V2 dossier API under Make.com's retries: writes safe to repeat, runs that end,
-- a size budget per run, and section definitions per client.

-- Idempotency-Key: the first answer to a keyed write, kept so that the same key and body answer
-- it again. Scoped per route and run (NULL for the routes outside a run); the claim row is
-- written in the same transaction as the write, so a refused write leaves no key behind and a
-- retry that arrives while the first is still running waits for it on the unique index.
CREATE TABLE v2_idempotency_keys (
    route TEXT NOT NULL,
    run_id UUID,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status_code INTEGER,
    response BYTEA,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    expires_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT uq_v2_idempotency_keys UNIQUE NULLS NOT DISTINCT (route, run_id, key)
);
CREATE INDEX idx_v2_idempotency_keys_expiry ON v2_idempotency_keys(expires_at);

-- A run ends as failed (with its reason) or completed without publishing. stored_bytes counts
-- what its logs and contacts hold (JSONB sizes, text lengths), so no write can take a run past
-- what one dossier document can hold; last_activity_at is the time of its latest write, which
-- tells a stale run (the scenario stopped without ending it).
ALTER TABLE v2_runs
    ADD COLUMN end_reason TEXT,
    ADD COLUMN stored_bytes BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN last_activity_at TIMESTAMPTZ;

-- What a JSON document costs a run: its size as Postgres holds it (JSONB, uncompressed) or as
-- it is read back as text, whichever is larger. A dossier is one JSONB document (256 MB at most)
-- read back as text (1 GB at most), and small stored values can read back much larger (a
-- control character is 1 byte stored and 6 read, \u0001).
CREATE FUNCTION v2_stored_size(doc JSONB) RETURNS BIGINT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT COALESCE(GREATEST(pg_column_size(doc), octet_length(doc::text)), 0)
$$;

-- The same count as the writes make (columnline.sql): every value, and 128 bytes per row.
UPDATE v2_runs r SET
    stored_bytes = COALESCE((
        SELECT sum(v2_stored_size(l.input) + v2_stored_size(l.output)
                   + octet_length(concat(l.stage, l.step_name, l.prompt_key, l.prompt, l.model,
                                         l.error))
                   + 128)
        FROM v2_pipeline_logs l WHERE l.run_id = r.id), 0)
      + COALESCE((
        SELECT sum(v2_stored_size(c.data) + octet_length(concat(c.full_name, c.title, c.email,
                                                                 c.linkedin_url)) + 128)
        FROM v2_contacts c WHERE c.run_id = r.id), 0)
      + v2_stored_size(r.input) + octet_length(concat(r.target_company, r.target_domain)) + 128,
    last_activity_at = GREATEST(
        r.started_at,
        (SELECT max(l.created_at) FROM v2_pipeline_logs l WHERE l.run_id = r.id),
        (SELECT max(c.created_at) FROM v2_contacts c WHERE c.run_id = r.id));

ALTER TABLE v2_runs ALTER COLUMN last_activity_at SET DEFAULT NOW();
ALTER TABLE v2_runs ALTER COLUMN last_activity_at SET NOT NULL;
CREATE INDEX idx_v2_runs_activity ON v2_runs(status, last_activity_at);

-- Section definitions: a shared default set (client_id NULL) plus each client's own, which
-- replace a default of the same key (or leave it out, included = false). A definition names the
-- stage whose steps fill it. The definitions made before had no stage: the documented flow
-- writes sections in the `sections` stage, so that is theirs (PUT again to change it).
ALTER TABLE v2_section_definitions
    ADD COLUMN client_id UUID REFERENCES v2_clients(id) ON DELETE CASCADE,
    ADD COLUMN stage TEXT NOT NULL DEFAULT 'sections',
    ADD COLUMN included BOOLEAN NOT NULL DEFAULT TRUE,
    ADD COLUMN updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW();
ALTER TABLE v2_section_definitions ALTER COLUMN stage DROP DEFAULT;
ALTER TABLE v2_section_definitions DROP CONSTRAINT v2_section_definitions_section_key_key;
ALTER TABLE v2_section_definitions
    ADD CONSTRAINT uq_v2_section_definitions UNIQUE NULLS NOT DISTINCT (client_id, section_key);

-- What a client's dossiers are built from: its own definitions, and the shared ones it has no
-- definition of the same key for (included = false marks a shared one it leaves out). One
-- function, so the API's list and publishing read the rule the same way.
CREATE FUNCTION v2_client_section_definitions(client UUID)
RETURNS SETOF v2_section_definitions
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT ON (d.section_key) d.*
    FROM v2_section_definitions d
    WHERE d.client_id IS NULL OR d.client_id = client
    ORDER BY d.section_key, d.client_id NULLS LAST
$$;

-- What lists and light reads show of a long text (an end reason, a step's error): its start.
CREATE FUNCTION v2_preview(text TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN length(text) > 500
                THEN left(text, 500) || '... (' || length(text) || ' characters)'
                ELSE text END
$$;

-- Contacts keep the order the scenario sent them in: within one request they share their
-- created_at, and their ids are random.
ALTER TABLE v2_contacts ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY;
CREATE INDEX idx_v2_contacts_run_seq ON v2_contacts(run_id, seq);
DROP INDEX idx_v2_contacts_run;
ALTER TABLE contacts ADD COLUMN position INTEGER;
