-- longops schema, version 6 (PostgreSQL): the pages' sign-in sessions, kept server-side so
-- that signing out, disabling a user or "sign out everywhere" ends them at once, whatever
-- copy of the cookie is still around. The cookie carries the session's secret; the table
-- keeps only its SHA-256 (as for API tokens), so a read of this table signs nobody in.

CREATE TABLE longops_web_sessions (
    id            uuid PRIMARY KEY,
    user_name     text NOT NULL REFERENCES longops_users (name) ON DELETE CASCADE,
    secret_hash   text NOT NULL,
    created_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    client        text NOT NULL DEFAULT '' CONSTRAINT web_session_client CHECK (length(client) <= 300)
);

-- A user's sessions (the list, "sign out everywhere"), live ones first.
CREATE INDEX longops_web_sessions_user ON longops_web_sessions (user_name, created_at);
