-- A client's customers, and the "alumni" filter: leads with a past job at one of their client's
-- customers. One matching rule, in SQL, used by both sides: a customer and a job match by
-- normalized domain when both know a domain, else by normalized company name.

-- The host of a website or domain written in any shape ("HTTPS://WWW.Acme.com:443/about"
-- -> "acme.com"), or NULL when it is not a host name (blank, "n/a", an IP address, an e-mail
-- address). No public suffix list: a function an index uses must be IMMUTABLE, and the list
-- changes; so "blog.acme.com" stays itself. IDNs are compared as written (no punycode).
-- plpgsql, not inlined SQL, so that the planner knows what a call costs (COST) and keeps it
-- out of plans that would run it on every job; the indexes below hold its values.
CREATE FUNCTION company_domain_key(raw TEXT) RETURNS TEXT
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE COST 1000 AS $$
BEGIN
    RETURN substring(
        regexp_replace(
            regexp_replace(
                substring(
                    regexp_replace(lower(btrim(raw)), '^(?:[a-z][a-z0-9+.-]*:)?//', '')
                    FROM '^[^/?#\\]*'),
                ':[0-9]*$', ''),
            -- "www." only in front of a name that still has a dot: www.com is a domain.
            '^www[0-9]*\.(?=.*\.)|\.$', '', 'g')
        FROM '^(?:[a-z0-9\u00a1-\U0010ffff](?:[a-z0-9\u00a1-\U0010ffff-]*[a-z0-9\u00a1-\U0010ffff])?\.)+'
             '[a-z\u00a1-\U0010ffff](?:[a-z0-9\u00a1-\U0010ffff-]*[a-z0-9\u00a1-\U0010ffff])?$');
END;
$$;

-- A company name with case, punctuation, whitespace and trailing legal forms left out:
-- "Acme, Inc.", "ACME INC" and "Acme L.L.C." are all "acme". Dots and apostrophes join
-- ("S.A." is "sa", "Macy's" is "macys"); other ASCII and common Unicode punctuation separates.
-- The first word is never taken for a legal form ("Company" stays "company"). NULL when
-- nothing is left.
CREATE FUNCTION company_name_key(name TEXT) RETURNS TEXT
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE COST 1000 AS $$
BEGIN
    RETURN NULLIF(replace(
        regexp_replace(
            btrim(regexp_replace(
                regexp_replace(lower(name), '[.''\u2018\u2019]', '', 'g'),
                '[\x01-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f\u00a0-\u00bf\u2000-\u206f\u2122]+',
                ' ', 'g')),
            '(?: (?:inc|incorporated|llc|llp|lp|ltd|limited|gmbh|corp|corporation|co|company'
            '|sa|sas|sarl|srl|spa|sl|bv|nv|ag|plc|pty|pte|pvt|oy|ab|kk|se))+$',
            ''),
        ' ', ''), '');
END;
$$;

-- Replaced whole by each upload of the client's list. `domain` and `name_key` are the two
-- functions' values, stored at upload. A customer with no name has no name_key (domain only).
CREATE TABLE client_customers (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_name TEXT NOT NULL,
    -- As written in the file; the domain when the file gave no name.
    name TEXT NOT NULL,
    domain TEXT,
    name_key TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CHECK (domain IS NOT NULL OR name_key IS NOT NULL)
);
-- One customer per key it is matched by: its domain when known, else its name. These also
-- serve the lookups of a job's keys within a client.
CREATE UNIQUE INDEX idx_client_customers_domain ON client_customers(client_name, domain);
CREATE UNIQUE INDEX idx_client_customers_name_only ON client_customers(client_name, name_key)
    WHERE domain IS NULL;
CREATE INDEX idx_client_customers_name_key ON client_customers(client_name, name_key);

-- The work-history side: from a customer to the jobs at it without computing both keys for
-- every job. Not partial (WHERE NOT is_current), because the planner has statistics on the
-- expressions of a full index only, and without them it guesses thousands of jobs per key.
CREATE INDEX idx_person_work_history_domain_key
    ON person_work_history(company_domain_key(company_domain), is_current);
-- With the domain key, so that "no domain" is an index condition too.
CREATE INDEX idx_person_work_history_name_key
    ON person_work_history(company_name_key(company_name), is_current,
                           company_domain_key(company_domain));

-- The rule, stated once: each past job of a lead at a customer of the lead's client, with the
-- customer. Three disjoint branches, each an equality on an index: both sides know a domain
-- (equal domains); the customer has none (equal names); the job has none (equal names).
CREATE VIEW customer_alumni_jobs AS
SELECT c.client_name, c.id AS customer_id, c.name AS customer_name, c.domain AS customer_domain,
       w.id AS job_id, w.person_id, w.position, w.company_name, w.title, w.start_date,
       w.end_date
FROM client_customers c
JOIN person_work_history w
  ON company_domain_key(w.company_domain) = c.domain AND NOT w.is_current
JOIN upload_batches b ON b.id = w.batch_id AND b.client_name = c.client_name
UNION ALL
SELECT c.client_name, c.id, c.name, c.domain, w.id, w.person_id, w.position, w.company_name,
       w.title, w.start_date, w.end_date
FROM client_customers c
JOIN person_work_history w
  ON company_name_key(w.company_name) = c.name_key AND NOT w.is_current
JOIN upload_batches b ON b.id = w.batch_id AND b.client_name = c.client_name
WHERE c.domain IS NULL
UNION ALL
SELECT c.client_name, c.id, c.name, c.domain, w.id, w.person_id, w.position, w.company_name,
       w.title, w.start_date, w.end_date
FROM client_customers c
JOIN person_work_history w
  ON company_name_key(w.company_name) = c.name_key AND NOT w.is_current
 AND company_domain_key(w.company_domain) IS NULL
JOIN upload_batches b ON b.id = w.batch_id AND b.client_name = c.client_name
WHERE c.domain IS NOT NULL;

-- Lead lists are paged by name without OFFSET: the page after (name, id) is an index range.
CREATE INDEX idx_final_leads_name ON final_leads((COALESCE(full_name, '')), id);
