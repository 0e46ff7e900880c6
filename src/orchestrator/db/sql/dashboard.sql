-- name: batch_funnel
-- Every step of the batch's play, in order, with its item-steps by status. Items that have not
-- reached a step yet have no row for it: the page counts them as not started.
SELECT p.step_number, p.workflow_slug AS step_name, w.title, w.provider, w.entity_type,
       count(ws.id) FILTER (WHERE ws.status = 'PENDING') AS pending,
       count(ws.id) FILTER (WHERE ws.status = 'IN_PROGRESS') AS in_flight,
       count(ws.id) FILTER (WHERE ws.status = 'COMPLETED') AS done,
       count(ws.id) FILTER (WHERE ws.status = 'FAILED') AS failed
FROM upload_batches b
JOIN play_steps p ON p.play_name = b.play_name
JOIN db_driven_enrichment_workflows w ON w.workflow_slug = p.workflow_slug
LEFT JOIN workflow_states ws ON ws.batch_id = b.id AND ws.step_name = p.workflow_slug
WHERE b.id = %(batch_id)s
GROUP BY p.step_number, p.workflow_slug, w.title, w.provider, w.entity_type
ORDER BY p.step_number;

-- name: batch_waiting_entities
-- Entities of this batch waiting on a provider: their current call is being sent, or was
-- accepted and not answered yet; with the entity's lease (when the sweeper stops waiting and
-- retries). An answered call (stored, or an error that failed the entity) waits no more.
WITH waiting AS (
    SELECT d.entity_type, d.entity_id, d.workflow_slug, d.status, d.attempt, d.id,
           -- A built-in simulator dies with its process: its calls can never be answered.
           (d.simulated AND NOT COALESCE(d.runner_id = ANY(%(live)s::uuid[]), FALSE))
               AS unanswerable,
           COALESCE(d.sent_at, d.created_at) AS since,
           COALESCE(cs.lease_expires_at, ps.lease_expires_at) AS lease_expires_at,
           COALESCE(c.domain, p.full_name, '') AS label
    FROM entity_dispatches d
    LEFT JOIN company_workflow_states cs
           ON d.entity_type = 'company' AND cs.company_id = d.entity_id
          AND cs.workflow_slug = d.workflow_slug
    LEFT JOIN person_workflow_states ps
           ON d.entity_type = 'person' AND ps.person_id = d.entity_id
          AND ps.workflow_slug = d.workflow_slug
    LEFT JOIN normalized_companies c ON d.entity_type = 'company' AND c.id = d.entity_id
    LEFT JOIN normalized_people p ON d.entity_type = 'person' AND p.id = d.entity_id
    WHERE d.batch_id = %(batch_id)s AND d.status IN ('SENDING', 'SENT')
      AND COALESCE(cs.dispatch_id, ps.dispatch_id) = d.id
      AND COALESCE(cs.status, ps.status) = 'IN_PROGRESS'
)
SELECT w.*, NOW() AS now
FROM waiting w
ORDER BY since, id
LIMIT %(limit)s;

-- name: batch_failure_groups
-- Failed item-steps grouped by step and reason, with a few of their rows to show.
WITH failed AS (
    SELECT ws.step_number, ws.step_name, COALESCE(ws.meta->>'reason', 'error') AS reason,
           ws.meta->>'error' AS error, ws.meta->>'detail' AS detail, bi.row_number,
           bi.first_name, bi.last_name, bi.company_name, bi.website, bi.email,
           row_number() OVER (PARTITION BY ws.step_name, COALESCE(ws.meta->>'reason', 'error')
                              ORDER BY bi.row_number) AS nth,
           count(*) OVER (PARTITION BY ws.step_name, COALESCE(ws.meta->>'reason', 'error'))
               AS items
    FROM workflow_states ws JOIN batch_items bi ON bi.id = ws.item_id
    WHERE ws.batch_id = %(batch_id)s AND ws.status = 'FAILED'
)
SELECT f.*, w.provider FROM failed f
LEFT JOIN db_driven_enrichment_workflows w ON w.workflow_slug = f.step_name
WHERE nth <= %(samples)s
ORDER BY items DESC, step_number, reason, nth;

-- name: retry_failure_group_entities
-- The failed entities behind one failure group get a fresh set of attempts (see
-- retry_failed_entities); entities of other groups are left as they are.
UPDATE {state_table} s
SET status = 'PENDING', lease_expires_at = NULL, updated_at = NOW(),
    meta = COALESCE(s.meta, '{{}}'::jsonb)
           || jsonb_build_object('previous_error', s.meta->>'error', 'retry_base', s.attempts)
FROM workflow_states ws JOIN batch_items bi ON bi.id = ws.item_id
WHERE ws.batch_id = %(batch_id)s AND ws.status = 'FAILED' AND ws.step_name = %(step_name)s
  AND COALESCE(ws.meta->>'reason', 'error') = %(reason)s
  AND s.{id_column} = bi.{id_column} AND s.workflow_slug = ws.step_name
  AND s.status = 'FAILED';

-- name: retry_failure_group_items
UPDATE workflow_states
SET status = 'PENDING', attempts = 0, finished_at = NULL, lease_expires_at = NULL,
    updated_at = NOW(),
    meta = (meta - 'reason' - 'error' - 'skipped')
           || jsonb_build_object('previous_failure', COALESCE(meta->>'reason', meta->>'error'))
WHERE batch_id = %(batch_id)s AND status = 'FAILED' AND step_name = %(step_name)s
  AND COALESCE(meta->>'reason', 'error') = %(reason)s;

-- name: recent_dead_letters
-- Callbacks refused lately (they carry no batch: a refused callback may name none).
SELECT id, received_at, workflow_slug, http_status, reason, left(body, 300) AS body
FROM receiver_dead_letters
ORDER BY id DESC
LIMIT %(limit)s;

-- name: webhook_usage
-- Every Clay webhook's lifetime submissions, and how many of them this batch made.
SELECT c.webhook_key, c.webhook_host, c.submissions, c.updated_at,
       (SELECT count(*) FROM entity_dispatches d
         WHERE d.batch_id = %(batch_id)s AND d.webhook_key = c.webhook_key) AS batch_rows
FROM webhook_submission_counts c
ORDER BY c.submissions DESC, c.webhook_key;

-- name: queue_steps
-- A play's steps; for each company step, how many companies are ready for it: they completed
-- the play's previous company step (or there is none) and not this one. The source of truth is
-- company_play_step_completions alone.
WITH steps AS (
    SELECT p.step_number, p.workflow_slug, w.title, w.provider, w.entity_type,
           workflow_call_ceiling(w) AS call_ceiling,
           (SELECT max(q.step_number) FROM play_steps q
              JOIN db_driven_enrichment_workflows qw ON qw.workflow_slug = q.workflow_slug
             WHERE q.play_name = p.play_name AND q.step_number < p.step_number
               AND qw.entity_type = 'company') AS previous_step
    FROM play_steps p
    JOIN db_driven_enrichment_workflows w ON w.workflow_slug = p.workflow_slug
    WHERE p.play_name = %(play_name)s
)
SELECT s.*,
       CASE WHEN s.entity_type <> 'company' THEN NULL ELSE (
           SELECT count(*) FROM normalized_companies c
           WHERE (%(batch_id)s::uuid IS NULL OR c.batch_id = %(batch_id)s)
             AND (s.previous_step IS NULL OR EXISTS (
                    SELECT 1 FROM company_play_step_completions x
                    WHERE x.company_id = c.id AND x.play_name = %(play_name)s
                      AND x.step_number = s.previous_step))
             AND NOT EXISTS (
                    SELECT 1 FROM company_play_step_completions x
                    WHERE x.company_id = c.id AND x.play_name = %(play_name)s
                      AND x.step_number = s.step_number)
       ) END AS ready
FROM steps s
ORDER BY s.step_number;

-- name: queue_companies
-- The companies ready for one step (see queue_steps), with the last step of the play each
-- completed and when anything was last attempted for it (enrichment_results_log).
SELECT c.id, c.domain, c.name, c.batch_id, b.client_name,
       last.step_number AS last_step, last.workflow_slug AS last_workflow,
       last.completed_at AS last_completed_at,
       (SELECT max(l.created_at) FROM enrichment_results_log l WHERE l.company_id = c.id)
           AS last_attempted_at
FROM normalized_companies c
JOIN upload_batches b ON b.id = c.batch_id
LEFT JOIN LATERAL (
    SELECT x.step_number, x.workflow_slug, x.completed_at
    FROM company_play_step_completions x
    WHERE x.company_id = c.id AND x.play_name = %(play_name)s
    ORDER BY x.step_number DESC LIMIT 1
) last ON TRUE
WHERE (%(batch_id)s::uuid IS NULL OR c.batch_id = %(batch_id)s)
  AND (%(search)s::text IS NULL OR c.domain ILIKE %(search)s OR c.name ILIKE %(search)s)
  AND (%(previous_step)s::int IS NULL OR EXISTS (
         SELECT 1 FROM company_play_step_completions x
         WHERE x.company_id = c.id AND x.play_name = %(play_name)s
           AND x.step_number = %(previous_step)s))
  AND NOT EXISTS (
         SELECT 1 FROM company_play_step_completions x
         WHERE x.company_id = c.id AND x.play_name = %(play_name)s
           AND x.step_number = %(step_number)s)
  AND (c.domain, c.id) > (%(after_domain)s, %(after_id)s::uuid)
ORDER BY c.domain, c.id
LIMIT %(limit)s;

-- name: company_pipeline_list
-- Companies with how many of the play's company steps they completed.
SELECT c.id, c.domain, c.name, b.client_name, c.batch_id,
       (SELECT count(*) FROM company_play_step_completions x
         WHERE x.company_id = c.id AND x.play_name = %(play_name)s) AS completed
FROM normalized_companies c
JOIN upload_batches b ON b.id = c.batch_id
WHERE (%(search)s::text IS NULL OR c.domain ILIKE %(search)s OR c.name ILIKE %(search)s)
  AND (c.domain, c.id) > (%(after_domain)s, %(after_id)s::uuid)
ORDER BY c.domain, c.id
LIMIT %(limit)s;

-- name: company_by_id
SELECT c.*, b.client_name, b.play_name AS batch_play, b.file_name
FROM normalized_companies c JOIN upload_batches b ON b.id = c.batch_id
WHERE c.id = %(company_id)s;

-- name: company_play_steps
-- Every company step of every play (only those record completions), with this company's
-- completion of it.
SELECT p.play_name, p.step_number, p.workflow_slug, w.title, w.entity_type,
       w.destination_db, w.destination_table_name,
       x.id AS completion_id, x.completed_at, x.workflow_slug AS completed_by
FROM play_steps p
JOIN db_driven_enrichment_workflows w ON w.workflow_slug = p.workflow_slug
LEFT JOIN company_play_step_completions x
       ON x.company_id = %(company_id)s AND x.play_name = p.play_name
      AND x.step_number = p.step_number
WHERE w.entity_type = 'company'
ORDER BY p.play_name, p.step_number;

-- name: play_names
SELECT play_name, count(*) AS steps FROM play_steps GROUP BY play_name ORDER BY play_name;

-- name: upload_play_names
-- Plays a file can go to: their first step works on the rows (items), not on companies.
SELECT p.play_name FROM play_steps p
JOIN db_driven_enrichment_workflows w ON w.workflow_slug = p.workflow_slug
WHERE p.step_number = (SELECT min(q.step_number) FROM play_steps q WHERE q.play_name = p.play_name)
  AND w.entity_type = 'item'
ORDER BY p.play_name;

-- name: start_dashboard_session
-- Sessions long over are forgotten as new ones start: the table stays the size of a day's.
WITH forgotten AS (
    DELETE FROM dashboard_sessions WHERE expires_at < NOW() - INTERVAL '1 day'
)
INSERT INTO dashboard_sessions (csrf_token, expires_at)
VALUES (%(csrf_token)s, NOW() + make_interval(secs => %(seconds)s))
RETURNING id;

-- name: live_dashboard_session
SELECT csrf_token FROM dashboard_sessions
WHERE id = %(id)s AND ended_at IS NULL AND expires_at > NOW();

-- name: end_dashboard_session
UPDATE dashboard_sessions SET ended_at = NOW() WHERE id = %(id)s AND ended_at IS NULL;

-- name: run_candidates
-- The chosen companies that exist, and whether each already completed the play step (a run
-- without force leaves those alone).
SELECT c.id, c.domain,
       EXISTS (SELECT 1 FROM company_play_step_completions x
               WHERE x.company_id = c.id AND x.play_name = %(play_name)s
                 AND x.step_number = %(step_number)s) AS done
FROM normalized_companies c
WHERE c.id = ANY(%(ids)s::uuid[])
ORDER BY c.domain, c.id;
