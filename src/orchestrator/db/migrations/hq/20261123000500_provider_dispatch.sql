-- HQ database. What was sent to external providers, what it cost, and callbacks we refused.

-- One row per external call for an entity: the per-dispatch token is derived from this id.
CREATE TABLE entity_dispatches (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    batch_id UUID REFERENCES upload_batches(id) ON DELETE CASCADE,
    entity_type TEXT NOT NULL CHECK (entity_type IN ('company', 'person')),
    entity_id UUID NOT NULL,
    workflow_slug TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    -- The item whose step made this call; every other item of the entity reuses its result.
    sender_item_id UUID,
    -- Set for manual play runs: the play step a result completes.
    play_name TEXT,
    step_number INTEGER,
    provider TEXT NOT NULL,
    webhook_key TEXT,
    status TEXT NOT NULL DEFAULT 'SENDING'
        CHECK (status IN ('SENDING', 'SENT', 'FAILED', 'CALLED_BACK')),
    credits NUMERIC(12, 4) NOT NULL DEFAULT 0,
    http_status INTEGER,
    error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    sent_at TIMESTAMPTZ,
    callback_at TIMESTAMPTZ,
    UNIQUE (entity_id, workflow_slug, attempt)
);
CREATE INDEX idx_entity_dispatches_batch ON entity_dispatches(batch_id, workflow_slug);
CREATE INDEX idx_entity_dispatches_sender ON entity_dispatches(sender_item_id);

-- A Clay webhook source accepts a limited number of submissions in its lifetime.
CREATE TABLE webhook_submission_counts (
    webhook_key TEXT PRIMARY KEY,
    webhook_host TEXT NOT NULL,
    submissions BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- Callbacks we could not accept, kept whole (minus secrets) so nothing is silently lost.
CREATE TABLE receiver_dead_letters (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    workflow_slug TEXT,
    http_status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    headers JSONB NOT NULL DEFAULT '{}'::jsonb,
    body TEXT
);
