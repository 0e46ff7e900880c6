-- Workspace database: enrichment data storage. Destination tables of registry workflows whose
-- destination_db is 'workspace'. Rows are written only by the generic storage worker.

CREATE TABLE company_homepage_scrapes (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id UUID NOT NULL,
    company_domain TEXT,
    homepage_html TEXT,
    scraped_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_company_homepage_scrapes_company ON company_homepage_scrapes(company_id);

CREATE TABLE company_case_studies_page (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id UUID NOT NULL,
    company_domain TEXT,
    case_studies_url TEXT,
    page_html TEXT,
    created_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_company_case_studies_page_company ON company_case_studies_page(company_id);
