-- HQ database. A manual play over companies (seed: "user clicks Run Step 1"): its first step
-- scrapes each company's homepage through Zenrows into the Workspace database.
INSERT INTO db_driven_enrichment_workflows (
    workflow_slug, title, overall_step_number, provider, entity_type,
    destination_db, destination_table_name, destination_field_mappings,
    webhook_url_secret_name, credits_per_call, timeout_seconds, max_attempts, provider_params
) VALUES (
    'scrape-homepage-via-zenrows', 'Scrape Homepage', 1, 'zenrows', 'company',
    'workspace', 'company_homepage_scrapes',
    '{"homepage_html": "homepage_html", "scraped_at": "scraped_at"}',
    'ZENROWS_API_KEY', 1, 300, 3,
    '{"js_render": true, "premium_proxy": true}'
);

INSERT INTO play_steps (play_name, step_number, workflow_slug) VALUES
    ('company-research', 1, 'scrape-homepage-via-zenrows');
