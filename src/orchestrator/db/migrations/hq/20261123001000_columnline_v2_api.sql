-- HQ database. Support for the /api/columnline/ publish step.

-- POST /publish files a dossier under a named batch of its client, creating the batch the first
-- time the name is used: concurrent publishes into a new batch must find one row, not make two.
CREATE UNIQUE INDEX uq_dossier_batches_client_name ON dossier_batches(client_id, name);
