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

-- name: v2_shared_section_definitions
SELECT id, section_key, title, position, stage, config, included, NULL AS client_slug,
       created_at, updated_at
FROM v2_section_definitions WHERE client_id IS NULL
ORDER BY position, section_key;

-- name: v2_effective_section_definitions
-- What a client's dossiers are built from (see v2_client_section_definitions), in order.
SELECT d.id, d.section_key, d.title, d.position, d.stage, d.config, d.included,
       c.slug AS client_slug, d.created_at, d.updated_at
FROM v2_client_section_definitions(%(client_id)s) d
LEFT JOIN v2_clients c ON c.id = d.client_id
ORDER BY d.position, d.section_key;

-- name: v2_upsert_section_definition
WITH saved AS (
    INSERT INTO v2_section_definitions
        (client_id, section_key, title, position, stage, config, included)
    VALUES (%(client_id)s, %(section_key)s, %(title)s, %(position)s, %(stage)s, %(config)s,
            %(included)s)
    ON CONFLICT ON CONSTRAINT uq_v2_section_definitions DO UPDATE
    SET title = EXCLUDED.title, position = EXCLUDED.position, stage = EXCLUDED.stage,
        config = EXCLUDED.config, included = EXCLUDED.included, updated_at = NOW()
    RETURNING *
)
SELECT s.id, s.section_key, s.title, s.position, s.stage, s.config, s.included,
       c.slug AS client_slug, s.created_at, s.updated_at
FROM saved s LEFT JOIN v2_clients c ON c.id = s.client_id;

-- name: v2_delete_section_definition
DELETE FROM v2_section_definitions
WHERE client_id IS NOT DISTINCT FROM %(client_id)s::uuid AND section_key = %(section_key)s
RETURNING section_key;

-- name: v2_client_id
SELECT id FROM v2_clients WHERE slug = %(slug)s;

-- name: v2_create_run
-- No row when the client slug is unknown. The run's input counts toward its size budget.
INSERT INTO v2_runs (client_id, target_company, target_domain, input, stored_bytes)
SELECT c.id, %(target_company)s, %(target_domain)s, %(input)s,
       v2_stored_size(%(input)s) + octet_length(concat(%(target_company)s::text,
                                                       %(target_domain)s::text)) + 128
FROM v2_clients c WHERE c.slug = %(client_slug)s
RETURNING id AS run_id, client_id, status, started_at;

-- name: v2_lock_run
-- Every write to a run takes this lock first: writes to one run take turns, a publish sees
-- everything logged before it, and nothing is logged after a run ends.
SELECT id, client_id, status, end_reason, stored_bytes FROM v2_runs
WHERE id = %(run_id)s FOR UPDATE;

-- name: v2_stage_event
-- The stage's start or completion event, and whether its output is the one given.
SELECT id AS log_id, run_id, stage, event_type, created_at,
       output IS NOT DISTINCT FROM %(output)s::jsonb AS same_output
FROM v2_pipeline_logs
WHERE run_id = %(run_id)s AND stage = %(stage)s AND event_type = %(event_type)s;

-- name: v2_insert_stage_event
-- No row when the event would take the run past its size budget. An event without an output
-- may use a reserve past the budget, so a full run can still close its stages and be published.
-- A stage start also makes the stage the run's current one.
WITH doc AS (
    SELECT output, v2_stored_size(output) + octet_length(%(stage)s::text) + 128 AS bytes
    FROM (SELECT %(output)s::jsonb AS output) given
), grown AS (
    UPDATE v2_runs r
    SET stored_bytes = r.stored_bytes + doc.bytes,
        last_activity_at = NOW(),
        current_stage = CASE WHEN %(event_type)s = 'stage_start' THEN %(stage)s
                             ELSE r.current_stage END
    FROM doc
    WHERE r.id = %(run_id)s
      AND r.stored_bytes + doc.bytes
          <= %(max_run_bytes)s + CASE WHEN doc.output IS NULL THEN %(reserve)s ELSE 0 END
    RETURNING r.id
)
INSERT INTO v2_pipeline_logs (run_id, event_type, stage, output)
SELECT grown.id, %(event_type)s, %(stage)s, doc.output FROM grown, doc
RETURNING id AS log_id, run_id, stage, event_type, created_at;

-- name: v2_insert_step
-- No row when the step would take the run past its size budget: every value it holds (JSON
-- documents as v2_stored_size counts them) and 128 bytes for the row itself.
WITH doc AS (
    SELECT %(input)s::jsonb AS input, %(output)s::jsonb AS output
), grown AS (
    UPDATE v2_runs r
    SET stored_bytes = r.stored_bytes + s.bytes, last_activity_at = NOW()
    FROM (
        SELECT v2_stored_size(doc.input) + v2_stored_size(doc.output)
             + octet_length(concat(%(stage)s::text, %(step_name)s::text, %(prompt_key)s::text,
                                   %(prompt)s::text, %(model)s::text, %(error)s::text))
             + 128 AS bytes  -- what a row holds besides its values
        FROM doc
    ) s
    WHERE r.id = %(run_id)s AND r.stored_bytes + s.bytes <= %(max_run_bytes)s
    RETURNING r.id
)
INSERT INTO v2_pipeline_logs
    (run_id, event_type, stage, step_name, prompt_key, prompt, input, output, model, tokens_in,
     tokens_out, duration_ms, status, error)
SELECT grown.id, 'step', %(stage)s, %(step_name)s, %(prompt_key)s, %(prompt)s, doc.input,
       doc.output, %(model)s, %(tokens_in)s, %(tokens_out)s, %(duration_ms)s, %(status)s,
       %(error)s
FROM grown, doc
RETURNING id AS log_id, run_id, stage, step_name, created_at;

-- name: v2_insert_contacts
-- One statement for the whole list; ids come from the caller so it can return them in order.
-- No row when the contacts would take the run past its size budget.
-- Inserted in the list's order, which `seq` keeps.
WITH doc AS (
    SELECT contacts, v2_stored_size(contacts) + 128 * jsonb_array_length(contacts) AS bytes
    FROM (SELECT %(contacts)s::jsonb AS contacts) given
), grown AS (
    UPDATE v2_runs r
    SET stored_bytes = r.stored_bytes + doc.bytes, last_activity_at = NOW()
    FROM doc
    WHERE r.id = %(run_id)s AND r.stored_bytes + doc.bytes <= %(max_run_bytes)s
    RETURNING r.id
)
INSERT INTO v2_contacts (id, run_id, full_name, title, email, linkedin_url, data)
SELECT (c.value ->> 'id')::uuid, grown.id, c.value ->> 'full_name', c.value ->> 'title',
       c.value ->> 'email', c.value ->> 'linkedin_url', COALESCE(c.value -> 'data', '{}'::jsonb)
FROM grown, doc, jsonb_array_elements(doc.contacts) WITH ORDINALITY AS c(value, n)
ORDER BY c.n
RETURNING id;

-- name: v2_end_run
UPDATE v2_runs
SET status = %(status)s, end_reason = %(reason)s, completed_at = NOW(), last_activity_at = NOW()
WHERE id = %(run_id)s
RETURNING id AS run_id, status, end_reason AS reason, completed_at AS ended_at;

-- name: v2_get_run
SELECT r.id, r.client_id, c.slug AS client_slug, r.target_company, r.target_domain, r.status,
       CASE WHEN %(outputs)s THEN r.end_reason ELSE v2_preview(r.end_reason) END AS end_reason,
       r.current_stage, CASE WHEN %(outputs)s THEN r.input ELSE '{}'::jsonb END AS input,
       r.started_at, r.completed_at, r.published_at,
       r.last_activity_at, r.stored_bytes,
       r.status = 'running' AND r.last_activity_at < NOW() - %(stale_after)s::interval AS stale,
       d.id AS dossier_id
FROM v2_runs r
JOIN v2_clients c ON c.id = r.client_id
LEFT JOIN dossiers d ON d.run_id = r.id
WHERE r.id = %(run_id)s;

-- name: v2_list_runs
-- Newest activity first; `stale`: running and idle past the stale time. A list shows the start
-- of each end reason (GET /runs/{id} has it whole).
SELECT r.id, r.client_id, c.slug AS client_slug, r.target_company, r.target_domain, r.status,
       v2_preview(r.end_reason) AS end_reason, r.current_stage, r.started_at, r.completed_at,
       r.published_at, r.last_activity_at, r.stored_bytes,
       r.status = 'running' AND r.last_activity_at < NOW() - %(stale_after)s::interval AS stale
FROM v2_runs r
JOIN v2_clients c ON c.id = r.client_id
WHERE (%(client_slug)s::text IS NULL OR c.slug = %(client_slug)s::text)
  AND (%(status)s::text IS NULL OR r.status = %(status)s::text)
  AND (%(stale)s::boolean IS NULL
       OR %(stale)s::boolean = (r.status = 'running'
                                AND r.last_activity_at < NOW() - %(stale_after)s::interval))
ORDER BY r.last_activity_at DESC, r.id
LIMIT %(limit)s;

-- name: v2_run_logs
-- `outputs` false leaves out the heavy columns (prompt, input, output) and shows the start of
-- each error, for a light read.
SELECT id, event_type, stage, step_name, prompt_key,
       CASE WHEN %(outputs)s THEN prompt END AS prompt,
       CASE WHEN %(outputs)s THEN input END AS input,
       CASE WHEN %(outputs)s THEN output END AS output,
       model, tokens_in, tokens_out, duration_ms, status,
       CASE WHEN %(outputs)s THEN error ELSE v2_preview(error) END AS error, created_at
FROM v2_pipeline_logs WHERE run_id = %(run_id)s ORDER BY id;

-- name: v2_run_contacts
SELECT id, full_name, title, email, linkedin_url,
       CASE WHEN %(outputs)s THEN data ELSE '{}'::jsonb END AS data, created_at
FROM v2_contacts WHERE run_id = %(run_id)s ORDER BY seq;

-- name: v2_run_end
SELECT id AS run_id, status, end_reason AS reason, completed_at AS ended_at
FROM v2_runs WHERE id = %(run_id)s;
