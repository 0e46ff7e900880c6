-- What a forecast reads of a stored batch; it writes nothing.

-- name: forecast_batch
SELECT id, client_name, play_name, file_name, created_at, reuse_results, status
FROM upload_batches WHERE id = %(batch_id)s;

-- name: forecast_batch_items
-- A page of the batch's rows in file order, after row `after_row`: the fields the normalize
-- step reads ({item_columns}: the Apollo fields). Paged on the (batch_id, row_number) key, so
-- a batch of any size is read with flat memory.
SELECT row_number, {item_columns} FROM batch_items
WHERE batch_id = %(batch_id)s AND row_number > %(after_row)s
ORDER BY row_number
LIMIT %(page)s;
