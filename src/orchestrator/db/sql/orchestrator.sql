-- name: advance_completed_items
-- Flags as advanced every COMPLETED row of the batch that is not yet: the trigger
-- workflow_states_create_next_steps then creates each one's next step in this statement. Steps
-- that complete set the flag themselves, so this finds only rows completed some other way.
-- Rows locked by someone else are left for the next pass, so a pass never waits and never
-- deadlocks; the lock makes concurrent passes advance each row once.
WITH ready AS (
    SELECT id FROM workflow_states
    WHERE batch_id = %(batch_id)s AND status = 'COMPLETED' AND NOT advanced
    FOR UPDATE SKIP LOCKED
)
UPDATE workflow_states ws
SET advanced = TRUE
-- By their ids (an array), never by a join: see claim_pending_steps. `ready` checked NOT
-- advanced as it locked each row, and holds the lock.
WHERE ws.id = ANY(ARRAY(SELECT id FROM ready));

-- name: claim_pending_steps
-- Claims PENDING item-steps for dispatch. SKIP LOCKED, with the status re-checked as each row
-- is locked, makes concurrent passes split the work: an item-step is claimed by exactly one.
-- Each item's company comes back too (its id, or before split its normalized domain), so a
-- chunk can hold whole companies (see tick._claim).
WITH steps AS (
    SELECT * FROM unnest(%(slugs)s::text[], %(timeouts)s::int[]) AS s(slug, timeout_seconds)
), picked AS (
    SELECT id FROM workflow_states
    WHERE batch_id = %(batch_id)s AND status = 'PENDING'
      -- A workflow on hold (its webhooks are spent) sends nothing: its item-steps wait.
      AND NOT EXISTS (SELECT 1 FROM provider_holds h WHERE h.workflow_slug = step_name)
      -- Nor does a batch at its credit cap: its paid steps wait.
      AND NOT (step_name = ANY(%(paid_slugs)s::text[])
               AND EXISTS (SELECT 1 FROM budget_holds bh WHERE bh.batch_id = %(batch_id)s))
    ORDER BY step_number, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
-- The picked rows are found by their ids alone (a primary-key probe each). Statistics lag a
-- fast-moving batch: a planner that believed one row was PENDING joined the picked rows to a
-- scan of every PENDING row, 100,000 x 100,000 comparisons and minutes for one pass, and any
-- status condition here lets it choose that scan again. None is needed: `picked` re-checked
-- the status as it locked each row, and the lock holds until this statement commits.
UPDATE workflow_states ws
SET status = 'IN_PROGRESS',
    attempts = ws.attempts + 1,
    claimed_by = %(runner_id)s,
    started_at = NOW(),
    updated_at = NOW(),
    lease_expires_at = NOW() + make_interval(secs => steps.timeout_seconds)
FROM steps
WHERE ws.id = ANY(ARRAY(SELECT id FROM picked)) AND steps.slug = ws.step_name
RETURNING ws.item_id, ws.step_name,
          (SELECT COALESCE(bi.company_id::text, bi.normalized->>'company_domain')
           FROM batch_items bi WHERE bi.id = ws.item_id) AS company_key;

-- name: batch_progress
-- Per step and status counts, plus completed rows not yet advanced. A step number names one
-- step in a batch, so its name is taken, not grouped by: grouping by the text too made the
-- planner sort every row of the batch (spilling to disk at 100,000 items, 0.2 s a read, four
-- reads a second while `enrich run` shows progress) instead of counting into a hash table.
SELECT step_number, min(step_name) AS step_name, status, count(*) AS items,
       count(*) FILTER (WHERE status = 'COMPLETED' AND NOT advanced) AS unadvanced
FROM workflow_states
WHERE batch_id = %(batch_id)s
GROUP BY step_number, status
ORDER BY step_number, status;

-- name: finish_batch
UPDATE upload_batches
SET status = 'COMPLETED', finished_at = NOW(), updated_at = NOW()
WHERE id = %(batch_id)s AND status = 'RUNNING';

-- name: reopen_batch
-- A batch held for launch stays held: only launching it starts it.
UPDATE upload_batches
SET status = 'RUNNING', finished_at = NULL, updated_at = NOW()
WHERE id = %(batch_id)s AND status NOT IN ('RUNNING', 'HELD');

-- name: launch_batch
UPDATE upload_batches
SET status = 'RUNNING', updated_at = NOW(),
    reuse_results = COALESCE(%(reuse)s, reuse_results)
WHERE id = %(batch_id)s AND status = 'HELD'
RETURNING id;

-- name: batch_play
-- The batch's play and status, and whether its credit cap holds its paid steps.
SELECT b.play_name, b.status,
       EXISTS (SELECT 1 FROM budget_holds h WHERE h.batch_id = b.id) AS budget_held
FROM upload_batches b WHERE b.id = %(batch_id)s;

-- name: complete_item_steps
-- `advanced`: the trigger creates each item's next step in this statement.
UPDATE workflow_states
SET status = 'COMPLETED', advanced = TRUE, finished_at = NOW(), updated_at = NOW(),
    lease_expires_at = NULL, meta = meta || %(meta)s::jsonb
WHERE item_id = ANY(%(item_ids)s::uuid[]) AND step_name = %(step)s AND status = 'IN_PROGRESS';

-- name: release_failed_item_steps
-- A step function raised: retry the items on a later pass while attempts remain, else FAIL.
UPDATE workflow_states ws
SET status = CASE WHEN ws.attempts < %(max_attempts)s THEN 'PENDING' ELSE 'FAILED' END,
    finished_at = CASE WHEN ws.attempts < %(max_attempts)s THEN NULL ELSE NOW() END,
    lease_expires_at = NULL,
    updated_at = NOW(),
    meta = ws.meta || jsonb_build_object('error', %(error)s::text, 'attempt', ws.attempts)
WHERE ws.item_id = ANY(%(item_ids)s::uuid[]) AND ws.step_name = %(step)s
  AND ws.status = 'IN_PROGRESS';

-- name: batch_has_work
-- Whether anything of the batch waits, runs, or completed without moving on; answered from
-- indexes (each EXISTS stops at its first row), so a pass need not count the whole batch.
SELECT EXISTS (
    SELECT 1 FROM workflow_states WHERE batch_id = %(batch_id)s AND status = 'PENDING'
) OR EXISTS (
    SELECT 1 FROM workflow_states WHERE batch_id = %(batch_id)s AND status = 'IN_PROGRESS'
) OR EXISTS (
    SELECT 1 FROM workflow_states
    WHERE batch_id = %(batch_id)s AND status = 'COMPLETED' AND NOT advanced
) AS has_work;
