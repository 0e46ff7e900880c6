-- Verification of one batch and one entity workflow; templates over the entity kind.

-- name: verify_entity_states
-- Seed check "company workflow states (all COMPLETED)": one state per entity, none unfinished.
SELECT s.status, count(*) AS n
FROM {state_table} s JOIN {entity_table} e ON e.id = s.{id_column}
WHERE e.batch_id = %(batch_id)s AND s.workflow_slug = %(workflow_slug)s
GROUP BY s.status ORDER BY s.status;

-- name: verify_entities_at_step
-- Entities whose items reached the step: each must have exactly one state row.
SELECT count(DISTINCT bi.{id_column}) AS entities
FROM workflow_states ws JOIN batch_items bi ON bi.id = ws.item_id
WHERE ws.batch_id = %(batch_id)s AND ws.step_name = %(workflow_slug)s;

-- name: verify_entity_results
-- Seed check "enrichment results": every COMPLETED entity has its stored result, its own or the
-- one of its client's earlier batch it reuses.
SELECT count(*) FILTER (WHERE s.status = 'COMPLETED') AS completed,
       count(*) FILTER (WHERE s.status = 'COMPLETED' AND NOT EXISTS (
           SELECT 1 FROM {results_view} r
           WHERE r.{id_column} = s.{id_column} AND r.workflow_slug = s.workflow_slug
       )) AS completed_without_result,
       count(*) FILTER (WHERE s.status = 'COMPLETED' AND s.reused_result_id IS NOT NULL)
           AS reused,
       (SELECT count(*) FROM {results_view} r JOIN {entity_table} e2 ON e2.id = r.{id_column}
         WHERE e2.batch_id = %(batch_id)s AND r.workflow_slug = %(workflow_slug)s) AS results
FROM {state_table} s JOIN {entity_table} e ON e.id = s.{id_column}
WHERE e.batch_id = %(batch_id)s AND s.workflow_slug = %(workflow_slug)s;

-- name: verify_item_states
-- Seed check "batch_item workflow states": every item finished the step.
SELECT step_name, status, count(*) AS n FROM workflow_states
WHERE batch_id = %(batch_id)s AND step_name = %(workflow_slug)s
GROUP BY step_name, status ORDER BY status;

-- name: verify_skips
-- Seed check "skip behavior": reasons items did not call the provider themselves.
SELECT meta->>'skipped' AS skip_reason, count(*) AS n FROM workflow_states
WHERE batch_id = %(batch_id)s AND step_name = %(workflow_slug)s
GROUP BY meta->>'skipped' ORDER BY 1 NULLS FIRST;

-- name: verify_items_without_data
-- Integrity: an item COMPLETED at the step while its entity has no stored result.
SELECT count(*) AS n
FROM workflow_states ws JOIN batch_items bi ON bi.id = ws.item_id
WHERE ws.batch_id = %(batch_id)s AND ws.step_name = %(workflow_slug)s AND ws.status = 'COMPLETED'
  AND NOT EXISTS (SELECT 1 FROM {results_view} r
                  WHERE r.{id_column} = bi.{id_column} AND r.workflow_slug = ws.step_name);

-- name: verify_completions_without_data
-- Integrity (source-of-truth rule): a step completion without destination data is an orphan.
SELECT count(*) AS n
FROM company_play_step_completions c JOIN normalized_companies e ON e.id = c.company_id
WHERE e.batch_id = %(batch_id)s AND c.workflow_slug = %(workflow_slug)s
  AND NOT EXISTS (SELECT 1 FROM company_results r
                  WHERE r.company_id = c.company_id AND r.workflow_slug = c.workflow_slug);

-- name: verify_calls
-- Provider calls made for the step's entities of this batch.
SELECT count(*) AS n FROM entity_dispatches
WHERE batch_id = %(batch_id)s AND workflow_slug = %(workflow_slug)s
  AND status IN ('SENT', 'STORED', 'CALLED_BACK');

-- name: verify_unexplained_items
-- Items COMPLETED at the step that neither made a provider call nor say why they did not.
SELECT count(*) AS n FROM workflow_states ws
WHERE ws.batch_id = %(batch_id)s AND ws.step_name = %(workflow_slug)s
  AND ws.status = 'COMPLETED' AND NOT ws.meta ? 'skipped'
  AND NOT EXISTS (SELECT 1 FROM entity_dispatches d
                  WHERE d.sender_item_id = ws.item_id AND d.workflow_slug = ws.step_name);
