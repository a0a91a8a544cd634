-- longops schema, version 1 (SQLite).
-- Differs from PostgreSQL in types only: ids and times are TEXT (times as fixed-width UTC
-- 'YYYY-MM-DD HH:MM:SS.ffffff', which sorts as it compares), JSON is TEXT, booleans are
-- INTEGER, and entry_no is the rowid so that FIFO order costs nothing.

CREATE TABLE longops_companies (
    name          TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    time_zone     TEXT NOT NULL DEFAULT 'UTC',
    active        INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now'))
);

INSERT INTO longops_companies (name, display_name, time_zone) VALUES ('default', 'Default', 'UTC');

CREATE TABLE longops_categories (
    company         TEXT NOT NULL REFERENCES longops_companies (name),
    code            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    max_concurrent  INTEGER NOT NULL DEFAULT 1 CONSTRAINT category_max_concurrent CHECK (max_concurrent BETWEEN 1 AND 1000),
    paused          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (company, code)
);

CREATE TABLE longops_paused_queues (
    name       TEXT PRIMARY KEY,
    paused_at  TEXT NOT NULL
);

CREATE TABLE longops_sessions (
    id                 TEXT PRIMARY KEY,
    host               TEXT NOT NULL,
    pid                INTEGER NOT NULL,
    queues             TEXT NOT NULL,
    concurrency        INTEGER NOT NULL,
    state              TEXT NOT NULL CONSTRAINT session_state CHECK (state IN ('active', 'draining', 'stopped', 'lost')),
    started_at         TEXT NOT NULL,
    last_heartbeat_at  TEXT NOT NULL,
    ended_at           TEXT
);

CREATE INDEX longops_sessions_live ON longops_sessions (last_heartbeat_at) WHERE state IN ('active', 'draining');

CREATE TABLE longops_session_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id  TEXT NOT NULL,
    type        TEXT NOT NULL CONSTRAINT session_event_type CHECK (type IN ('logon', 'logoff', 'lost', 'drain_started', 'heartbeat_resumed')),
    at          TEXT NOT NULL,
    comment     TEXT
);

CREATE INDEX longops_session_events_session ON longops_session_events (session_id, at);

CREATE TABLE longops_operations (
    entry_no             INTEGER PRIMARY KEY AUTOINCREMENT,
    id                   TEXT NOT NULL UNIQUE,
    company              TEXT NOT NULL REFERENCES longops_companies (name),
    task                 TEXT NOT NULL,
    args                 TEXT NOT NULL,
    description          TEXT,
    queue                TEXT NOT NULL,
    category             TEXT,
    priority             INTEGER NOT NULL DEFAULT 2000 CONSTRAINT operation_priority CHECK (priority IN (1000, 2000, 3000)),
    status               TEXT NOT NULL CONSTRAINT operation_status CHECK (status IN ('on_hold', 'ready', 'in_process', 'finished', 'error', 'cancelled')),
    status_reason        TEXT,
    earliest_start_at    TEXT NOT NULL,
    expires_at           TEXT,
    max_attempts         INTEGER NOT NULL DEFAULT 1 CONSTRAINT operation_max_attempts CHECK (max_attempts BETWEEN 1 AND 100),
    attempt_count        INTEGER NOT NULL DEFAULT 0 CONSTRAINT operation_attempt_count CHECK (attempt_count >= 0),
    run_count            INTEGER NOT NULL DEFAULT 0,
    rerun_delay          INTEGER NOT NULL DEFAULT 0 CONSTRAINT operation_rerun_delay CHECK (rerun_delay BETWEEN 0 AND 3600),
    retry_policy         TEXT,
    timeout_seconds      REAL NOT NULL DEFAULT 43200,
    recurrence           TEXT,
    user_name            TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    ready_at             TEXT,
    started_at           TEXT,
    ended_at             TEXT,
    last_error           TEXT,
    result               TEXT,
    lease_token          TEXT,
    session_id           TEXT,
    dedup_key            TEXT,
    labels               TEXT NOT NULL DEFAULT '{}',
    cancel_requested_at  TEXT,
    cancel_requested_by  TEXT,
    cancel_reason        TEXT,
    FOREIGN KEY (company, category) REFERENCES longops_categories (company, code),
    -- A running operation always has a lease and a session; nothing else has either.
    CONSTRAINT operation_lease CHECK ((status = 'in_process') = (lease_token IS NOT NULL AND session_id IS NOT NULL)),
    -- A terminal operation records when it ended.
    CONSTRAINT operation_ended CHECK (status NOT IN ('finished', 'error', 'cancelled') OR ended_at IS NOT NULL)
);

-- The claim walks this index in order (High -> Normal -> Low, then FIFO) and stops after
-- the batch; queue, start and expiry are checked on the rows it passes.
CREATE INDEX longops_operations_ready_fifo ON longops_operations (priority, entry_no) WHERE status = 'ready' AND category IS NULL;
-- When is the next operation of these queues due (how long a dispatcher may sleep).
CREATE INDEX longops_operations_ready_due ON longops_operations (queue, earliest_start_at) WHERE status = 'ready';
-- Slots taken per category.
CREATE INDEX longops_operations_busy ON longops_operations (company, category) WHERE status = 'in_process' AND category IS NOT NULL;
CREATE INDEX longops_operations_ready_category ON longops_operations (company, category, priority, entry_no) WHERE status = 'ready' AND category IS NOT NULL;
CREATE INDEX longops_operations_running ON longops_operations (session_id) WHERE status = 'in_process';
CREATE INDEX longops_operations_company_status ON longops_operations (company, status, entry_no);
CREATE INDEX longops_operations_ended ON longops_operations (ended_at) WHERE status IN ('finished', 'cancelled');
CREATE INDEX longops_operations_expiring ON longops_operations (expires_at) WHERE status = 'ready' AND expires_at IS NOT NULL;
CREATE UNIQUE INDEX longops_operations_dedup ON longops_operations (company, dedup_key)
    WHERE dedup_key IS NOT NULL AND status IN ('on_hold', 'ready', 'in_process');

CREATE TABLE longops_attempts (
    entry_no       INTEGER PRIMARY KEY AUTOINCREMENT,
    operation_id   TEXT NOT NULL,
    company        TEXT NOT NULL,
    run_no         INTEGER NOT NULL,
    attempt        INTEGER NOT NULL,
    session_id     TEXT,
    user_name      TEXT,
    task           TEXT NOT NULL,
    started_at     TEXT NOT NULL,
    ended_at       TEXT,
    outcome        TEXT NOT NULL CONSTRAINT attempt_outcome CHECK (outcome IN ('in_process', 'success', 'error', 'timeout', 'cancelled', 'lost', 'interrupted', 'skipped')),
    error_message  TEXT,
    traceback      TEXT,
    UNIQUE (operation_id, run_no)
);

CREATE INDEX longops_attempts_ended ON longops_attempts (ended_at);

CREATE TABLE longops_leaders (
    name        TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
