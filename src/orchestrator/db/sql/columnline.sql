-- Queries of the V2 dossier API (/api/columnline/), see columnline/service.py.

-- name: v2_get_client
SELECT id, slug, name, icp, industry_research, config, created_at, updated_at
FROM v2_clients WHERE slug = %(slug)s;

-- name: v2_upsert_client
INSERT INTO v2_clients (slug, name, icp, industry_research, config)
VALUES (%(slug)s, %(name)s, %(icp)s, %(industry_research)s, %(config)s)
ON CONFLICT (slug) DO UPDATE
SET name = EXCLUDED.name, icp = EXCLUDED.icp, industry_research = EXCLUDED.industry_research,
    config = EXCLUDED.config, updated_at = NOW()
RETURNING id, slug, name, icp, industry_research, config, created_at, updated_at;

-- name: v2_list_prompts
SELECT id, prompt_key, stage, step_name, model, template, version, is_active, created_at,
       updated_at
FROM v2_prompts
WHERE %(stage)s::text IS NULL OR stage = %(stage)s::text
ORDER BY stage, prompt_key;

-- name: v2_get_prompt
SELECT id, prompt_key, stage, step_name, model, template, version, is_active, created_at,
       updated_at
FROM v2_prompts WHERE prompt_key = %(prompt_key)s;

-- name: v2_upsert_prompt
-- The version counts template changes, so a run's logged prompt can be matched to its version.
INSERT INTO v2_prompts AS p (prompt_key, stage, step_name, model, template, is_active)
VALUES (%(prompt_key)s, %(stage)s, %(step_name)s, %(model)s, %(template)s, %(is_active)s)
ON CONFLICT (prompt_key) DO UPDATE
SET stage = EXCLUDED.stage, step_name = EXCLUDED.step_name, model = EXCLUDED.model,
    template = EXCLUDED.template, is_active = EXCLUDED.is_active,
    version = p.version + (p.template IS DISTINCT FROM EXCLUDED.template)::int,
    updated_at = NOW()
RETURNING id, prompt_key, stage, step_name, model, template, version, is_active, created_at,
          updated_at;

-- name: v2_list_section_definitions
SELECT id, section_key, title, position, config, created_at
FROM v2_section_definitions ORDER BY position, section_key;

-- name: v2_upsert_section_definition
INSERT INTO v2_section_definitions (section_key, title, position, config)
VALUES (%(section_key)s, %(title)s, %(position)s, %(config)s)
ON CONFLICT (section_key) DO UPDATE
SET title = EXCLUDED.title, position = EXCLUDED.position, config = EXCLUDED.config
RETURNING id, section_key, title, position, config, created_at;

-- name: v2_create_run
-- No row when the client slug is unknown.
INSERT INTO v2_runs (client_id, target_company, target_domain, input)
SELECT c.id, %(target_company)s, %(target_domain)s, %(input)s
FROM v2_clients c WHERE c.slug = %(client_slug)s
RETURNING id AS run_id, client_id, status, started_at;

-- name: v2_lock_run_shared
-- Writers of a run's logs and contacts share this lock; publish's FOR UPDATE waits for them,
-- so nothing logged before publish commits is left out of the dossier.
SELECT id, client_id, status FROM v2_runs WHERE id = %(run_id)s FOR SHARE;

-- name: v2_lock_run
SELECT id, client_id, status FROM v2_runs WHERE id = %(run_id)s FOR UPDATE;

-- name: v2_set_current_stage
UPDATE v2_runs SET current_stage = %(stage)s WHERE id = %(run_id)s;

-- name: v2_insert_stage_event
-- No row when the stage already has this event (uq_v2_pipeline_logs_stage_event).
INSERT INTO v2_pipeline_logs (run_id, event_type, stage, output)
VALUES (%(run_id)s, %(event_type)s, %(stage)s, %(output)s)
ON CONFLICT (run_id, stage, event_type) WHERE event_type IN ('stage_start', 'stage_complete')
DO NOTHING
RETURNING id AS log_id, run_id, stage, event_type, created_at;

-- name: v2_stage_started
SELECT EXISTS (
    SELECT 1 FROM v2_pipeline_logs
    WHERE run_id = %(run_id)s AND stage = %(stage)s AND event_type = 'stage_start'
) AS started;

-- name: v2_insert_step
INSERT INTO v2_pipeline_logs
    (run_id, event_type, stage, step_name, prompt_key, prompt, input, output, model, tokens_in,
     tokens_out, duration_ms, status, error)
VALUES
    (%(run_id)s, 'step', %(stage)s, %(step_name)s, %(prompt_key)s, %(prompt)s, %(input)s,
     %(output)s, %(model)s, %(tokens_in)s, %(tokens_out)s, %(duration_ms)s, %(status)s, %(error)s)
RETURNING id AS log_id, run_id, stage, step_name, created_at;

-- name: v2_insert_contacts
-- One statement for the whole list; ids come from the caller so it can return them in order.
INSERT INTO v2_contacts (id, run_id, full_name, title, email, linkedin_url, data)
SELECT c.id, %(run_id)s, c.full_name, c.title, c.email, c.linkedin_url,
       COALESCE(c.data, '{}'::jsonb)
FROM jsonb_to_recordset(%(contacts)s::jsonb)
    AS c(id uuid, full_name text, title text, email text, linkedin_url text, data jsonb);

-- name: v2_get_run
SELECT r.id, r.client_id, c.slug AS client_slug, r.target_company, r.target_domain, r.status,
       r.current_stage, r.input, r.started_at, r.completed_at, r.published_at,
       d.id AS dossier_id
FROM v2_runs r
JOIN v2_clients c ON c.id = r.client_id
LEFT JOIN dossiers d ON d.run_id = r.id
WHERE r.id = %(run_id)s;

-- name: v2_run_logs
SELECT id, event_type, stage, step_name, prompt_key, prompt, input, output, model, tokens_in,
       tokens_out, duration_ms, status, error, created_at
FROM v2_pipeline_logs WHERE run_id = %(run_id)s ORDER BY id;

-- name: v2_run_contacts
SELECT id, full_name, title, email, linkedin_url, data, created_at
FROM v2_contacts WHERE run_id = %(run_id)s ORDER BY created_at, id;

-- name: v2_stage_states
SELECT stage,
       bool_or(event_type = 'stage_start') AS started,
       bool_or(event_type = 'stage_complete') AS completed
FROM v2_pipeline_logs
WHERE run_id = %(run_id)s AND event_type IN ('stage_start', 'stage_complete')
GROUP BY stage ORDER BY min(id);

-- name: v2_section_sources
-- Each defined section with the latest successful step named like it (NULLs when none).
SELECT d.section_key, d.title, d.position, s.id AS log_id, s.output
FROM v2_section_definitions d
LEFT JOIN LATERAL (
    SELECT l.id, l.output FROM v2_pipeline_logs l
    WHERE l.run_id = %(run_id)s AND l.event_type = 'step' AND l.step_name = d.section_key
      AND l.status = 'success' AND l.output IS NOT NULL
    ORDER BY l.id DESC LIMIT 1
) s ON TRUE
ORDER BY d.position, d.section_key;

-- name: v2_stage_outputs
SELECT stage, id AS log_id, output FROM v2_pipeline_logs
WHERE run_id = %(run_id)s AND event_type = 'stage_complete' ORDER BY id;

-- name: v2_upsert_dossier_batch
-- DO UPDATE (a no-op) rather than DO NOTHING so the existing row's id is returned too.
INSERT INTO dossier_batches (client_id, name) VALUES (%(client_id)s, %(name)s)
ON CONFLICT (client_id, name) DO UPDATE SET name = EXCLUDED.name
RETURNING id;

-- name: v2_insert_dossier
-- No row when the run already has its dossier (dossiers.run_id is UNIQUE).
INSERT INTO dossiers (run_id, client_id, dossier_batch_id, target_company, target_domain, sections)
SELECT r.id, r.client_id, %(dossier_batch_id)s, r.target_company, r.target_domain, %(sections)s
FROM v2_runs r WHERE r.id = %(run_id)s
ON CONFLICT (run_id) DO NOTHING
RETURNING id, run_id, dossier_batch_id, sections, published_at;

-- name: v2_find_dossier
SELECT id, run_id, dossier_batch_id, sections, published_at FROM dossiers
WHERE run_id = %(run_id)s;

-- name: v2_publish_contacts
-- Each run contact is published once (contacts.source_contact_id is UNIQUE).
INSERT INTO contacts (dossier_id, source_contact_id, full_name, title, email, linkedin_url, data)
SELECT %(dossier_id)s, c.id, c.full_name, c.title, c.email, c.linkedin_url, c.data
FROM v2_contacts c WHERE c.run_id = %(run_id)s
ORDER BY c.created_at, c.id
ON CONFLICT (source_contact_id) DO NOTHING;

-- name: v2_mark_published
UPDATE v2_runs
SET status = 'published', published_at = NOW(), completed_at = COALESCE(completed_at, NOW())
WHERE id = %(run_id)s;

-- name: v2_dossier_contact_count
SELECT count(*) AS n FROM contacts WHERE dossier_id = %(dossier_id)s;
