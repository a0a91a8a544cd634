-- longops schema, version 3 (SQLite): users, permission sets per company, API tokens, the
-- audit log, per-company limits and fairness. Same as PostgreSQL but for types, and
-- without row-level security (one file, no database roles).

ALTER TABLE longops_companies ADD COLUMN max_in_process INTEGER
    CONSTRAINT company_max_in_process CHECK (max_in_process BETWEEN 1 AND 100000);
ALTER TABLE longops_companies ADD COLUMN served_seq INTEGER NOT NULL DEFAULT 0;

ALTER TABLE longops_sessions ADD COLUMN companies TEXT;

ALTER TABLE longops_operations ADD COLUMN required_permission TEXT
    CONSTRAINT operation_required_permission CHECK (required_permission IN ('JOBQUEUE-VIEW', 'JOBQUEUE-USER', 'JOBQUEUE-ADMIN', 'SUPER'));

DROP INDEX longops_operations_ready_fifo;
CREATE INDEX longops_operations_ready_company ON longops_operations (company, priority, entry_no) WHERE status = 'ready' AND category IS NULL;

CREATE TABLE longops_users (
    name           TEXT PRIMARY KEY,
    display_name   TEXT NOT NULL,
    password_hash  TEXT,
    state          TEXT NOT NULL DEFAULT 'active' CONSTRAINT user_state CHECK (state IN ('active', 'disabled')),
    is_super       INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    disabled_at    TEXT
);

CREATE TABLE longops_memberships (
    user_name       TEXT NOT NULL REFERENCES longops_users (name) ON DELETE CASCADE,
    company         TEXT NOT NULL REFERENCES longops_companies (name),
    permission_set  TEXT NOT NULL CONSTRAINT membership_permission_set CHECK (permission_set IN ('JOBQUEUE-VIEW', 'JOBQUEUE-USER', 'JOBQUEUE-ADMIN')),
    granted_at      TEXT NOT NULL,
    PRIMARY KEY (user_name, company, permission_set)
);

CREATE TABLE longops_api_tokens (
    id            TEXT PRIMARY KEY,
    user_name     TEXT NOT NULL REFERENCES longops_users (name) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    token_hash    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT,
    last_used_at  TEXT,
    revoked_at    TEXT
);

CREATE UNIQUE INDEX longops_api_tokens_name ON longops_api_tokens (user_name, name) WHERE revoked_at IS NULL;

CREATE TABLE longops_audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    company    TEXT REFERENCES longops_companies (name),
    at         TEXT NOT NULL,
    actor      TEXT,
    front_end  TEXT NOT NULL CONSTRAINT audit_front_end CHECK (front_end IN ('library', 'cli', 'api', 'web')),
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    details    TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX longops_audit_log_company ON longops_audit_log (company, id);
