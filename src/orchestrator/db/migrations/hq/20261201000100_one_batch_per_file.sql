-- One batch per file per client, kept by the database rather than by a read before an insert:
-- two uploads of one file at once (two `enrich run`s, concurrent POST /batches) used to both
-- find no batch and both insert one, and Clay was paid twice.
--
-- `duplicate_allowed` marks a deliberate repeat (`--allow-duplicate`, `allow_duplicate=true`),
-- which the unique index below leaves out; every other batch is the one batch of its file.
ALTER TABLE upload_batches ADD COLUMN duplicate_allowed BOOLEAN NOT NULL DEFAULT FALSE;

-- Repeats already stored (made before this index, or deliberately): all but the oldest of each
-- client's file become deliberate repeats, so the index can be built and a later upload of the
-- file continues the oldest batch.
UPDATE upload_batches b
SET duplicate_allowed = TRUE
FROM (
    SELECT id, row_number() OVER (
        PARTITION BY client_name, file_sha256 ORDER BY created_at, id
    ) AS position
    FROM upload_batches
    WHERE file_sha256 IS NOT NULL
) ranked
WHERE b.id = ranked.id AND ranked.position > 1;

CREATE UNIQUE INDEX idx_upload_batches_one_per_file
    ON upload_batches(client_name, file_sha256) WHERE NOT duplicate_allowed;

-- The unique index serves every lookup the old one did.
DROP INDEX idx_upload_batches_file;
