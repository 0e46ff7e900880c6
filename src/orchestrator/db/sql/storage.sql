-- name: destination_columns
-- Columns of a destination table, to validate configuration before writing.
SELECT column_name FROM information_schema.columns
WHERE table_schema = 'public' AND table_name = %(table)s;

-- name: log_result
-- The logger: enrichment_results_log always; company_play_step_completions only when the
-- caller verified the data is stored (never a completion without data). The play step is the
-- one given (manual runs) or the company's batch play step for this workflow.
WITH target AS (
    SELECT COALESCE(%(company_id)s::uuid,
                    (SELECT company_id FROM normalized_people WHERE id = %(person_id)s::uuid))
               AS company_id,
           COALESCE(%(company_domain)s::text, c.domain) AS company_domain,
           COALESCE(%(batch_id)s::uuid, c.batch_id) AS batch_id,
           COALESCE(%(play_name)s::text, b.play_name) AS play_name,
           COALESCE(%(step_number)s::int, ps.step_number) AS step_number
    FROM (SELECT 1) one
    LEFT JOIN normalized_companies c ON c.id = COALESCE(%(company_id)s::uuid,
        (SELECT company_id FROM normalized_people WHERE id = %(person_id)s::uuid))
    LEFT JOIN upload_batches b ON b.id = c.batch_id
    LEFT JOIN play_steps ps ON ps.play_name = b.play_name AND ps.workflow_slug = %(workflow_slug)s
), logged AS (
    INSERT INTO enrichment_results_log
        (workflow_id, workflow_slug, company_id, company_domain, person_id, batch_id, play_name,
         step_number, status, error_message, result_table)
    SELECT %(workflow_id)s, %(workflow_slug)s, company_id, company_domain, %(person_id)s,
           batch_id, play_name, step_number, %(status)s, %(error)s, %(result_table)s
    FROM target
    RETURNING id
), completed AS (
    INSERT INTO company_play_step_completions (company_id, play_name, step_number, workflow_slug)
    SELECT company_id, play_name, step_number, %(workflow_slug)s FROM target
    WHERE %(verified)s AND company_id IS NOT NULL AND play_name IS NOT NULL
      AND step_number IS NOT NULL
    ON CONFLICT (company_id, play_name, step_number) DO NOTHING
    RETURNING id
)
SELECT (SELECT count(*) FROM logged) AS logged, (SELECT count(*) FROM completed) AS completed;

-- name: play_step_workflow
SELECT w.* FROM play_steps p
JOIN db_driven_enrichment_workflows w ON w.workflow_slug = p.workflow_slug
WHERE p.play_name = %(play_name)s AND p.step_number = %(step_number)s;

-- name: batch_company_ids
SELECT array_agg(id ORDER BY id) AS ids FROM normalized_companies WHERE batch_id = %(batch_id)s;

-- name: completions_by_workflow
SELECT c.id, c.company_id, c.play_name, c.step_number, c.workflow_slug
FROM company_play_step_completions c
ORDER BY c.workflow_slug, c.company_id;

-- name: delete_completions
DELETE FROM company_play_step_completions WHERE id = ANY(%(ids)s::uuid[]);

-- name: reset_entities_for_rerun
-- A forced manual re-run: finished entities of the workflow go back to PENDING to be claimed.
-- Attempts keep counting (attempt numbers name dispatches); the run's budget starts here.
UPDATE company_workflow_states
SET status = 'PENDING', lease_expires_at = NULL, updated_at = NOW(),
    meta = COALESCE(meta, '{}'::jsonb) || jsonb_build_object('retry_base', attempts)
WHERE company_id = ANY(%(company_ids)s::uuid[]) AND workflow_slug = %(workflow_slug)s
  AND status IN ('COMPLETED', 'FAILED');

-- name: company_step_states
SELECT c.id AS company_id, c.domain, s.status, s.meta->>'error' AS error
FROM normalized_companies c
LEFT JOIN company_workflow_states s ON s.company_id = c.id AND s.workflow_slug = %(workflow_slug)s
WHERE c.id = ANY(%(company_ids)s::uuid[])
ORDER BY c.domain;
