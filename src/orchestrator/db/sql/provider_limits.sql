-- name: reserve_send_slot
-- The account's next n send slots (GCRA): a row may go at next_free_at - burst/rate, and
-- reserving moves next_free_at on by n/rate. The answer is when the last of them may go, in
-- seconds from now (negative: already free); the caller's clock need not agree with the server's.
INSERT INTO provider_rate_limits AS l (account, next_free_at)
VALUES (%(account)s, clock_timestamp() + make_interval(secs => %(interval)s))
ON CONFLICT (account) DO UPDATE
SET next_free_at = GREATEST(l.next_free_at, clock_timestamp())
                   + make_interval(secs => %(interval)s),
    updated_at = clock_timestamp()
RETURNING (EXTRACT(EPOCH FROM l.next_free_at - clock_timestamp()) - %(tolerance)s)::float8
          AS last_wait;

-- name: delay_sends
-- After a 429: the account's next slot is at least `seconds` away, with no burst saved up.
UPDATE provider_rate_limits
SET next_free_at = GREATEST(next_free_at,
                            clock_timestamp() + make_interval(secs => %(seconds)s + %(tolerance)s)),
    updated_at = clock_timestamp()
WHERE account = %(account)s;

-- name: ensure_webhook_counts
INSERT INTO webhook_submission_counts (webhook_key, webhook_host)
SELECT * FROM unnest(%(keys)s::text[], %(hosts)s::text[])
ON CONFLICT (webhook_key) DO NOTHING;

-- name: lock_webhook_counts
-- Senders of one workflow take its webhooks' rows in key order: one at a time, no deadlock.
SELECT webhook_key, submissions FROM webhook_submission_counts
WHERE webhook_key = ANY(%(keys)s::text[])
ORDER BY webhook_key
FOR UPDATE;

-- name: add_webhook_submissions
UPDATE webhook_submission_counts c
SET submissions = c.submissions + a.n, updated_at = NOW()
FROM unnest(%(keys)s::text[], %(counts)s::bigint[]) AS a(key, n)
WHERE c.webhook_key = a.key;

-- name: webhook_submissions
SELECT webhook_key, submissions FROM webhook_submission_counts
WHERE webhook_key = ANY(%(keys)s::text[]);

-- name: hold_workflow
INSERT INTO provider_holds (workflow_slug, reason)
VALUES (%(workflow_slug)s, %(reason)s)
ON CONFLICT (workflow_slug) DO UPDATE SET reason = EXCLUDED.reason;

-- name: lift_hold
DELETE FROM provider_holds WHERE workflow_slug = %(workflow_slug)s RETURNING reason;

-- name: held_workflows
SELECT workflow_slug, reason FROM provider_holds;

-- name: batches_waiting_on
-- Batches with item-steps of a workflow still to send: a lifted hold asks a pass for each.
SELECT b.id AS batch_id FROM upload_batches b
WHERE b.status = 'RUNNING' AND EXISTS (
    SELECT 1 FROM workflow_states ws
    WHERE ws.batch_id = b.id AND ws.status = 'PENDING' AND ws.step_name = %(workflow_slug)s
);

-- name: batch_holds
-- The holds that keep this batch's item-steps waiting, with how many: a workflow whose webhooks
-- are spent, and the batch's credit cap (over its paid steps).
SELECT h.workflow_slug, h.reason, count(*) AS pending
FROM provider_holds h
JOIN workflow_states ws ON ws.step_name = h.workflow_slug
WHERE ws.batch_id = %(batch_id)s AND ws.status = 'PENDING'
GROUP BY h.workflow_slug, h.reason
UNION ALL
SELECT ws.step_name, bh.reason, count(*)
FROM budget_holds bh
JOIN workflow_states ws ON ws.batch_id = bh.batch_id AND ws.status = 'PENDING'
JOIN db_driven_enrichment_workflows w ON w.workflow_slug = ws.step_name
WHERE bh.batch_id = %(batch_id)s AND workflow_call_ceiling(w) > 0
  AND NOT EXISTS (SELECT 1 FROM provider_holds h WHERE h.workflow_slug = ws.step_name)
GROUP BY ws.step_name, bh.reason;

-- name: mark_dispatch_sent
-- A paced row Clay accepted is SENT at once, not when its chunk ends minutes later: recovery
-- after a crash sends again only what Clay never accepted (SENDING).
UPDATE entity_dispatches SET status = 'SENT', sent_at = NOW()
WHERE id = %(id)s AND status = 'SENDING';

-- name: return_webhook_submissions
-- Rows counted but not sent (the runner was stopping): their submissions are given back.
UPDATE webhook_submission_counts c
SET submissions = GREATEST(0, c.submissions - a.n), updated_at = NOW()
FROM unnest(%(keys)s::text[], %(counts)s::bigint[]) AS a(key, n)
WHERE c.webhook_key = a.key;

-- name: webhooks_spent
-- Clay said these webhooks take nothing more (410): count them as used up.
UPDATE webhook_submission_counts
SET submissions = GREATEST(submissions, %(limit)s), updated_at = NOW()
WHERE webhook_key = ANY(%(keys)s::text[]);
