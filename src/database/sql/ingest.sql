-- name: insert_upload_batch
INSERT INTO upload_batches (client_name, play_name, file_name, source_headers)
VALUES (%(client_name)s, %(play_name)s, %(file_name)s, %(headers)s)
RETURNING id;

-- name: copy_raw_rows
COPY raw_apollo_uploads (batch_id, row_number, raw_values) FROM STDIN;

-- name: find_batch_by_file
SELECT id FROM upload_batches
WHERE client_name = %(client_name)s AND file_sha256 = %(sha256)s
ORDER BY created_at
LIMIT 1;

-- name: start_first_step
-- Every item of a new batch waits at the play's first step.
INSERT INTO workflow_states (batch_id, item_id, step_name, step_number)
SELECT batch_id, id, %(step)s, %(number)s FROM batch_items WHERE batch_id = %(batch_id)s;

-- name: finish_upload_batch
UPDATE upload_batches
SET row_count = %(rows)s, file_sha256 = %(sha256)s, updated_at = NOW()
WHERE id = %(batch_id)s;
