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
-- Every item that completed with another item's enrichment saved one call's credits; one
-- that failed with the entity it waited on saved nothing.
SELECT COALESCE(sum(w.credits_per_call), 0) AS saved, count(*) AS reused
FROM workflow_states ws
JOIN db_driven_enrichment_workflows w ON w.workflow_slug = ws.step_name
WHERE ws.batch_id = %(batch_id)s AND ws.status = 'COMPLETED' AND ws.meta ? 'skipped';

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
         WHERE batch_id = b.id) AS credits
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
