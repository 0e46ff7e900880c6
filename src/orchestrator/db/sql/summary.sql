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
-- Calls a provider accepted for this batch.
SELECT provider, entity_type,
       count(*) FILTER (WHERE status IN ('SENT', 'STORED', 'CALLED_BACK')) AS calls
FROM entity_dispatches
WHERE batch_id = %(batch_id)s
GROUP BY provider, entity_type;

-- name: batch_credits
-- For each of `batch_ids`: what the ledger says was spent (Actions and data credits apart) and
-- saved by reuse, and what dedupe saved: every item that completed an entity step beyond the
-- first of its entity saved what that entity's result cost (its Actions and the data credits
-- of the data types it holds). Counted from outcomes, so a batch recovered after a crash
-- counts right.
WITH ledger AS (
    SELECT batch_id,
           sum(actions) FILTER (WHERE entry <> 'reuse') AS actions,
           sum(data_credits) FILTER (WHERE entry <> 'reuse') AS data_credits,
           sum(actions + data_credits) FILTER (WHERE entry = 'reuse') AS saved_by_reuse,
           count(*) FILTER (WHERE entry = 'reuse') AS reused
    FROM credit_ledger
    WHERE batch_id = ANY(%(batch_ids)s::uuid[])
    GROUP BY batch_id
), shared AS (
    SELECT ws.batch_id, ws.step_name, w.entity_type,
           CASE w.entity_type WHEN 'company' THEN bi.company_id ELSE bi.person_id END AS entity_id,
           count(*) - 1 AS extra
    FROM workflow_states ws
    JOIN db_driven_enrichment_workflows w
      ON w.workflow_slug = ws.step_name AND w.entity_type IN ('company', 'person')
    JOIN batch_items bi ON bi.id = ws.item_id
    WHERE ws.batch_id = ANY(%(batch_ids)s::uuid[]) AND ws.status = 'COMPLETED'
    GROUP BY 1, 2, 3, 4
    HAVING count(*) > 1
), dedupe AS (
    SELECT s.batch_id, sum(s.extra) AS items,
           sum(s.extra * (w.actions_per_run + w.callback_actions
                          + data_credits_for(w.data_credits, r.data))) AS saved
    FROM shared s
    JOIN db_driven_enrichment_workflows w ON w.workflow_slug = s.step_name
    LEFT JOIN LATERAL (
        SELECT v.data FROM company_results v
        WHERE s.entity_type = 'company' AND v.company_id = s.entity_id
          AND v.workflow_slug = s.step_name
        UNION ALL
        SELECT v.data FROM person_results v
        WHERE s.entity_type = 'person' AND v.person_id = s.entity_id
          AND v.workflow_slug = s.step_name
        LIMIT 1
    ) r ON TRUE
    GROUP BY s.batch_id
)
SELECT b.id AS batch_id,
       COALESCE(l.actions, 0) AS actions, COALESCE(l.data_credits, 0) AS data_credits,
       COALESCE(l.saved_by_reuse, 0) AS saved_by_reuse, COALESCE(l.reused, 0) AS reused,
       COALESCE(d.saved, 0) AS saved_by_dedupe, COALESCE(d.items, 0) AS deduped_items
FROM unnest(%(batch_ids)s::uuid[]) AS b(id)
LEFT JOIN ledger l ON l.batch_id = b.id
LEFT JOIN dedupe d ON d.batch_id = b.id;

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
       (SELECT COALESCE(sum(actions + data_credits), 0) FROM credit_ledger
         WHERE batch_id = b.id AND entry <> 'reuse') AS credits,
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
