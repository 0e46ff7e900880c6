-- name: consolidate_final_leads
-- One clean row per person, from the newest stored person and company results (their own, or
-- the result of the client's earlier batch they reuse). Replaying it
-- rewrites the same values into the same rows.
WITH people AS (
    SELECT DISTINCT person_id FROM batch_items
    WHERE id = ANY(%(item_ids)s::uuid[]) AND person_id IS NOT NULL
)
INSERT INTO final_leads AS f (
    batch_id, batch_item_id, person_id, company_id, first_name, last_name, full_name, title,
    seniority, email, email_verified, linkedin_url, company_name, company_domain,
    company_linkedin_url, company_industry, company_employee_count, company_founded_year,
    company_hq_city, company_hq_country, company_revenue_range, consolidated_at)
SELECT p.batch_id, p.batch_item_id, p.id, c.id, p.first_name, p.last_name,
       COALESCE(NULLIF(pr.data->>'full_name', ''), p.full_name),
       COALESCE(NULLIF(pr.data->>'title', ''), p.title),
       pr.data->>'seniority',
       COALESCE(NULLIF(pr.data->>'email', ''), p.email),
       try_bool(pr.data->>'email_verified'),
       COALESCE(NULLIF(pr.data->>'linkedin_url', ''), p.linkedin_url),
       COALESCE(NULLIF(cr.data->>'name', ''), NULLIF(c.name, ''), c.domain),
       c.domain,
       COALESCE(NULLIF(cr.data->>'linkedin_url', ''), c.linkedin_url),
       COALESCE(NULLIF(cr.data->>'industry', ''), NULLIF(c.industry, '')),
       COALESCE(try_int(cr.data->>'employee_count'), c.employees),
       try_int(cr.data->>'founded_year'),
       cr.data->>'hq_city', cr.data->>'hq_country', cr.data->>'annual_revenue_range',
       NOW()
FROM people
JOIN normalized_people p ON p.id = people.person_id
JOIN normalized_companies c ON c.id = p.company_id
LEFT JOIN LATERAL (
    SELECT data FROM person_results r
    WHERE r.person_id = p.id ORDER BY r.created_at DESC, r.result_id LIMIT 1
) pr ON TRUE
LEFT JOIN LATERAL (
    SELECT data FROM company_results r
    WHERE r.company_id = c.id ORDER BY r.created_at DESC, r.result_id LIMIT 1
) cr ON TRUE
ON CONFLICT (person_id) DO UPDATE SET
    first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
    full_name = EXCLUDED.full_name, title = EXCLUDED.title, seniority = EXCLUDED.seniority,
    email = EXCLUDED.email, email_verified = EXCLUDED.email_verified,
    linkedin_url = EXCLUDED.linkedin_url, company_name = EXCLUDED.company_name,
    company_domain = EXCLUDED.company_domain, company_linkedin_url = EXCLUDED.company_linkedin_url,
    company_industry = EXCLUDED.company_industry,
    company_employee_count = EXCLUDED.company_employee_count,
    company_founded_year = EXCLUDED.company_founded_year,
    company_hq_city = EXCLUDED.company_hq_city, company_hq_country = EXCLUDED.company_hq_country,
    company_revenue_range = EXCLUDED.company_revenue_range, consolidated_at = NOW();

-- name: consolidate_work_history
-- One row per job in the newest person result's work_history, keyed by its position.
WITH people AS (
    SELECT DISTINCT p.id AS person_id, p.batch_id, p.batch_item_id
    FROM batch_items bi JOIN normalized_people p ON p.id = bi.person_id
    WHERE bi.id = ANY(%(item_ids)s::uuid[])
), jobs AS (
    SELECT people.*, job.value AS job, job.position::int AS position
    FROM people
    JOIN LATERAL (
        SELECT data FROM person_results r
        WHERE r.person_id = people.person_id ORDER BY r.created_at DESC, r.result_id LIMIT 1
    ) pr ON TRUE
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(pr.data->'work_history') = 'array'
             THEN pr.data->'work_history' ELSE '[]'::jsonb END
    ) WITH ORDINALITY AS job(value, position)
    WHERE jsonb_typeof(job.value) = 'object' AND NULLIF(job.value->>'company', '') IS NOT NULL
), stale AS (
    DELETE FROM person_work_history w USING people
    WHERE w.person_id = people.person_id
      AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.person_id = w.person_id
                                           AND jobs.position = w.position)
)
INSERT INTO person_work_history AS w (batch_id, batch_item_id, person_id, position, company_name,
                                      company_domain, title, start_date, end_date, is_current)
SELECT batch_id, batch_item_id, person_id, position, job->>'company', job->>'company_domain',
       job->>'title', try_date(job->>'start_date'), try_date(job->>'end_date'),
       COALESCE(try_bool(job->>'is_current'), FALSE)
FROM jobs
ON CONFLICT (person_id, position) DO UPDATE SET
    company_name = EXCLUDED.company_name, company_domain = EXCLUDED.company_domain,
    title = EXCLUDED.title, start_date = EXCLUDED.start_date, end_date = EXCLUDED.end_date,
    is_current = EXCLUDED.is_current;

-- name: batch_item_ids
SELECT array_agg(id) AS ids FROM batch_items WHERE batch_id = %(batch_id)s;
