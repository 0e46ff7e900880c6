-- name: lead_filters
-- A LeadFilter's conditions on final_leads f and its batch b, composed into the lead queries
-- below as {filters}. Every statement is planned for its parameters, so a filter left NULL
-- folds away to TRUE before planning. Substrings arrive lower-cased; the keyset condition
-- (the page after a cursor) is a range of idx_final_leads_name.
(%(client)s::text IS NULL OR b.client_name = %(client)s)
AND (%(batch_id)s::uuid IS NULL OR f.batch_id = %(batch_id)s)
AND (%(company)s::text IS NULL
     OR strpos(lower(f.company_name), %(company)s) > 0
     OR strpos(lower(f.company_domain), %(company)s) > 0)
AND (%(title)s::text IS NULL OR strpos(lower(f.title), %(title)s) > 0)
AND (%(search)s::text IS NULL
     OR strpos(lower(f.full_name), %(search)s) > 0
     OR strpos(lower(f.email), %(search)s) > 0)
AND (%(after_name)s::text IS NULL
     OR (COALESCE(f.full_name, ''), f.id) > (%(after_name)s::text, %(after_id)s::uuid))

-- name: lead_columns
-- What a lead row shows, text never NULL; composed into the statements below as
-- {lead_columns}.
COALESCE(f.full_name, '') AS full_name, COALESCE(f.title, '') AS title,
COALESCE(f.email, '') AS email, COALESCE(f.company_name, '') AS company_name,
COALESCE(f.company_domain, '') AS company_domain, COALESCE(f.linkedin_url, '') AS linkedin_url

-- name: leads_page
SELECT f.id, f.batch_id, b.client_name, {lead_columns}
FROM final_leads f
JOIN upload_batches b ON b.id = f.batch_id
WHERE {filters}
ORDER BY COALESCE(f.full_name, ''), f.id
LIMIT %(limit)s;

-- name: alumni_first_match
-- The first past job (in work-history order) of lead l at a customer of l's client; composed
-- into the alumni queries as {first_match}.
SELECT j.customer_name, j.customer_domain, j.company_name AS job_company, j.title AS job_title,
       j.start_date, j.end_date
FROM customer_alumni_jobs j
WHERE j.person_id = l.person_id AND j.client_name = l.client_name
ORDER BY j.position, j.customer_id
LIMIT 1

-- name: alumni_walk
-- Alumni from the leads' side: the next leads in name order, at most %(window)s of them, each
-- looked up in customer_alumni_jobs by its person, until %(limit)s are found. Fast wherever
-- alumni are common. Always one row at least: how many leads the window held and the last of
-- them (where alumni_after goes on when the window was full and found too few).
WITH walk AS NOT MATERIALIZED (
    SELECT f.id, f.batch_id, f.person_id, b.client_name, {lead_columns}
    FROM final_leads f
    JOIN upload_batches b ON b.id = f.batch_id
    WHERE {filters}
    ORDER BY COALESCE(f.full_name, ''), f.id
    LIMIT %(window)s
)
SELECT e.walked, e.full_name AS walked_to_name, e.id AS walked_to_id, p.*
FROM (VALUES (1)) AS one(x)
LEFT JOIN LATERAL (
    SELECT full_name, id, count(*) OVER () AS walked
    FROM walk ORDER BY full_name DESC, id DESC LIMIT 1
) e ON TRUE
LEFT JOIN LATERAL (
    SELECT l.*, m.*
    FROM walk l
    CROSS JOIN LATERAL ({first_match}) m
    ORDER BY l.full_name, l.id
    LIMIT %(limit)s
) p ON TRUE;

-- name: alumni_after
-- Alumni from the customers' side: the jobs at the client's customers through the expression
-- indexes (once, as an array), their leads, the first %(limit)s of those in name order, then
-- each one's first matching job. Costs what the customers and their alumni number, so it is
-- for where alumni are rare. Run with hash joins off (leads_hash_joins_off).
SELECT l.*, m.*
FROM (
    SELECT f.id, f.batch_id, f.person_id, b.client_name, {lead_columns}
    FROM final_leads f
    JOIN upload_batches b ON b.id = f.batch_id
    WHERE {filters}
      AND f.person_id = ANY (ARRAY(
          SELECT j.person_id FROM customer_alumni_jobs j
          WHERE %(client)s::text IS NULL OR j.client_name = %(client)s))
    ORDER BY COALESCE(f.full_name, ''), f.id
    LIMIT %(limit)s
) l
CROSS JOIN LATERAL ({first_match}) m
ORDER BY l.full_name, l.id;

-- name: alumni_count
-- Leads of the filter with a past job at a customer of their client, found as in
-- alumni_after (a job's person is a lead of the job's batch, so the person alone ties a job
-- to its lead and client). Run with hash joins off (leads_hash_joins_off).
SELECT count(*) AS leads
FROM final_leads f
JOIN upload_batches b ON b.id = f.batch_id
WHERE {filters}
  AND f.person_id = ANY (ARRAY(
      SELECT j.person_id FROM customer_alumni_jobs j
      WHERE %(client)s::text IS NULL OR j.client_name = %(client)s));

-- name: leads_hash_joins_off
-- The planner charges nothing for computing a hash key, so it would hash every job's
-- company_domain_key (regular expressions) rather than look the customers' keys up in the
-- expression indexes: off until the transaction (or savepoint) ends, with the value before.
SELECT current_setting('enable_hashjoin') AS hashjoin,
       set_config('enable_hashjoin', 'off', TRUE) AS hashjoin_now;

-- name: leads_restore_hash_joins
SELECT set_config('enable_hashjoin', %(hashjoin)s, TRUE);

-- name: lead_clients
SELECT DISTINCT client_name FROM upload_batches ORDER BY client_name;

-- name: customer_count
SELECT count(*) AS customers FROM client_customers WHERE client_name = %(client)s;

-- name: customers_page
SELECT id, name, domain
FROM client_customers
WHERE client_name = %(client)s
  AND (%(after_name)s::text IS NULL OR (name, id) > (%(after_name)s::text, %(after_id)s::bigint))
ORDER BY name, id
LIMIT %(limit)s;

-- name: customers_lock
-- One upload of a client's list at a time: a second waits, then replaces the first's list
-- whole instead of mixing the two.
SELECT pg_advisory_xact_lock(hashtextextended('client_customers:' || %(client)s, 0));

-- name: customers_first_bad_row
-- The first row the matching could not use: a domain that is not one, or no domain and a
-- name with nothing to match by.
SELECT r.row_number, r.name, r.domain, r.domain <> '' AS bad_domain
FROM unnest(%(rows)s::int[], %(names)s::text[], %(domains)s::text[])
     AS r(row_number, name, domain)
WHERE (r.domain <> '' AND company_domain_key(r.domain) IS NULL)
   OR (r.domain = '' AND company_name_key(r.name) IS NULL)
ORDER BY r.row_number
LIMIT 1;

-- name: customers_delete
DELETE FROM client_customers WHERE client_name = %(client)s;

-- name: customers_insert
-- In file order, so that of two rows with one key the first is kept; the others are
-- duplicates (idx_client_customers_domain, idx_client_customers_name_only).
INSERT INTO client_customers (client_name, name, domain, name_key)
SELECT %(client)s, COALESCE(NULLIF(r.name, ''), k.domain), k.domain,
       company_name_key(NULLIF(r.name, ''))
FROM unnest(%(rows)s::int[], %(names)s::text[], %(domains)s::text[])
     AS r(row_number, name, domain)
CROSS JOIN LATERAL (SELECT company_domain_key(NULLIF(r.domain, '')) AS domain) k
ORDER BY r.row_number
ON CONFLICT DO NOTHING;
