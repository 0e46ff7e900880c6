-- name: insert_upload_batch
-- The batch row of an upload, with its file's hash when the file was hashed before loading.
-- A file the client already has a batch of (idx_upload_batches_one_per_file) returns no row,
-- and nothing is inserted; an upload of it that is not committed yet makes this statement wait
-- for that upload's end. A deliberate repeat (`duplicate_allowed`) never conflicts.
INSERT INTO upload_batches
    (client_name, play_name, file_name, source_headers, file_sha256, duplicate_allowed, status,
     reuse_results, credit_cap)
VALUES
    (%(client_name)s, %(play_name)s, %(file_name)s, %(headers)s, %(sha256)s,
     %(duplicate_allowed)s, %(status)s, %(reuse_results)s, %(credit_cap)s)
ON CONFLICT (client_name, file_sha256) WHERE NOT duplicate_allowed DO NOTHING
RETURNING id;

-- name: copy_raw_rows
COPY raw_apollo_uploads (batch_id, row_number, raw_values) FROM STDIN;

-- name: find_batch_by_file
-- The one batch of a client's file (deliberate repeats aside), with its stored row count.
SELECT id, row_count FROM upload_batches
WHERE client_name = %(client_name)s AND file_sha256 = %(sha256)s AND NOT duplicate_allowed;

-- name: start_first_step
-- Every item of a new batch waits at the play's first step.
INSERT INTO workflow_states (batch_id, item_id, step_name, step_number)
SELECT batch_id, id, %(step)s, %(number)s FROM batch_items WHERE batch_id = %(batch_id)s;

-- name: claim_upload_file
-- The hash of a file known only once it was read (a stream that cannot seek): setting it on a
-- batch that is not a deliberate repeat raises a unique violation when the client already has
-- a batch of the file.
UPDATE upload_batches
SET file_sha256 = %(sha256)s, duplicate_allowed = %(duplicate_allowed)s
WHERE id = %(batch_id)s;

-- name: finish_upload_batch
UPDATE upload_batches
SET row_count = %(rows)s, updated_at = NOW()
WHERE id = %(batch_id)s;

-- name: create_upload_staging
-- Template over {staging} and {column_defs}. The data records of an upload as COPY reads them,
-- one text column per CSV column. COPY fills `ordinal` in file order, blank records included,
-- so a record's row number is ordinal + 1 (the header is row 1).
CREATE TEMP TABLE {staging} (
    ordinal BIGINT GENERATED ALWAYS AS IDENTITY,
    {column_defs}
) ON COMMIT DROP;

-- name: copy_upload_staging
-- Template over {staging} and {columns}. FORCE_NOT_NULL: an empty value is '', as the csv module
-- reads it, whether quoted or not.
COPY {staging} ({columns}) FROM STDIN (FORMAT csv, FORCE_NOT_NULL ({columns}));

-- name: project_staged_upload
-- Template over {staging}, {columns}, {item_columns}, {item_values}, {non_blank} and
-- repeated_header (unbraced here: formatting fills comments too, and a header name in it may
-- hold a line end). Raw rows, batch items and their first step straight from the staged records,
-- in one pass each, skipping blank records and repeats of the header (two exports in one file).
-- Counts the items and the repeated headers, so the caller knows how many records were blank.
WITH raw_rows AS (
    INSERT INTO raw_apollo_uploads (batch_id, row_number, raw_values)
    SELECT %(batch_id)s, ordinal + 1, ARRAY[{columns}] FROM {staging}
    WHERE {non_blank} AND NOT {repeated_header}
), items AS (
    INSERT INTO batch_items (batch_id, row_number, {item_columns})
    SELECT %(batch_id)s, ordinal + 1, {item_values} FROM {staging}
    WHERE {non_blank} AND NOT {repeated_header}
    RETURNING id
), first_states AS (
    INSERT INTO workflow_states (batch_id, item_id, step_name, step_number)
    SELECT %(batch_id)s, id, %(step)s, %(number)s FROM items
)
SELECT
    (SELECT count(*) FROM items) AS rows,
    (SELECT count(*) FROM {staging} WHERE {repeated_header}) AS repeated_headers;
