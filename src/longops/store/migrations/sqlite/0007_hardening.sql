-- longops schema, version 6 (SQLite): the pages' sign-in sessions, kept server-side so that
-- signing out, disabling a user or "sign out everywhere" ends them at once. Same as
-- PostgreSQL but for types. Only the SHA-256 of the cookie's secret is stored.

CREATE TABLE longops_web_sessions (
    id            TEXT PRIMARY KEY,
    user_name     TEXT NOT NULL REFERENCES longops_users (name) ON DELETE CASCADE,
    secret_hash   TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    revoked_at    TEXT,
    client        TEXT NOT NULL DEFAULT '' CONSTRAINT web_session_client CHECK (length(client) <= 300)
);

CREATE INDEX longops_web_sessions_user ON longops_web_sessions (user_name, created_at);
