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
SET status = CASE WHEN s.attempts - COALESCE((s.meta->>'retry_base')::int, 0) < w.max_attempts
                  THEN 'PENDING' ELSE 'FAILED' END,
    lease_expires_at = NULL,
    updated_at = NOW(),
    meta = COALESCE(s.meta, '{{}}'::jsonb) || jsonb_build_object(
        'error', format('no result within %%s s (attempt %%s of %%s)',
                        w.timeout_seconds, s.attempts, w.max_attempts),
        'expired_dispatch_id', s.dispatch_id)
FROM db_driven_enrichment_workflows w
-- By id alone: `expired` checked the status as it locked each row (see claim_pending_steps).
WHERE s.id = ANY(ARRAY(SELECT id FROM expired)) AND w.workflow_slug = s.workflow_slug
RETURNING s.{id_column} AS entity_id, s.workflow_slug, s.status, s.dispatch_id;

-- name: end_expired_dispatches
-- The calls of entities whose lease expired end too (SUPERSEDED: a later attempt replaces them;
-- FAILED: none will); a callback that still comes is kept as before. SKIP LOCKED: a dispatch a
-- pass is completing right now is left to it, and the sweeper never waits on a pass's lock.
WITH ended AS (
    SELECT * FROM unnest(%(ids)s::uuid[], %(statuses)s::text[]) AS e(id, entity_status)
), locked AS (
    SELECT d.id FROM entity_dispatches d JOIN ended ON ended.id = d.id
    WHERE d.status IN ('SENDING', 'SENT')
    ORDER BY d.id FOR UPDATE OF d SKIP LOCKED
)
UPDATE entity_dispatches d
SET status = CASE WHEN ended.entity_status = 'FAILED' THEN 'FAILED' ELSE 'SUPERSEDED' END,
    error = COALESCE(d.error, 'no result within its lease')
FROM ended
WHERE d.id = ended.id AND d.id = ANY(ARRAY(SELECT id FROM locked));

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
      AND (%(batch_id)s::uuid IS NULL OR ws.batch_id = %(batch_id)s::uuid)
      AND (s.status IS NULL OR s.status <> 'IN_PROGRESS')
      AND (ws.lease_expires_at < NOW() OR s.status IN ('PENDING', 'COMPLETED', 'FAILED')
           -- Claimed by a runner that is gone: nothing is in flight for it.
           OR (ws.claimed_by IS NOT NULL AND NOT ws.claimed_by = ANY(%(live)s::uuid[])))
      AND (s.status IS DISTINCT FROM 'COMPLETED' OR EXISTS (
          SELECT 1 FROM {results_view} r
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
        THEN CASE WHEN stale.entity_meta ? 'reused_from'
                  THEN jsonb_build_object('skipped', %(entity_type)s::text || '_result_reused',
                                          'reused_from', stale.entity_meta->'reused_from')
                  ELSE jsonb_build_object('skipped', %(entity_type)s::text || '_already_enriched')
             END
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
    WHERE ws.status = 'IN_PROGRESS'
      AND (ws.lease_expires_at < NOW()
           OR (ws.claimed_by IS NOT NULL AND NOT ws.claimed_by = ANY(%(live)s::uuid[])))
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
-- Resume after a crash: item workflows (normalize, split, consolidate...) that no live runner
-- holds are idempotent, so they go back to PENDING at once.
WITH orphans AS (
    SELECT ws.id FROM workflow_states ws
    JOIN db_driven_enrichment_workflows w
      ON w.workflow_slug = ws.step_name AND w.entity_type = 'item'
    WHERE ws.batch_id = %(batch_id)s AND ws.status = 'IN_PROGRESS'
      AND (ws.claimed_by IS NULL OR NOT ws.claimed_by = ANY(%(live)s::uuid[]))
    ORDER BY ws.id
    FOR UPDATE OF ws SKIP LOCKED
)
UPDATE workflow_states ws
SET status = 'PENDING', lease_expires_at = NULL, claimed_by = NULL, updated_at = NOW()
FROM orphans WHERE ws.id = orphans.id;

-- name: resend_unanswerable
-- Calls that can never be answered are superseded and their entities sent again at once:
-- those a dead runner never saw accepted (SENDING), those its own simulator accepted (it died
-- with them), and, when asked (`resend_now`), those a real provider accepted. Dispatch rows
-- before entity rows, the order in which passes lock them.
WITH gone AS (
    UPDATE entity_dispatches d SET status = 'SUPERSEDED'
    WHERE d.entity_type = %(entity_type)s
      AND (%(batch_id)s::uuid IS NULL OR d.batch_id = %(batch_id)s::uuid)
      AND d.runner_id IS NOT NULL AND NOT d.runner_id = ANY(%(live)s::uuid[])
      AND (d.status = 'SENDING' OR (d.status = 'SENT' AND (d.simulated OR %(resend_now)s)))
    RETURNING d.id, d.entity_id, d.workflow_slug
)
UPDATE {state_table} s
SET status = 'PENDING', lease_expires_at = NULL, updated_at = NOW(),
    meta = COALESCE(s.meta, '{{}}'::jsonb) || jsonb_build_object('superseded_dispatch_id', gone.id)
FROM gone
WHERE s.{id_column} = gone.entity_id AND s.workflow_slug = gone.workflow_slug
  AND s.dispatch_id = gone.id AND s.status = 'IN_PROGRESS'
RETURNING s.{id_column} AS entity_id;

-- name: provider_waits
-- What the batch still waits for from a real provider whose caller is gone: each call's
-- entity lease, and the most sending them again now could cost.
SELECT count(*) AS calls, min(s.lease_expires_at) AS earliest, max(s.lease_expires_at) AS latest,
       COALESCE(sum(workflow_call_ceiling(w)), 0) AS credits
FROM entity_dispatches d
JOIN {state_table} s ON s.{id_column} = d.entity_id AND s.workflow_slug = d.workflow_slug
                    AND s.dispatch_id = d.id AND s.status = 'IN_PROGRESS'
JOIN db_driven_enrichment_workflows w ON w.workflow_slug = d.workflow_slug
WHERE d.batch_id = %(batch_id)s AND d.entity_type = %(entity_type)s AND d.status = 'SENT'
  AND NOT d.simulated
  AND (d.runner_id IS NULL OR NOT d.runner_id = ANY(%(live)s::uuid[]));

-- name: retry_failed_entities
-- Entities of the batch that FAILED get a fresh set of attempts; COMPLETED ones are kept, so
-- their items complete again without another provider call.
-- Attempts keep counting (each names its dispatch: attempt numbers never repeat); the retry
-- starts a fresh budget from `retry_base`, which the sweeper's attempt limit counts from.
UPDATE {state_table} s
SET status = 'PENDING', lease_expires_at = NULL, updated_at = NOW(),
    meta = COALESCE(s.meta, '{{}}'::jsonb)
           || jsonb_build_object('previous_error', s.meta->>'error', 'retry_base', s.attempts)
FROM {entity_table} e
WHERE e.id = s.{id_column} AND e.batch_id = %(batch_id)s AND s.status = 'FAILED';

-- name: retry_failed_item_steps
UPDATE workflow_states
SET status = 'PENDING', attempts = 0, finished_at = NULL, lease_expires_at = NULL,
    updated_at = NOW(),
    meta = (meta - 'reason' - 'error' - 'skipped')
           || jsonb_build_object('previous_failure', COALESCE(meta->>'reason', meta->>'error'))
WHERE batch_id = %(batch_id)s AND status = 'FAILED';
