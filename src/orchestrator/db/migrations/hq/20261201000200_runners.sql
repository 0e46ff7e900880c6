-- Who is working on what, so that recovery waits only for what can still answer.

-- A local process that claims work (`enrich run`, `enrich serve`). It beats its
-- heart while alive. One whose heart stopped, that said it stopped, or whose pid is gone from
-- its own host is dead: its claims are released at once, and the calls its built-in simulator
-- accepted will never be answered, so they are sent again at once.
CREATE TABLE runners (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    hostname TEXT NOT NULL,
    pid INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('local')),
    started_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    stopped_at TIMESTAMPTZ
);
CREATE INDEX idx_runners_alive ON runners(heartbeat_at) WHERE stopped_at IS NULL;

-- The runner that claimed an item-step. No foreign key: it is written on the hot path, and a
-- runner row may be cleaned up long after.
ALTER TABLE workflow_states ADD COLUMN claimed_by UUID;

-- The runner that made a provider call, and whether the provider was that runner's own
-- built-in simulator (which dies with it).
ALTER TABLE entity_dispatches ADD COLUMN runner_id UUID;
ALTER TABLE entity_dispatches ADD COLUMN simulated BOOLEAN NOT NULL DEFAULT FALSE;

-- A dispatch replaced by a newer attempt ends SUPERSEDED: every dispatch reaches a final status.
ALTER TABLE entity_dispatches DROP CONSTRAINT entity_dispatches_status_check;
ALTER TABLE entity_dispatches ADD CONSTRAINT entity_dispatches_status_check
    CHECK (status IN ('SENDING', 'SENT', 'FAILED', 'STORED', 'CALLED_BACK', 'SUPERSEDED'));
