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
SET status = 'COMPLETED', finished_at = NOW(), updated_at = NOW(), lease_expires_at = NULL
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

-- name: split_link_companies
UPDATE batch_items bi SET company_id = c.id
FROM normalized_companies c
WHERE bi.id = ANY(%(item_ids)s::uuid[])
  AND c.batch_id = bi.batch_id AND c.domain = bi.normalized->>'company_domain';

-- name: split_insert_people
-- People are deduplicated within the batch by email, else LinkedIn URL.
INSERT INTO normalized_people
    (batch_id, batch_item_id, company_id, dedupe_key, first_name, last_name, full_name, title,
     email, linkedin_url)
SELECT DISTINCT ON (bi.batch_id, bi.normalized->>'person_key')
       bi.batch_id, bi.id, bi.company_id, bi.normalized->>'person_key',
       bi.normalized->>'first_name', bi.normalized->>'last_name', bi.normalized->>'full_name',
       bi.normalized->>'title', bi.normalized->>'email', bi.normalized->>'person_linkedin_url'
FROM batch_items bi
WHERE bi.id = ANY(%(item_ids)s::uuid[]) AND bi.company_id IS NOT NULL
ORDER BY bi.batch_id, bi.normalized->>'person_key', bi.row_number
ON CONFLICT (batch_id, dedupe_key) DO NOTHING;

-- name: split_link_people_and_complete
WITH linked AS (
    UPDATE batch_items bi SET person_id = p.id
    FROM normalized_people p
    WHERE bi.id = ANY(%(item_ids)s::uuid[])
      AND p.batch_id = bi.batch_id AND p.dedupe_key = bi.normalized->>'person_key'
    RETURNING bi.id, bi.company_id, bi.person_id
)
UPDATE workflow_states ws
SET status = 'COMPLETED', finished_at = NOW(), updated_at = NOW(), lease_expires_at = NULL,
    meta = ws.meta || jsonb_build_object('company_id', linked.company_id,
                                         'person_id', linked.person_id)
FROM linked
WHERE ws.item_id = linked.id AND ws.step_name = %(step)s AND ws.status = 'IN_PROGRESS';
