-- Limits that every process and container sending to one provider account shares.

-- Clay limits rows per second per workspace, across its webhooks. One row per account holds the
-- theoretical arrival time of the next row (GCRA): reserving a send is one statement that
-- moves it on by 1/rate and says how long to wait, from any number of processes at once.
CREATE TABLE provider_rate_limits (
    account TEXT PRIMARY KEY,
    next_free_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- A workflow whose every webhook has used its lifetime submissions sends nothing more until a
-- new webhook is configured: passes leave its item-steps PENDING, and the reason tells what to add.
CREATE TABLE provider_holds (
    workflow_slug TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    held_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
