-- name: sweep_expired_entities
-- Entities whose provider call outlived its lease: retry (back to PENDING, to be claimed and sent
-- again with a new dispatch and token) while attempts remain, else FAIL with the reason.
-- Rows someone holds right now are left for the next sweep.
WITH expired AS (
    SELECT id FROM {state_table}
    WHERE status = 'IN_PROGRESS' AND lease_expires_at < NOW()
    ORDER BY id FOR UPDATE SKIP LOCKED
)
UPDATE {state_table} s
SET status = CASE WHEN s.attempts < w.max_attempts THEN 'PENDING' ELSE 'FAILED' END,
    lease_expires_at = NULL,
    updated_at = NOW(),
    meta = COALESCE(s.meta, '{{}}'::jsonb) || jsonb_build_object(
        'error', format('no result within %%s s (attempt %%s of %%s)',
                        w.timeout_seconds, s.attempts, w.max_attempts),
        'expired_dispatch_id', s.dispatch_id)
FROM db_driven_enrichment_workflows w
-- By id alone: `expired` checked the status as it locked each row (see claim_pending_steps).
WHERE s.id = ANY(ARRAY(SELECT id FROM expired)) AND w.workflow_slug = s.workflow_slug
RETURNING s.{id_column} AS entity_id, s.workflow_slug, s.status;

-- name: sweep_entity_items
-- Item-steps of entity workflows follow their entity: COMPLETED/FAILED when it is, back to
-- PENDING (to be dispatched again) when it is PENDING again or was never claimed.
WITH stale AS (
    SELECT ws.id, s.status AS entity_status, s.meta AS entity_meta
    FROM workflow_states ws
    JOIN db_driven_enrichment_workflows w
      ON w.workflow_slug = ws.step_name AND w.entity_type = %(entity_type)s
    JOIN batch_items bi ON bi.id = ws.item_id
    LEFT JOIN {state_table} s
      ON s.{id_column} = bi.{id_column} AND s.workflow_slug = ws.step_name
    WHERE ws.status = 'IN_PROGRESS'
      AND (s.status IS NULL OR s.status <> 'IN_PROGRESS')
      AND (ws.lease_expires_at < NOW() OR s.status IN ('PENDING', 'COMPLETED', 'FAILED'))
      AND (s.status IS DISTINCT FROM 'COMPLETED' OR EXISTS (
          SELECT 1 FROM {result_table} r
          WHERE r.{id_column} = bi.{id_column} AND r.workflow_slug = ws.step_name))
    ORDER BY ws.id
    FOR UPDATE OF ws SKIP LOCKED
)
UPDATE workflow_states ws
SET status = CASE stale.entity_status WHEN 'COMPLETED' THEN 'COMPLETED'
                                      WHEN 'FAILED' THEN 'FAILED' ELSE 'PENDING' END,
    finished_at = CASE WHEN stale.entity_status IN ('COMPLETED', 'FAILED') THEN NOW() END,
    lease_expires_at = NULL,
    updated_at = NOW(),
    meta = ws.meta || CASE
        WHEN stale.entity_status = 'FAILED' THEN jsonb_build_object(
            'reason', %(entity_type)s::text || '_enrichment_failed',
            'error', stale.entity_meta->>'error')
        WHEN stale.entity_status = 'COMPLETED' AND NOT ws.meta ? 'skipped' AND NOT EXISTS (
            SELECT 1 FROM entity_dispatches d
            WHERE d.sender_item_id = ws.item_id AND d.workflow_slug = ws.step_name)
        THEN jsonb_build_object('skipped', %(entity_type)s::text || '_already_enriched')
        ELSE '{{}}'::jsonb END
FROM stale
WHERE ws.id = stale.id
RETURNING ws.batch_id, ws.status;

-- name: sweep_expired_item_steps
-- Item-steps of item workflows (normalize, split, consolidate, ...) that outlived their lease:
-- their worker died. Retry while attempts remain, else FAIL with the reason.
WITH stale AS (
    SELECT ws.id, w.max_attempts, w.timeout_seconds
    FROM workflow_states ws
    JOIN db_driven_enrichment_workflows w
      ON w.workflow_slug = ws.step_name AND w.entity_type = 'item'
    WHERE ws.status = 'IN_PROGRESS' AND ws.lease_expires_at < NOW()
    ORDER BY ws.id
    FOR UPDATE OF ws SKIP LOCKED
)
UPDATE workflow_states ws
SET status = CASE WHEN ws.attempts < stale.max_attempts THEN 'PENDING' ELSE 'FAILED' END,
    finished_at = CASE WHEN ws.attempts < stale.max_attempts THEN NULL ELSE NOW() END,
    lease_expires_at = NULL,
    updated_at = NOW(),
    meta = ws.meta || jsonb_build_object(
        'reason', CASE WHEN ws.attempts < stale.max_attempts THEN NULL ELSE 'lease_expired' END,
        'error', format('step did not finish within %%s s (attempt %%s of %%s)',
                        stale.timeout_seconds, ws.attempts, stale.max_attempts))
FROM stale
WHERE ws.id = stale.id
RETURNING ws.batch_id, ws.status;

-- name: schedule_pass
-- Coalesced pass request: only the first request of a window schedules the pass.
UPDATE upload_batches
SET next_pass_at = NOW() + make_interval(secs => %(window)s)
WHERE id = %(batch_id)s AND (next_pass_at IS NULL OR next_pass_at <= NOW())
RETURNING next_pass_at;

-- name: pass_due_at
SELECT next_pass_at FROM upload_batches WHERE id = %(batch_id)s;

-- name: release_orphaned_item_steps
-- Resume after a crash: item workflows (normalize, split, consolidate...) that the dead process
-- had claimed are idempotent, so they go back to PENDING at once. Entity work is not touched:
-- its provider call may be in flight, and only lease expiry may send it again.
WITH orphans AS (
    SELECT ws.id FROM workflow_states ws
    JOIN db_driven_enrichment_workflows w
      ON w.workflow_slug = ws.step_name AND w.entity_type = 'item'
    WHERE ws.batch_id = %(batch_id)s AND ws.status = 'IN_PROGRESS'
    ORDER BY ws.id
    FOR UPDATE OF ws SKIP LOCKED
)
UPDATE workflow_states ws
SET status = 'PENDING', lease_expires_at = NULL, updated_at = NOW()
FROM orphans WHERE ws.id = orphans.id;

-- name: retry_failed_entities
-- Entities of the batch that FAILED get a fresh set of attempts; COMPLETED ones are kept, so
-- their items complete again without another provider call.
UPDATE {state_table} s
SET status = 'PENDING', attempts = 0, lease_expires_at = NULL, updated_at = NOW(),
    meta = COALESCE(s.meta, '{{}}'::jsonb) || jsonb_build_object('previous_error', s.meta->>'error')
FROM {entity_table} e
WHERE e.id = s.{id_column} AND e.batch_id = %(batch_id)s AND s.status = 'FAILED';

-- name: retry_failed_item_steps
UPDATE workflow_states
SET status = 'PENDING', attempts = 0, finished_at = NULL, lease_expires_at = NULL,
    updated_at = NOW(),
    meta = (meta - 'reason' - 'error' - 'skipped')
           || jsonb_build_object('previous_failure', COALESCE(meta->>'reason', meta->>'error'))
WHERE batch_id = %(batch_id)s AND status = 'FAILED';
