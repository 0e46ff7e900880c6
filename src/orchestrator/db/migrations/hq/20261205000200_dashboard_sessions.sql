-- HQ database. Dashboard sessions: the signed cookie names a row here, so signing out ends the
-- session for every copy of the cookie, not only in the browser that signed out.
CREATE TABLE dashboard_sessions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    expires_at TIMESTAMPTZ NOT NULL,
    ended_at TIMESTAMPTZ
);
CREATE INDEX idx_dashboard_sessions_expiry ON dashboard_sessions(expires_at);
