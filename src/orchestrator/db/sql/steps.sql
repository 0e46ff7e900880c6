-- name: items_to_normalize
SELECT id, first_name, last_name, title, company_name, email, person_linkedin_url, website,
       company_linkedin_url, employees, industry, city, state, country, phone
FROM batch_items WHERE id = ANY(%(item_ids)s::uuid[]);

-- name: store_normalized
-- Stores the normalized documents and completes their items' step in one statement.
-- The item-steps are found by their ids (an array), never by joining the documents to the
-- IN_PROGRESS rows: statistics lag a fast-moving batch, and a planner that believes few rows
-- are IN_PROGRESS nests a scan of all of them inside a scan of every document.
WITH docs AS (
    SELECT * FROM jsonb_to_recordset(%(docs)s::jsonb) AS d(id uuid, normalized jsonb)
), stored AS (
    UPDATE batch_items b SET normalized = docs.normalized
    FROM docs
    WHERE b.id = docs.id AND b.id = ANY(%(item_ids)s::uuid[])
)
UPDATE workflow_states ws
SET status = 'COMPLETED', advanced = TRUE, finished_at = NOW(), updated_at = NOW(),
    lease_expires_at = NULL
WHERE ws.item_id = ANY(%(item_ids)s::uuid[]) AND ws.step_name = %(step)s
  AND ws.status = 'IN_PROGRESS';

-- name: fail_unnormalizable
WITH docs AS (
    SELECT * FROM jsonb_to_recordset(%(docs)s::jsonb) AS d(id uuid, reason text, detail text)
), found AS (
    SELECT ws.id, docs.reason, docs.detail
    FROM docs
    CROSS JOIN LATERAL (
        SELECT w.id, w.status FROM workflow_states w
        WHERE w.item_id = docs.id AND w.step_name = %(step)s
        OFFSET 0
    ) ws
    WHERE ws.status = 'IN_PROGRESS'
)
UPDATE workflow_states ws
SET status = 'FAILED', finished_at = NOW(), updated_at = NOW(), lease_expires_at = NULL,
    meta = ws.meta || jsonb_build_object('reason', found.reason, 'detail', found.detail)
FROM found
WHERE ws.id = found.id AND ws.status = 'IN_PROGRESS';

-- name: split_insert_companies
-- One company per registrable domain within the batch; the first row's values win.
INSERT INTO normalized_companies
    (batch_id, domain, name, linkedin_url, employees, industry, city, state, country)
SELECT DISTINCT ON (bi.batch_id, bi.normalized->>'company_domain')
       bi.batch_id, bi.normalized->>'company_domain', bi.normalized->>'company_name',
       bi.normalized->>'company_linkedin_url', (bi.normalized->>'employees')::int,
       bi.normalized->>'industry', bi.normalized->>'city', bi.normalized->>'state',
       bi.normalized->>'country'
FROM batch_items bi
WHERE bi.id = ANY(%(item_ids)s::uuid[]) AND bi.normalized IS NOT NULL
ORDER BY bi.batch_id, bi.normalized->>'company_domain', bi.row_number
ON CONFLICT (batch_id, domain) DO NOTHING;

-- name: split_insert_people
-- People are deduplicated within the batch by email, else LinkedIn URL. Each item's company is
-- looked up by its domain (split_insert_companies committed it), so the item row is updated
-- once, by split_link_and_complete, not once per link. Scalar lookups keep one index probe per
-- item whatever the planner believes about a fast-growing table.
INSERT INTO normalized_people
    (batch_id, batch_item_id, company_id, dedupe_key, first_name, last_name, full_name, title,
     email, linkedin_url)
SELECT DISTINCT ON (found.batch_id, found.person_key)
       found.batch_id, found.id, found.company_id, found.person_key, found.first_name,
       found.last_name, found.full_name, found.title, found.email, found.linkedin_url
FROM (
    SELECT bi.batch_id, bi.id, bi.row_number, bi.normalized->>'person_key' AS person_key,
           bi.normalized->>'first_name' AS first_name, bi.normalized->>'last_name' AS last_name,
           bi.normalized->>'full_name' AS full_name, bi.normalized->>'title' AS title,
           bi.normalized->>'email' AS email,
           bi.normalized->>'person_linkedin_url' AS linkedin_url,
           (SELECT c.id FROM normalized_companies c
            WHERE c.batch_id = bi.batch_id
              AND c.domain = bi.normalized->>'company_domain') AS company_id
    FROM batch_items bi
    WHERE bi.id = ANY(%(item_ids)s::uuid[]) AND bi.normalized IS NOT NULL
) found
WHERE found.company_id IS NOT NULL
ORDER BY found.batch_id, found.person_key, found.row_number
ON CONFLICT (batch_id, dedupe_key) DO NOTHING;

-- name: split_link_and_complete
-- Links each item to its company and person in one update of the item row, and completes the
-- items that have both; the rest stay IN_PROGRESS for the sweeper, as a failed chunk would.
-- The item-steps are reached by their ids, from arrays, one primary-key probe each: joined to
-- the linked rows with their status tested, a planner whose statistics saw few IN_PROGRESS
-- split rows scanned them all, once per item (0.5 s a chunk).
WITH found AS (
    SELECT bi.id,
           (SELECT c.id FROM normalized_companies c
            WHERE c.batch_id = bi.batch_id
              AND c.domain = bi.normalized->>'company_domain') AS company_id,
           (SELECT p.id FROM normalized_people p
            WHERE p.batch_id = bi.batch_id
              AND p.dedupe_key = bi.normalized->>'person_key') AS person_id,
           -- Locked while IN_PROGRESS, so the update below needs no status test, which
           -- would invite the planner to scan the IN_PROGRESS rows (see claim_pending_steps).
           (SELECT w.id FROM workflow_states w
            WHERE w.item_id = bi.id AND w.step_name = %(step)s AND w.status = 'IN_PROGRESS'
            FOR UPDATE) AS step_id
    FROM batch_items bi
    WHERE bi.id = ANY(%(item_ids)s::uuid[]) AND bi.normalized IS NOT NULL
), linked AS (
    UPDATE batch_items bi SET company_id = found.company_id, person_id = found.person_id
    FROM found
    WHERE bi.id = found.id AND found.company_id IS NOT NULL AND found.person_id IS NOT NULL
    RETURNING found.step_id, bi.company_id, bi.person_id
), arrays AS (
    SELECT array_agg(step_id) AS ids, array_agg(company_id) AS companies,
           array_agg(person_id) AS people
    FROM linked
)
UPDATE workflow_states ws
SET status = 'COMPLETED', advanced = TRUE, finished_at = NOW(), updated_at = NOW(),
    lease_expires_at = NULL,
    meta = ws.meta || jsonb_build_object('company_id', l.company_id, 'person_id', l.person_id)
FROM arrays, unnest(arrays.ids, arrays.companies, arrays.people) AS l(id, company_id, person_id)
WHERE ws.id = l.id;

-- name: release_unstarted_item_steps
-- A claimed chunk that no worker started (the runner is stopping): back to PENDING, and the
-- claim does not count as an attempt.
UPDATE workflow_states
SET status = 'PENDING', attempts = GREATEST(attempts - 1, 0), lease_expires_at = NULL,
    claimed_by = NULL, started_at = NULL, updated_at = NOW()
WHERE (item_id, step_name) IN (SELECT * FROM unnest(%(item_ids)s::uuid[], %(steps)s::text[]))
  AND status = 'IN_PROGRESS';
