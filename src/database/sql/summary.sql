-- name: batch_summary
-- "completed" counts items that finished the play's last step.
SELECT b.status,
       (SELECT count(*) FROM batch_items WHERE batch_id = b.id) AS items,
       (SELECT count(*) FROM normalized_companies WHERE batch_id = b.id) AS companies,
       (SELECT count(*) FROM normalized_people WHERE batch_id = b.id) AS people,
       (SELECT count(*) FROM workflow_states ws
         WHERE ws.batch_id = b.id AND ws.status = 'COMPLETED'
           AND ws.step_number = (SELECT max(step_number) FROM play_steps
                                 WHERE play_name = b.play_name)) AS completed,
       (SELECT count(DISTINCT item_id) FROM workflow_states
         WHERE batch_id = b.id AND status = 'FAILED') AS failed
FROM upload_batches b
WHERE b.id = %(batch_id)s;

-- name: batch_failure_reasons
SELECT step_name,
       COALESCE(meta->>'reason', meta->>'error', 'unknown') AS reason,
       count(*) AS items
FROM workflow_states
WHERE batch_id = %(batch_id)s AND status = 'FAILED'
GROUP BY 1, 2
ORDER BY 3 DESC, 1, 2
LIMIT 5;
