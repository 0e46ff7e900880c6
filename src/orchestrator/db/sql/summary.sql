-- name: batch_failure_reasons
SELECT step_name,
       COALESCE(meta->>'reason', meta->>'error', 'unknown') AS reason,
       count(*) AS items
FROM workflow_states
WHERE batch_id = %(batch_id)s AND status = 'FAILED'
GROUP BY 1, 2
ORDER BY 3 DESC, 1, 2
LIMIT 5;

-- name: batch_provider_usage
-- Calls a provider accepted for this batch, and the credits they cost.
SELECT provider, entity_type,
       count(*) FILTER (WHERE status IN ('SENT', 'STORED', 'CALLED_BACK')) AS calls,
       COALESCE(sum(credits), 0) AS credits
FROM entity_dispatches
WHERE batch_id = %(batch_id)s
GROUP BY provider, entity_type;

-- name: batch_credits_saved
-- Dedupe saved what the items of an entity workflow did not each pay: items that completed the
-- step, less the entities a provider accepted a call for. Counted from outcomes, not from
-- which item sent, so a batch recovered after a crash (re-sent by another item) counts right.
-- For each of `batch_ids` that reused anything (a batch without a row saved nothing).
WITH completed AS (
    SELECT ws.batch_id, ws.step_name, count(*) AS items
    FROM workflow_states ws
    JOIN db_driven_enrichment_workflows w
      ON w.workflow_slug = ws.step_name AND w.entity_type IN ('company', 'person')
    WHERE ws.batch_id = ANY(%(batch_ids)s::uuid[]) AND ws.status = 'COMPLETED'
    GROUP BY ws.batch_id, ws.step_name
), called AS (
    SELECT batch_id, workflow_slug, count(DISTINCT entity_id) AS entities
    FROM entity_dispatches
    WHERE batch_id = ANY(%(batch_ids)s::uuid[]) AND sent_at IS NOT NULL
    GROUP BY batch_id, workflow_slug
), reused AS (
    SELECT c.batch_id, c.step_name, GREATEST(c.items - COALESCE(d.entities, 0), 0) AS items
    FROM completed c
    LEFT JOIN called d ON d.batch_id = c.batch_id AND d.workflow_slug = c.step_name
)
SELECT r.batch_id, sum(r.items * w.credits_per_call) AS saved, sum(r.items) AS reused
FROM reused r JOIN db_driven_enrichment_workflows w ON w.workflow_slug = r.step_name
GROUP BY r.batch_id;

-- name: batches_by_prefix
-- Batches whose id starts with the given text; two rows are enough to call it ambiguous.
SELECT id FROM upload_batches
WHERE id::text LIKE %(prefix)s || '%%'
ORDER BY created_at DESC
LIMIT 3;

-- name: batch_overview
-- One batch (`batch_id`), or the newest ones (`batch_id` NULL): counts, progress and spend.
-- "done" counts items that finished the play's last step.
SELECT b.id, b.client_name, b.file_name, b.status, b.created_at,
       (SELECT count(*) FROM batch_items WHERE batch_id = b.id) AS items,
       (SELECT count(*) FROM normalized_companies WHERE batch_id = b.id) AS companies,
       (SELECT count(*) FROM normalized_people WHERE batch_id = b.id) AS people,
       (SELECT count(*) FROM workflow_states ws
         WHERE ws.batch_id = b.id AND ws.status = 'COMPLETED'
           AND ws.step_number = (SELECT max(step_number) FROM play_steps
                                 WHERE play_name = b.play_name)) AS done,
       (SELECT count(DISTINCT item_id) FROM workflow_states
         WHERE batch_id = b.id AND status = 'FAILED') AS failed,
       (SELECT COALESCE(sum(credits), 0) FROM entity_dispatches
         WHERE batch_id = b.id) AS credits,
       -- Entities waiting on a provider: their current call is being sent, or was accepted
       -- and not answered yet.
       (SELECT count(*) FROM entity_dispatches d
         WHERE d.batch_id = b.id AND d.status IN ('SENDING', 'SENT')
           -- Not those a gone process's own simulator took: nobody will ever answer them.
           AND NOT (d.simulated AND NOT COALESCE(d.runner_id = ANY(%(live)s::uuid[]), FALSE))
           AND (EXISTS (SELECT 1 FROM company_workflow_states s
                        WHERE d.entity_type = 'company' AND s.company_id = d.entity_id
                          AND s.workflow_slug = d.workflow_slug AND s.dispatch_id = d.id
                          AND s.status = 'IN_PROGRESS')
                OR EXISTS (SELECT 1 FROM person_workflow_states s
                           WHERE d.entity_type = 'person' AND s.person_id = d.entity_id
                             AND s.workflow_slug = d.workflow_slug AND s.dispatch_id = d.id
                             AND s.status = 'IN_PROGRESS'))) AS waiting,
       -- Is anyone working on it: item-steps held by a live runner (or by the cloud, which
       -- does not register), and did anything ever start.
       EXISTS (SELECT 1 FROM workflow_states ws
               WHERE ws.batch_id = b.id AND ws.status = 'IN_PROGRESS'
                 AND (ws.claimed_by IS NULL OR ws.claimed_by = ANY(%(live)s::uuid[])))
           AS active,
       EXISTS (SELECT 1 FROM workflow_states ws
               WHERE ws.batch_id = b.id AND ws.started_at IS NOT NULL) AS started
FROM upload_batches b
WHERE %(batch_id)s::uuid IS NULL OR b.id = %(batch_id)s
ORDER BY b.created_at DESC
LIMIT %(limit)s;

-- name: first_provider_error
-- The first provider call of the batch that failed, as the provider (or the network) said it.
SELECT provider, workflow_slug, http_status, error
FROM entity_dispatches
WHERE batch_id = %(batch_id)s AND status = 'FAILED' AND error IS NOT NULL
ORDER BY created_at, id
LIMIT 1;

-- name: callbacks_stored_since
-- Results of the batch's calls stored at or after a moment (read from the server's clock).
SELECT count(*) AS stored FROM entity_dispatches
WHERE batch_id = %(batch_id)s AND callback_at >= %(since)s;

-- name: database_now
SELECT NOW() AS now;
