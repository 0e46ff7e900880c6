-- HQ database. A receiver stores a callback's result and marks its dispatch STORED in one
-- statement, and answers; the next orchestrator pass completes every STORED dispatch of the
-- batch (entity, waiting items, log, step completion) in one set-based statement. The partial
-- index keeps that lookup proportional to the callbacks waiting, not to the dispatch history.
ALTER TABLE entity_dispatches DROP CONSTRAINT entity_dispatches_status_check;
ALTER TABLE entity_dispatches ADD CONSTRAINT entity_dispatches_status_check
    CHECK (status IN ('SENDING', 'SENT', 'FAILED', 'STORED', 'CALLED_BACK'));
CREATE INDEX idx_entity_dispatches_stored ON entity_dispatches(batch_id, entity_type)
    WHERE status = 'STORED';

-- "Did this item make a call for this workflow?" is asked for every item a result completes;
-- one index that answers it whole keeps the plan an index probe whatever the statistics say.
CREATE INDEX idx_entity_dispatches_sender_workflow
    ON entity_dispatches(sender_item_id, workflow_slug);
DROP INDEX idx_entity_dispatches_sender;
