-- HQ database. Orchestrator passes requested from many containers (receivers, step functions)
-- are coalesced through the batch row: a request inside the window of an already scheduled pass
-- schedules nothing, and the scheduled pass runs at the end of its window so it sees them all.
ALTER TABLE upload_batches ADD COLUMN next_pass_at TIMESTAMPTZ;
