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

-- Partial indexes whose predicate is "status = 'IN_PROGRESS'" invite the planner, whose
-- statistics lag a batch that moves thousands of rows a second, to find a handful of rows by
-- id through a scan of every IN_PROGRESS row, once per row. The sweeper's indexes are keyed on
-- the lease itself instead (set exactly while a row is IN_PROGRESS), and the claim index holds
-- PENDING rows only.
DROP INDEX idx_workflow_states_pending;
CREATE INDEX idx_workflow_states_pending ON workflow_states(batch_id) WHERE status = 'PENDING';
DROP INDEX idx_workflow_states_lease;
CREATE INDEX idx_workflow_states_lease ON workflow_states(lease_expires_at)
    WHERE lease_expires_at IS NOT NULL;
DROP INDEX idx_company_workflow_states_lease;
CREATE INDEX idx_company_workflow_states_lease ON company_workflow_states(lease_expires_at)
    WHERE lease_expires_at IS NOT NULL;
DROP INDEX idx_person_workflow_states_lease;
CREATE INDEX idx_person_workflow_states_lease ON person_workflow_states(lease_expires_at)
    WHERE lease_expires_at IS NOT NULL;
