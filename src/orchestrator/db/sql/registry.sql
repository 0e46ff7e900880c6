-- name: load_play
-- The ordered steps of a play, each with its workflow configuration.
SELECT p.step_number, w.*
FROM play_steps p
JOIN db_driven_enrichment_workflows w ON w.workflow_slug = p.workflow_slug
WHERE p.play_name = %(play_name)s
ORDER BY p.step_number;

-- name: load_workflow
SELECT * FROM db_driven_enrichment_workflows WHERE workflow_slug = %(slug)s;
