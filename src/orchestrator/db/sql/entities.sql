-- Templates over an entity kind: {entity_table}, {state_table}, {result_table}, {results_view},
-- {reuse_key} and {id_column} are filled with identifiers of the company or person tables.

-- name: entity_ids_for_items
SELECT id AS item_id, {id_column} AS entity_id FROM batch_items
WHERE id = ANY(%(item_ids)s::uuid[]);

-- name: entity_data
SELECT * FROM {entity_table} WHERE id = ANY(%(entity_ids)s::uuid[]);

-- name: entity_workflow_statuses
SELECT {id_column} AS entity_id, status, meta, attempts, dispatch_id FROM {state_table}
WHERE {id_column} = ANY(%(entity_ids)s::uuid[]) AND workflow_slug = %(workflow_slug)s;

-- name: set_entity_workflow_status
INSERT INTO {state_table} ({id_column}, workflow_slug, status, meta)
VALUES (%(entity_id)s, %(workflow_slug)s, %(status)s, %(meta)s)
ON CONFLICT ({id_column}, workflow_slug)
DO UPDATE SET status = EXCLUDED.status,
              meta = COALESCE({state_table}.meta, '{{}}'::jsonb) || COALESCE(EXCLUDED.meta, '{{}}'::jsonb),
              updated_at = NOW()
RETURNING id;

-- name: record_entity_result
INSERT INTO {result_table} ({id_column}, workflow_slug, data, dispatch_id)
VALUES (%(entity_id)s, %(workflow_slug)s, %(data)s, %(dispatch_id)s)
ON CONFLICT (dispatch_id) DO NOTHING
RETURNING id;

-- name: fresh_result
-- A fragment: the newest COMPLETED result of the workflow for an entity with key `wanted.key`
-- in another batch of the client `wanted.client_name`, stored since `wanted.since`, that
-- found something; with the entity and batch it belongs to.
SELECT v.result_id, v.data, src.id AS source_id, src.batch_id AS source_batch_id
FROM {entity_table} src
JOIN upload_batches sb ON sb.id = src.batch_id
JOIN {state_table} ss
  ON ss.{id_column} = src.id AND ss.workflow_slug = %(workflow_slug)s AND ss.status = 'COMPLETED'
JOIN {results_view} v ON v.{id_column} = src.id AND v.workflow_slug = %(workflow_slug)s
WHERE src.{reuse_key} = wanted.key AND src.batch_id IS DISTINCT FROM %(batch_id)s::uuid
  AND sb.client_name = wanted.client_name AND v.created_at >= wanted.since
  AND result_has_data(v.data)
ORDER BY v.created_at DESC, v.result_id
LIMIT 1

-- name: reusable_keys
-- Of `keys`, those the client's fresh results cover (as reuse_fresh_results finds them), each
-- with the data credits its result holds: what a forecast counts as reused.
WITH wanted AS (
    SELECT DISTINCT k.key, %(client_name)s::text AS client_name,
           %(since)s::timestamptz AS since
    FROM unnest(%(keys)s::text[]) AS k(key)
)
SELECT wanted.key, data_credits_for(w.data_credits, r.data) AS data_credits
FROM wanted
CROSS JOIN LATERAL ({fresh_result}) r
JOIN db_driven_enrichment_workflows w ON w.workflow_slug = %(workflow_slug)s;

-- name: reusable_waiting
-- Whether an item-step of the batch waiting (PENDING) at the workflow has an entity, not
-- enriched yet, that a fresh result of its client covers: completing it costs nothing, so no
-- credit cap holds it back. Stops at the first.
SELECT EXISTS (
    SELECT 1
    FROM workflow_states ws
    JOIN batch_items bi ON bi.id = ws.item_id
    JOIN {entity_table} e ON e.id = bi.{id_column}
    JOIN upload_batches b ON b.id = ws.batch_id AND b.reuse_results
    LEFT JOIN {state_table} s ON s.{id_column} = e.id AND s.workflow_slug = %(workflow_slug)s
    CROSS JOIN LATERAL (
        SELECT e.{reuse_key} AS key, b.client_name,
               b.created_at - make_interval(days => %(window_days)s) AS since
    ) wanted
    CROSS JOIN LATERAL ({fresh_result}) r
    WHERE ws.batch_id = %(batch_id)s AND ws.step_name = %(workflow_slug)s
      AND ws.status = 'PENDING' AND e.{reuse_key} NOT LIKE 'item:%%'
      AND (s.id IS NULL OR s.status = 'PENDING')
) AS found;

-- name: reuse_fresh_results
-- Entities of the chunk's items not claimed yet (no state, or PENDING) whose key (a company's
-- domain, a person's email else LinkedIn URL) has a COMPLETED result of the same workflow in
-- another batch of the same client, stored within the window before this batch was uploaded, complete from
-- it without a call: the state links the result (never a copy), says where it came from, and
-- the ledger counts what it saved. Never a result that found nothing; never across clients;
-- the newest such result, itself the original when that batch reused it too. The log row
-- and, for companies, the play step completion are written as for an answer.
WITH batch AS (
    SELECT b.id, b.client_name, b.play_name, b.created_at,
           (SELECT ps.step_number FROM play_steps ps
            WHERE ps.play_name = b.play_name AND ps.workflow_slug = %(workflow_slug)s) AS step_number
    FROM upload_batches b WHERE b.id = %(batch_id)s AND b.reuse_results
), wanted AS (
    SELECT e.id, e.{reuse_key} AS key, batch.client_name,
           batch.created_at - make_interval(days => %(window_days)s) AS since
    FROM {entity_table} e
    JOIN batch ON batch.id = e.batch_id
    LEFT JOIN {state_table} s ON s.{id_column} = e.id AND s.workflow_slug = %(workflow_slug)s
    -- The chunk's entities, found from its items here rather than by a statement of their own.
    WHERE e.id IN (SELECT bi.{id_column} FROM batch_items bi
                   WHERE bi.id = ANY(%(item_ids)s::uuid[]))
      AND e.{reuse_key} NOT LIKE 'item:%%' AND (s.id IS NULL OR s.status = 'PENDING')
), found AS (
    SELECT wanted.id AS entity_id, r.result_id, r.data, r.source_id, r.source_batch_id
    FROM wanted CROSS JOIN LATERAL ({fresh_result}) r
), inserted AS (
    INSERT INTO {state_table} ({id_column}, workflow_slug, status, reused_result_id, meta)
    SELECT entity_id, %(workflow_slug)s, 'COMPLETED', result_id,
           jsonb_build_object('result_id', result_id, 'reused_from', jsonb_build_object(
               'batch_id', source_batch_id, 'result_id', result_id,
               %(id_key)s::text, source_id))
    FROM found
    ORDER BY entity_id
    ON CONFLICT ({id_column}, workflow_slug) DO NOTHING
    RETURNING {id_column} AS entity_id, reused_result_id
), pending AS (
    SELECT s.id, found.result_id, found.source_batch_id, found.source_id
    FROM {state_table} s JOIN found ON s.{id_column} = found.entity_id
    WHERE s.workflow_slug = %(workflow_slug)s AND s.status = 'PENDING'
    ORDER BY s.id FOR UPDATE OF s SKIP LOCKED
), updated AS (
    UPDATE {state_table} s
    SET status = 'COMPLETED', reused_result_id = pending.result_id, dispatch_id = NULL,
        lease_expires_at = NULL, updated_at = NOW(),
        meta = COALESCE(s.meta, '{{}}'::jsonb) || jsonb_build_object(
            'result_id', pending.result_id, 'reused_from', jsonb_build_object(
                'batch_id', pending.source_batch_id, 'result_id', pending.result_id,
                %(id_key)s::text, pending.source_id))
    FROM pending WHERE s.id = pending.id
    RETURNING s.{id_column} AS entity_id, s.reused_result_id
), reused AS (
    SELECT * FROM inserted UNION ALL SELECT * FROM updated
), target AS (
    SELECT reused.entity_id, reused.reused_result_id, found.data, w.id AS workflow_id, w.actions_per_run,
           w.callback_actions, w.data_credits, batch.client_name, batch.play_name,
           batch.step_number,
           c.id AS company_id, c.domain, p.id AS person_id
    FROM reused
    JOIN found ON found.entity_id = reused.entity_id
    JOIN db_driven_enrichment_workflows w ON w.workflow_slug = %(workflow_slug)s
    CROSS JOIN batch
    LEFT JOIN normalized_people p ON %(entity_type)s = 'person' AND p.id = reused.entity_id
    LEFT JOIN normalized_companies c
      ON c.id = CASE WHEN %(entity_type)s = 'company' THEN reused.entity_id ELSE p.company_id END
), ledger AS (
    INSERT INTO credit_ledger (batch_id, client_name, workflow_slug, entity_type, entity_id,
                               entry, actions, data_credits, data_types, result_id)
    SELECT %(batch_id)s, client_name, %(workflow_slug)s, %(entity_type)s, entity_id, 'reuse',
           actions_per_run + callback_actions, data_credits_for(data_credits, data),
           priced_data_types(data_credits, data), reused_result_id
    FROM target
    ON CONFLICT DO NOTHING
    RETURNING id
), logged AS (
    INSERT INTO enrichment_results_log
        (workflow_id, workflow_slug, company_id, company_domain, person_id, batch_id, play_name,
         step_number, status, error_message, result_table)
    SELECT workflow_id, %(workflow_slug)s, company_id, domain, person_id, %(batch_id)s,
           play_name, step_number, 'success', NULL, %(result_table)s
    FROM target
    RETURNING id
), completed AS (
    INSERT INTO company_play_step_completions (company_id, play_name, step_number, workflow_slug)
    SELECT company_id, play_name, step_number, %(workflow_slug)s FROM target
    WHERE %(entity_type)s = 'company' AND step_number IS NOT NULL
    ORDER BY company_id
    ON CONFLICT (company_id, play_name, step_number) DO NOTHING
    RETURNING id
)
SELECT (SELECT count(*) FROM reused) AS entities, (SELECT count(*) FROM ledger) AS saved,
       (SELECT count(*) FROM logged) AS logged, (SELECT count(*) FROM completed) AS completed;

-- name: claim_entities
-- Atomic claim: the first sender to insert (or to flip a PENDING row) owns the entity and
-- is the only one to call the provider. Losers see the row and wait or skip.
WITH wanted AS (
    SELECT DISTINCT unnest(%(entity_ids)s::uuid[]) AS entity_id
), inserted AS (
    INSERT INTO {state_table} ({id_column}, workflow_slug, status, attempts, dispatch_id,
                               lease_expires_at, meta)
    SELECT entity_id, %(workflow_slug)s, 'IN_PROGRESS', 1, gen_random_uuid(),
           NOW() + make_interval(secs => %(timeout)s), '{{}}'::jsonb
    FROM wanted
    ORDER BY entity_id
    ON CONFLICT ({id_column}, workflow_slug) DO NOTHING
    RETURNING {id_column} AS entity_id, dispatch_id, attempts
), pending AS (
    SELECT s.id FROM {state_table} s JOIN wanted ON s.{id_column} = wanted.entity_id
    WHERE s.workflow_slug = %(workflow_slug)s AND s.status = 'PENDING'
    ORDER BY s.id FOR UPDATE OF s SKIP LOCKED
), reclaimed AS (
    UPDATE {state_table} s
    SET status = 'IN_PROGRESS', attempts = s.attempts + 1, dispatch_id = gen_random_uuid(),
        lease_expires_at = NOW() + make_interval(secs => %(timeout)s), updated_at = NOW()
    -- By id alone: `pending` re-checked the status as it locked each row (a status test here
    -- would let stale statistics choose a scan of every PENDING row, as in claim_pending_steps).
    WHERE s.id = ANY(ARRAY(SELECT id FROM pending))
    RETURNING s.{id_column} AS entity_id, s.dispatch_id, s.attempts
)
SELECT * FROM inserted UNION ALL SELECT * FROM reclaimed;

-- name: insert_dispatches
-- The sender item is the chunk's first item of the entity, as in mark_items_after_claim: one
-- pass over the chunk's items, not a lookup per dispatch.
WITH senders AS (
    SELECT DISTINCT ON (bi.{id_column}) bi.{id_column} AS entity_id, bi.id AS item_id
    FROM batch_items bi
    WHERE bi.id = ANY(%(item_ids)s::uuid[]) AND bi.{id_column} IS NOT NULL
    ORDER BY bi.{id_column}, bi.id
)
INSERT INTO entity_dispatches (id, batch_id, entity_type, entity_id, workflow_slug, attempt,
                               provider, webhook_key, play_name, step_number, sender_item_id,
                               runner_id, simulated)
SELECT d.id, e.batch_id, %(entity_type)s, d.entity_id, %(workflow_slug)s, d.attempt,
       %(provider)s, %(webhook_key)s, %(play_name)s, %(step_number)s, senders.item_id,
       %(runner_id)s, %(simulated)s
FROM jsonb_to_recordset(%(dispatches)s::jsonb) AS d(id uuid, entity_id uuid, attempt int)
JOIN {entity_table} e ON e.id = d.entity_id AND e.id = ANY(%(entity_ids)s::uuid[])
LEFT JOIN senders ON senders.entity_id = d.entity_id;

-- name: mark_items_after_claim
-- Each item of the chunk either completes at once (entity already enriched), sends (the first
-- item of an entity this call claimed), waits (entity in progress), or fails with its entity.
WITH locked AS (
    -- Everyone updating an entity's item-steps locks them in id order: no deadlocks. The
    -- status is checked here, as each row is locked, so the update below finds its rows by
    -- id alone (see claim_pending_steps).
    SELECT id FROM workflow_states
    WHERE item_id = ANY(%(item_ids)s::uuid[]) AND step_name = %(workflow_slug)s
      AND status = 'IN_PROGRESS'
    ORDER BY id FOR UPDATE
), items AS (
    SELECT bi.id AS item_id, bi.{id_column} AS entity_id FROM batch_items bi
    WHERE bi.id = ANY(%(item_ids)s::uuid[])
), senders AS (
    SELECT DISTINCT ON (entity_id) item_id, entity_id FROM items
    WHERE entity_id = ANY(%(claimed)s::uuid[])
    ORDER BY entity_id, item_id
), decided AS (
    SELECT items.item_id, items.entity_id, s.status AS entity_status, s.meta AS entity_meta,
           senders.item_id IS NOT NULL AS is_sender
    FROM items
    LEFT JOIN {state_table} s
           ON s.{id_column} = items.entity_id AND s.workflow_slug = %(workflow_slug)s
    LEFT JOIN senders ON senders.item_id = items.item_id
)
UPDATE workflow_states ws
SET status = CASE
        WHEN d.entity_id IS NULL THEN 'FAILED'
        WHEN d.is_sender THEN 'IN_PROGRESS'
        WHEN d.entity_status = 'COMPLETED' THEN 'COMPLETED'
        WHEN d.entity_status = 'FAILED' THEN 'FAILED'
        ELSE 'IN_PROGRESS' END,
    -- Completed here: the trigger creates the next step (workflow_states_create_next_steps).
    advanced = COALESCE(d.entity_status = 'COMPLETED' AND NOT d.is_sender, FALSE),
    finished_at = CASE WHEN d.entity_status IN ('COMPLETED', 'FAILED') AND NOT d.is_sender
                       THEN NOW() END,
    lease_expires_at = CASE
        WHEN d.entity_id IS NULL OR (d.entity_status IN ('COMPLETED', 'FAILED') AND NOT d.is_sender)
        THEN NULL ELSE ws.lease_expires_at END,
    updated_at = NOW(),
    meta = ws.meta || jsonb_strip_nulls(jsonb_build_object(
        %(id_key)s::text, d.entity_id,
        'skipped', CASE
            WHEN d.entity_id IS NULL OR d.is_sender THEN NULL
            WHEN d.entity_status = 'COMPLETED' AND d.entity_meta ? 'reused_from'
                THEN %(reused)s::text
            WHEN d.entity_status = 'COMPLETED' THEN %(already)s::text
            WHEN d.entity_status = 'FAILED' THEN NULL
            ELSE %(in_progress)s::text END,
        'reused_from', CASE
            WHEN d.entity_status = 'COMPLETED' AND NOT d.is_sender
                THEN d.entity_meta->'reused_from' END,
        'reason', CASE
            WHEN d.entity_id IS NULL THEN 'no_' || %(entity_type)s::text
            WHEN d.entity_status = 'FAILED' AND NOT d.is_sender
                THEN %(entity_type)s::text || '_enrichment_failed' END,
        'error', CASE WHEN d.entity_status = 'FAILED' AND NOT d.is_sender
                      THEN d.entity_meta->>'error' END))
FROM decided d
WHERE ws.id = ANY(ARRAY(SELECT id FROM locked)) AND ws.item_id = d.item_id;

-- name: lease_sent_entities
-- The entity's lease restarts at the send, so time spent queued behind the rate limit does not
-- count against it. Entity rows are locked in id order, after the chunk's dispatch rows (see
-- apply_stored_results): the count makes the locking subquery run first, once. Rows are found by their entity ids
-- (an array), never by a join whose plan depends on how many rows statistics think are
-- IN_PROGRESS.
WITH locked AS (
    SELECT st.id FROM {state_table} st
    WHERE st.{id_column} = ANY(%(entity_ids)s::uuid[]) AND st.workflow_slug = %(workflow_slug)s
      AND st.dispatch_id = ANY(%(dispatch_ids)s::uuid[]) AND st.status = 'IN_PROGRESS'
    ORDER BY st.id FOR UPDATE OF st
)
UPDATE {state_table} st
SET lease_expires_at = NOW() + make_interval(secs => %(timeout)s)
WHERE st.{id_column} = ANY(%(entity_ids)s::uuid[]) AND st.workflow_slug = %(workflow_slug)s
  AND st.dispatch_id = ANY(%(dispatch_ids)s::uuid[]) AND st.status = 'IN_PROGRESS'
  AND (SELECT count(*) FROM locked) >= 0;

-- name: record_sends
-- Outcome of the provider calls of one chunk, written once for the chunk. A fast provider may
-- have called back already: that status stays, the cost is still recorded.
WITH sends AS (
    SELECT * FROM jsonb_to_recordset(%(sends)s::jsonb)
        AS s(id uuid, ok boolean, http_status int, error text, webhook_key text)
), locked AS (
    SELECT d.id FROM entity_dispatches d JOIN sends ON sends.id = d.id
    WHERE d.status IN ('SENDING', 'SENT', 'STORED', 'CALLED_BACK')
    ORDER BY d.id FOR UPDATE OF d
)
UPDATE entity_dispatches d
SET status = CASE WHEN d.status IN ('STORED', 'CALLED_BACK') THEN d.status
                  WHEN s.ok THEN 'SENT' ELSE 'FAILED' END,
    -- A paced send marks its row SENT as Clay accepts it (mark_dispatch_sent).
    sent_at = CASE WHEN s.ok THEN COALESCE(d.sent_at, NOW()) END,
    http_status = s.http_status,
    error = s.error,
    webhook_key = COALESCE(s.webhook_key, d.webhook_key)
FROM sends s, locked
WHERE d.id = s.id AND d.id = locked.id;

-- name: fail_entities
-- Provider calls that failed for good: the entity and every item waiting on it FAIL with the error.
WITH entities AS (
    SELECT st.id, f.error
    FROM {state_table} st
    JOIN jsonb_to_recordset(%(failures)s::jsonb) AS f(entity_id uuid, dispatch_id uuid, error text)
      ON st.{id_column} = f.entity_id AND st.dispatch_id = f.dispatch_id
    WHERE st.workflow_slug = %(workflow_slug)s AND st.status = 'IN_PROGRESS'
    ORDER BY st.id FOR UPDATE OF st
), failed AS (
    UPDATE {state_table} st
    SET status = 'FAILED', lease_expires_at = NULL, updated_at = NOW(),
        meta = COALESCE(st.meta, '{{}}'::jsonb) || jsonb_build_object('error', entities.error)
    FROM entities
    WHERE st.id = entities.id
    RETURNING st.{id_column} AS entity_id, entities.error
), locked AS (
    SELECT ws.id, failed.error
    FROM workflow_states ws
    JOIN batch_items bi ON bi.id = ws.item_id
    JOIN failed ON failed.entity_id = bi.{id_column}
    WHERE ws.step_name = %(workflow_slug)s AND ws.status = 'IN_PROGRESS'
    ORDER BY ws.id FOR UPDATE OF ws
), items AS (
    UPDATE workflow_states ws
    SET status = 'FAILED', finished_at = NOW(), updated_at = NOW(), lease_expires_at = NULL,
        meta = ws.meta || jsonb_build_object(
            'reason', %(entity_type)s::text || '_enrichment_failed', 'error', locked.error)
    FROM locked
    -- Locked above while IN_PROGRESS; no status test here (see claim_pending_steps).
    WHERE ws.id = locked.id
)
-- None when every entity had finished already: a replayed error callback changes nothing.
SELECT count(*) AS entities FROM failed;

-- name: company_payloads
-- What Clay receives for a company: normalized values, never the raw row.
SELECT id, domain, name, linkedin_url, employees, industry, city, state, country
FROM normalized_companies WHERE id = ANY(%(entity_ids)s::uuid[]);

-- name: person_payloads
SELECT p.id, p.first_name, p.last_name, p.full_name, p.email, p.linkedin_url, p.title,
       c.domain AS company_domain, c.name AS company_name
FROM normalized_people p JOIN normalized_companies c ON c.id = p.company_id
WHERE p.id = ANY(%(entity_ids)s::uuid[]);

-- name: callback_context
-- The entity a callback names, the dispatch its token names, whether that dispatch is still
-- the entity's current one, and the statuses that say whether it was answered already; no
-- row means the entity is unknown.
SELECT e.id AS entity_id, d.id, d.batch_id, d.entity_id AS dispatch_entity_id, d.workflow_slug,
       d.attempt, d.play_name, d.step_number, s.dispatch_id = d.id AS is_current,
       d.status AS dispatch_status, s.status AS entity_status
FROM {entity_table} e
LEFT JOIN entity_dispatches d ON d.id = %(dispatch_id)s
LEFT JOIN {state_table} s ON s.{id_column} = d.entity_id AND s.workflow_slug = d.workflow_slug
WHERE e.id = %(entity_id)s;

-- name: store_callback_results
-- The receivers' one statement, for any number of callbacks (one group commit): where the
-- dispatch a token names is still its entity's current one, keep the result (once per
-- dispatch) and mark the dispatch STORED for the next pass to complete. A callback without a
-- row is not a current dispatch of its entity (the caller finds out why); a row without
-- result_id is a duplicate of a stored callback, or a callback of an entity that finished
-- (COMPLETED or FAILED: `finished`), whose data is not kept. Callers send each dispatch at most
-- once per statement. Dispatch rows are locked in id order, as everywhere.
WITH callbacks AS (
    SELECT * FROM jsonb_to_recordset(%(callbacks)s::jsonb)
        AS c(entity_id uuid, dispatch_id uuid, attempt int, workflow_slug text, data jsonb)
), current_dispatch AS (
    SELECT d.id, d.batch_id, c.entity_id, c.workflow_slug, c.data,
           s.status IN ('COMPLETED', 'FAILED') AS finished
    FROM callbacks c
    JOIN entity_dispatches d
      ON d.id = c.dispatch_id AND d.entity_id = c.entity_id
     AND d.workflow_slug = c.workflow_slug AND d.attempt = c.attempt
    JOIN {state_table} s
      ON s.{id_column} = d.entity_id AND s.workflow_slug = d.workflow_slug
     AND s.dispatch_id = d.id
), stored AS (
    INSERT INTO {result_table} ({id_column}, workflow_slug, data, dispatch_id)
    SELECT entity_id, workflow_slug, data, id FROM current_dispatch WHERE NOT finished ORDER BY id
    ON CONFLICT (dispatch_id) DO NOTHING
    RETURNING id, dispatch_id
), locked AS (
    SELECT d.id FROM entity_dispatches d JOIN stored ON stored.dispatch_id = d.id
    WHERE d.status NOT IN ('STORED', 'CALLED_BACK')
    ORDER BY d.id FOR UPDATE OF d
), marked AS (
    -- An answer proves the provider accepted the call, even one whose sender died before
    -- it could record that (sent_at is what calls are counted by).
    UPDATE entity_dispatches d
    SET status = 'STORED', callback_at = NOW(), sent_at = COALESCE(d.sent_at, NOW())
    FROM locked WHERE d.id = locked.id
    RETURNING d.id
)
SELECT c.id AS dispatch_id, c.batch_id, stored.id AS result_id, c.finished,
       (SELECT count(*) FROM marked) AS marked
FROM current_dispatch c LEFT JOIN stored ON stored.dispatch_id = c.id;

-- name: mark_dispatch_stored
-- A result whose fields went to a destination table is complete once they were verified there.
UPDATE entity_dispatches
SET status = 'STORED', callback_at = NOW(), sent_at = COALESCE(sent_at, NOW())
WHERE id = %(dispatch_id)s AND status NOT IN ('STORED', 'CALLED_BACK');

-- name: apply_stored_results
-- Complete what the receivers stored, in one statement for every STORED dispatch in {scope}:
-- the entity (when the dispatch is still its current one) and every item waiting on it
-- complete, items that did not make the call record that they reused it, the dispatch becomes
-- CALLED_BACK, and the logger writes the log row and, for companies, the play step completion.
-- Dispatch rows, then entity rows, then item-steps are locked in id order, as everywhere.
WITH stored AS (
    SELECT d.id, d.entity_id, d.workflow_slug, d.play_name, d.step_number
    FROM entity_dispatches d
    WHERE d.status = 'STORED' AND d.entity_type = %(entity_type)s AND {scope}
    ORDER BY d.id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), called_back AS (
    UPDATE entity_dispatches d SET status = 'CALLED_BACK'
    FROM stored WHERE d.id = stored.id
    RETURNING d.id
), current_states AS (
    SELECT s.id, r.id AS result_id, stored.id AS dispatch_id, stored.play_name,
           stored.step_number
    FROM stored
    JOIN {state_table} s
      ON s.{id_column} = stored.entity_id AND s.workflow_slug = stored.workflow_slug
     AND s.dispatch_id = stored.id
    JOIN {result_table} r ON r.dispatch_id = stored.id
    ORDER BY s.id FOR UPDATE OF s
), entity AS (
    UPDATE {state_table} s
    SET status = 'COMPLETED', lease_expires_at = NULL, updated_at = NOW(),
        meta = COALESCE(s.meta, '{{}}'::jsonb) || jsonb_build_object('result_id', c.result_id)
    FROM current_states c
    WHERE s.id = c.id
    RETURNING s.{id_column} AS entity_id, s.workflow_slug, c.play_name, c.step_number
), waiting AS (
    -- An index walk per entity: its items, then each item's row for this step. The planner
    -- cannot estimate how many rows a CTE returns, and statistics lag a fast-moving batch; left
    -- to choose, it hash-joined every IN_PROGRESS item-step with every entity. OFFSET 0 keeps
    -- each subquery as written.
    SELECT waiting.id, entity.entity_id
    FROM entity
    CROSS JOIN LATERAL (
        SELECT bi.id FROM batch_items bi WHERE bi.{id_column} = entity.entity_id OFFSET 0
    ) item
    CROSS JOIN LATERAL (
        SELECT ws.id FROM workflow_states ws
        WHERE ws.item_id = item.id AND ws.step_name = entity.workflow_slug
          AND ws.status = 'IN_PROGRESS'
        OFFSET 0
    ) waiting
), locked AS (
    SELECT ws.id, waiting.entity_id
    FROM waiting JOIN workflow_states ws ON ws.id = waiting.id
    ORDER BY ws.id FOR UPDATE OF ws
), items AS (
    UPDATE workflow_states ws
    SET status = 'COMPLETED', advanced = TRUE, finished_at = NOW(), updated_at = NOW(),
        lease_expires_at = NULL,
        meta = ws.meta || jsonb_build_object(%(id_key)s::text, locked.entity_id)
               || CASE WHEN ws.meta ? 'skipped' OR EXISTS (
                       SELECT 1 FROM entity_dispatches d
                       WHERE d.sender_item_id = ws.item_id AND d.workflow_slug = ws.step_name)
                  THEN '{{}}'::jsonb
                  ELSE jsonb_build_object('skipped', %(in_progress)s::text) END
    FROM locked
    -- Locked above while IN_PROGRESS; no status test here, which would invite a scan of every
    -- IN_PROGRESS row.
    WHERE ws.id = locked.id
    RETURNING ws.item_id, ws.batch_id
), target AS (
    SELECT w.id AS workflow_id, entity.workflow_slug, c.id AS company_id, c.domain,
           p.id AS person_id, c.batch_id,
           COALESCE(entity.play_name, b.play_name) AS play_name,
           COALESCE(entity.step_number, ps.step_number) AS step_number,
           COALESCE(w.destination_table_name, %(result_table)s) AS result_table
    FROM entity
    JOIN db_driven_enrichment_workflows w ON w.workflow_slug = entity.workflow_slug
    LEFT JOIN normalized_people p
      ON %(entity_type)s = 'person' AND p.id = entity.entity_id
    LEFT JOIN normalized_companies c
      ON c.id = CASE WHEN %(entity_type)s = 'company' THEN entity.entity_id ELSE p.company_id END
    LEFT JOIN upload_batches b ON b.id = c.batch_id
    LEFT JOIN play_steps ps ON ps.play_name = b.play_name AND ps.workflow_slug = entity.workflow_slug
), logged AS (
    INSERT INTO enrichment_results_log
        (workflow_id, workflow_slug, company_id, company_domain, person_id, batch_id, play_name,
         step_number, status, error_message, result_table)
    SELECT workflow_id, workflow_slug, company_id, domain, person_id, batch_id, play_name,
           step_number, 'success', NULL, result_table
    FROM target
    RETURNING id
), completed AS (
    -- Step completions track companies: a person result completes no company step.
    INSERT INTO company_play_step_completions (company_id, play_name, step_number, workflow_slug)
    SELECT company_id, play_name, step_number, workflow_slug FROM target
    WHERE %(entity_type)s = 'company' AND company_id IS NOT NULL AND play_name IS NOT NULL
      AND step_number IS NOT NULL
    ORDER BY company_id, play_name, step_number
    ON CONFLICT (company_id, play_name, step_number) DO NOTHING
    RETURNING id
)
SELECT (SELECT count(*) FROM called_back) AS dispatches,
       (SELECT count(*) FROM entity) AS entities,
       (SELECT count(*) FROM items) AS items_completed,
       (SELECT count(*) FROM logged) AS logged,
       (SELECT COALESCE(array_agg(DISTINCT batch_id), '{{}}') FROM items) AS batch_ids;

-- name: insert_dead_letter
INSERT INTO receiver_dead_letters (workflow_slug, http_status, reason, headers, body)
VALUES (%(workflow_slug)s, %(http_status)s, %(reason)s, %(headers)s, %(body)s);

-- name: person_company
SELECT company_id FROM normalized_people WHERE id = %(person_id)s;

-- name: claimable_entities
-- Which of these entities a sender would claim now: never claimed for the workflow, or PENDING.
SELECT e.id AS entity_id
FROM unnest(%(entity_ids)s::uuid[]) AS e(id)
LEFT JOIN {state_table} s ON s.{id_column} = e.id AND s.workflow_slug = %(workflow_slug)s
WHERE s.id IS NULL OR s.status = 'PENDING'
ORDER BY e.id;

-- name: extend_claim_leases
-- Rows wait for their send slots (the workspace's pace): their leases, entity and item-step,
-- last until the slot of the chunk's last row plus the workflow's timeout, so the sweeper
-- never sends again a row that is still waiting to go.
WITH entities AS (
    UPDATE {state_table}
    SET lease_expires_at = lease_expires_at + make_interval(secs => %(seconds)s)
    WHERE {id_column} = ANY(%(entity_ids)s::uuid[]) AND workflow_slug = %(workflow_slug)s
      AND status = 'IN_PROGRESS'
)
UPDATE workflow_states
SET lease_expires_at = lease_expires_at + make_interval(secs => %(seconds)s)
WHERE item_id = ANY(%(item_ids)s::uuid[]) AND step_name = %(workflow_slug)s
  AND status = 'IN_PROGRESS';

-- name: give_back_refused
-- Rows a webhook refused because it is spent (HTTP 410): their calls end SUPERSEDED and their
-- entities go back to PENDING, to be sent again through the next webhook of the list. Dispatch
-- rows before entity rows, the order in which passes lock them.
WITH gone AS (
    UPDATE entity_dispatches d
    SET status = 'SUPERSEDED', http_status = 410, error = %(error)s
    WHERE d.id = ANY(%(dispatch_ids)s::uuid[]) AND d.status = 'SENDING'
    RETURNING d.id, d.entity_id, d.workflow_slug
)
UPDATE {state_table} s
SET status = 'PENDING', lease_expires_at = NULL, updated_at = NOW(),
    meta = COALESCE(s.meta, '{{}}'::jsonb) || jsonb_build_object('superseded_dispatch_id', gone.id)
FROM gone
WHERE s.{id_column} = gone.entity_id AND s.workflow_slug = gone.workflow_slug
  AND s.dispatch_id = gone.id AND s.status = 'IN_PROGRESS'
RETURNING s.{id_column} AS entity_id;
