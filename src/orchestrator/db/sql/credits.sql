-- name: credit_cap_locks
-- Whether any cap bounds the batch (most batches have none, and their senders go on at once),
-- and the advisory lock keys of the batch and of its client: senders of one batch, and of one
-- client, take them (always in that order, one statement each) and count one after another.
SELECT b.credit_cap IS NOT NULL OR c.credit_cap IS NOT NULL AS capped,
       hashtextextended('credit cap of batch ' || b.id::text, 0) AS batch_key,
       hashtextextended('credit cap of client ' || b.client_name, 0) AS client_key
FROM upload_batches b
LEFT JOIN client_credit_caps c ON c.client_name = b.client_name
WHERE b.id = %(batch_id)s;

-- name: advisory_lock
-- Held until the transaction ends.
SELECT pg_advisory_xact_lock(%(key)s);

-- name: credit_caps_committed
-- The caps over a batch's sending, its own and its client's, each with what is committed
-- against it: what the ledger charged, plus the most the calls being sent or accepted and not
-- yet answered can still cost. A statement of its own, after the locks: its snapshot
-- is taken once the lock is held, so it sees what the previous holder claimed.
WITH b AS (
    SELECT b.id, b.client_name, b.credit_cap, c.credit_cap AS client_cap
    FROM upload_batches b
    LEFT JOIN client_credit_caps c ON c.client_name = b.client_name
    WHERE b.id = %(batch_id)s
), batches AS (
    SELECT ub.id, ub.id = b.id AS this_batch
    FROM b JOIN upload_batches ub
      ON ub.id = b.id OR (b.client_cap IS NOT NULL AND ub.client_name = b.client_name)
), charged AS (
    SELECT l.batch_id, sum(l.actions + l.data_credits) AS credits
    FROM credit_ledger l JOIN batches ON batches.id = l.batch_id
    WHERE l.entry <> 'reuse'
    GROUP BY l.batch_id
), outstanding AS (
    SELECT d.batch_id,
           sum(workflow_call_ceiling(w) - CASE WHEN d.sent_at IS NULL THEN 0
                                               ELSE w.actions_per_run END) AS credits
    FROM entity_dispatches d
    JOIN batches ON batches.id = d.batch_id
    JOIN db_driven_enrichment_workflows w ON w.workflow_slug = d.workflow_slug
    WHERE d.status IN ('SENDING', 'SENT') AND d.callback_at IS NULL
    GROUP BY d.batch_id
), committed AS (
    SELECT batches.this_batch,
           COALESCE(charged.credits, 0) + COALESCE(outstanding.credits, 0) AS credits
    FROM batches
    LEFT JOIN charged ON charged.batch_id = batches.id
    LEFT JOIN outstanding ON outstanding.batch_id = batches.id
)
SELECT b.client_name, b.credit_cap, b.client_cap,
       COALESCE((SELECT sum(credits) FROM committed WHERE this_batch), 0) AS batch_committed,
       COALESCE((SELECT sum(credits) FROM committed), 0) AS client_committed
FROM b;

-- name: cheapest_waiting_call
-- The least a call of the batch's paid item-steps still waiting can cost, at most: whether the
-- cap has room for any of them.
SELECT min(workflow_call_ceiling(w)) AS price
FROM workflow_states ws
JOIN db_driven_enrichment_workflows w ON w.workflow_slug = ws.step_name
WHERE ws.batch_id = %(batch_id)s AND ws.status = 'PENDING' AND workflow_call_ceiling(w) > 0;

-- name: lift_budget_hold
DELETE FROM budget_holds WHERE batch_id = %(batch_id)s;

-- name: hold_batch_for_budget
INSERT INTO budget_holds (batch_id, reason) VALUES (%(batch_id)s, %(reason)s)
ON CONFLICT (batch_id) DO UPDATE SET reason = EXCLUDED.reason;

-- name: set_batch_credit_cap
-- A new cap (NULL: none) lifts the batch's hold: the next send checks the cap again.
WITH lifted AS (DELETE FROM budget_holds WHERE batch_id = %(batch_id)s)
UPDATE upload_batches SET credit_cap = %(credit_cap)s, updated_at = NOW()
WHERE id = %(batch_id)s
RETURNING id, client_name;

-- name: set_client_credit_cap
INSERT INTO client_credit_caps (client_name, credit_cap) VALUES (%(client_name)s, %(credit_cap)s)
ON CONFLICT (client_name) DO UPDATE SET credit_cap = EXCLUDED.credit_cap, updated_at = NOW();

-- name: remove_client_credit_cap
DELETE FROM client_credit_caps WHERE client_name = %(client_name)s;

-- name: lift_client_budget_holds
-- The client's batches held by a cap go on (the next send checks the caps again); which.
DELETE FROM budget_holds h USING upload_batches b
WHERE b.id = h.batch_id AND b.client_name = %(client_name)s
RETURNING h.batch_id;

-- name: record_error_answer
-- An answer that reports an error (or whose data could not be stored) was answered all the
-- same, and billed: the dispatch says so (the ledger's trigger records the charge once).
UPDATE entity_dispatches
SET callback_at = COALESCE(callback_at, NOW()), sent_at = COALESCE(sent_at, NOW())
WHERE id = %(dispatch_id)s AND callback_at IS NULL;

-- name: client_has_batches
SELECT EXISTS (SELECT 1 FROM upload_batches WHERE client_name = %(client_name)s) AS found;

-- name: held_for_launch
-- A batch held for launch, with what `enrich estimate` of its file needs; no row otherwise.
SELECT file_name, client_name FROM upload_batches WHERE id = %(batch_id)s AND status = 'HELD';

-- name: set_batch_reuse
UPDATE upload_batches SET reuse_results = %(reuse)s, updated_at = NOW() WHERE id = %(batch_id)s;
