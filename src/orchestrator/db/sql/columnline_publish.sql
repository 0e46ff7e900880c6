-- Queries of the V2 dossier API's publish step and of its Idempotency-Key records, see
-- columnline/publish.py and columnline/idempotency.py.

-- name: v2_stage_states
SELECT stage,
       bool_or(event_type = 'stage_start') AS started,
       bool_or(event_type = 'stage_complete') AS completed
FROM v2_pipeline_logs
WHERE run_id = %(run_id)s AND event_type IN ('stage_start', 'stage_complete')
GROUP BY stage ORDER BY min(id);

-- name: v2_upsert_dossier_batch
-- DO UPDATE (a no-op) rather than DO NOTHING so the existing row's id is returned too.
INSERT INTO dossier_batches (client_id, name) VALUES (%(client_id)s, %(name)s)
ON CONFLICT (client_id, name) DO UPDATE SET name = EXCLUDED.name
RETURNING id;

-- name: v2_insert_dossier
-- The dossier document is assembled here, so a large run never passes through the API's memory:
-- `sections` holds each section the client's dossiers have (its own definitions and the shared
-- ones it keeps) filled by the latest successful step of the definition's stage whose
-- step_name is the section key; `missing_sections` the ones no step filled, by position;
-- `stages` each completed stage's consolidated output. `log_id` points back to the log row.
-- No row when the run already has its dossier (dossiers.run_id is UNIQUE).
WITH run AS (
    SELECT id, client_id, target_company, target_domain FROM v2_runs WHERE id = %(run_id)s
), definitions AS (
    SELECT d.section_key, d.title, d.position, d.stage, d.included
    FROM run, v2_client_section_definitions(run.client_id) d
), filled AS (
    SELECT d.section_key, d.title, d.position, s.id AS log_id, s.output
    FROM definitions d
    LEFT JOIN LATERAL (
        SELECT l.id, l.output FROM v2_pipeline_logs l
        WHERE l.run_id = %(run_id)s AND l.event_type = 'step' AND l.stage = d.stage
          AND l.step_name = d.section_key AND l.status = 'success' AND l.output IS NOT NULL
        ORDER BY l.id DESC LIMIT 1
    ) s ON TRUE
    WHERE d.included
), stages AS (
    SELECT stage, id AS log_id, output FROM v2_pipeline_logs
    WHERE run_id = %(run_id)s AND event_type = 'stage_complete'
)
INSERT INTO dossiers (run_id, client_id, dossier_batch_id, target_company, target_domain, sections)
SELECT run.id, run.client_id, %(dossier_batch_id)s, run.target_company, run.target_domain,
       jsonb_build_object(
           'sections', COALESCE((
               SELECT jsonb_object_agg(section_key, jsonb_build_object(
                   'title', title, 'position', position, 'content', output, 'log_id', log_id))
               FROM filled WHERE log_id IS NOT NULL), '{}'::jsonb),
           'missing_sections', COALESCE((
               SELECT jsonb_agg(section_key ORDER BY position, section_key)
               FROM filled WHERE log_id IS NULL), '[]'::jsonb),
           'stages', COALESCE((
               SELECT jsonb_object_agg(stage, jsonb_build_object('output', output, 'log_id', log_id))
               FROM stages), '{}'::jsonb))
FROM run
ON CONFLICT (run_id) DO NOTHING
RETURNING id, run_id, dossier_batch_id, published_at;

-- name: v2_find_dossier
SELECT id, run_id, dossier_batch_id, published_at FROM dossiers WHERE run_id = %(run_id)s;

-- name: v2_dossier_summary
-- What the publish answer lists of a dossier: its filled sections by position, the missing
-- ones, its stages in the order they completed, and how many contacts it has.
SELECT
    ARRAY(SELECT s.key FROM jsonb_each(d.sections -> 'sections') s
          ORDER BY (s.value ->> 'position')::int, s.key) AS sections,
    ARRAY(SELECT jsonb_array_elements_text(d.sections -> 'missing_sections')) AS missing_sections,
    ARRAY(SELECT s.key FROM jsonb_each(d.sections -> 'stages') s
          ORDER BY (s.value ->> 'log_id')::bigint) AS stages,
    (SELECT count(*) FROM contacts c WHERE c.dossier_id = d.id) AS contacts
FROM dossiers d WHERE d.id = %(dossier_id)s;

-- name: v2_publish_contacts
-- Each run contact is published once (contacts.source_contact_id is UNIQUE).
-- `position`: the order the scenario sent them in.
INSERT INTO contacts
    (dossier_id, source_contact_id, full_name, title, email, linkedin_url, data, position)
SELECT %(dossier_id)s, c.id, c.full_name, c.title, c.email, c.linkedin_url, c.data,
       row_number() OVER (ORDER BY c.seq)
FROM v2_contacts c WHERE c.run_id = %(run_id)s
ORDER BY c.seq
ON CONFLICT (source_contact_id) DO NOTHING;

-- name: v2_mark_published
UPDATE v2_runs
SET status = 'published', published_at = NOW(), completed_at = COALESCE(completed_at, NOW()),
    last_activity_at = NOW()
WHERE id = %(run_id)s;

-- name: v2_forget_expired_keys
-- This key when it has expired (so it can be used again), and a few other expired ones: each
-- keyed write clears a little, so the table stays as small as its keeping time makes it.
DELETE FROM v2_idempotency_keys
WHERE (route = %(route)s AND run_id IS NOT DISTINCT FROM %(run_id)s::uuid AND key = %(key)s
       AND expires_at <= NOW())
   OR ctid IN (SELECT ctid FROM v2_idempotency_keys WHERE expires_at <= NOW()
               LIMIT 20 FOR UPDATE SKIP LOCKED);

-- name: v2_claim_idempotency_key
-- No row when the key is already held: a retry that arrives while the first request is still
-- running waits here, on the unique constraint, until that one commits or rolls back.
INSERT INTO v2_idempotency_keys (route, run_id, key, fingerprint, expires_at)
VALUES (%(route)s, %(run_id)s, %(key)s, %(fingerprint)s, NOW() + %(keep)s::interval)
ON CONFLICT ON CONSTRAINT uq_v2_idempotency_keys DO NOTHING
RETURNING key;

-- name: v2_idempotency_key
SELECT fingerprint, status_code, response, created_at FROM v2_idempotency_keys
WHERE route = %(route)s AND run_id IS NOT DISTINCT FROM %(run_id)s::uuid AND key = %(key)s;

-- name: v2_remember_response
UPDATE v2_idempotency_keys SET status_code = %(status_code)s, response = %(response)s
WHERE route = %(route)s AND run_id IS NOT DISTINCT FROM %(run_id)s::uuid AND key = %(key)s;
