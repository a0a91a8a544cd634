-- longops schema, version 1 (PostgreSQL).
-- Status values and per-status invariants are CHECK constraints kept in step with
-- longops.domain.status by tests/test_status_sync.py.

CREATE TABLE longops_companies (
    name          text PRIMARY KEY,
    display_name  text NOT NULL,
    time_zone     text NOT NULL DEFAULT 'UTC',
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);

INSERT INTO longops_companies (name, display_name, time_zone) VALUES ('default', 'Default', 'UTC');

CREATE TABLE longops_categories (
    company         text NOT NULL REFERENCES longops_companies (name),
    code            text NOT NULL,
    description     text NOT NULL DEFAULT '',
    max_concurrent  integer NOT NULL DEFAULT 1 CONSTRAINT category_max_concurrent CHECK (max_concurrent BETWEEN 1 AND 1000),
    paused          boolean NOT NULL DEFAULT false,
    PRIMARY KEY (company, code)
);

CREATE TABLE longops_paused_queues (
    name       text PRIMARY KEY,
    paused_at  timestamptz NOT NULL
);

CREATE TABLE longops_sessions (
    id                 uuid PRIMARY KEY,
    host               text NOT NULL,
    pid                integer NOT NULL,
    queues             text[] NOT NULL,
    concurrency        integer NOT NULL,
    state              text NOT NULL CONSTRAINT session_state CHECK (state IN ('active', 'draining', 'stopped', 'lost')),
    started_at         timestamptz NOT NULL,
    last_heartbeat_at  timestamptz NOT NULL,
    ended_at           timestamptz
);

CREATE INDEX longops_sessions_live ON longops_sessions (last_heartbeat_at) WHERE state IN ('active', 'draining');

CREATE TABLE longops_session_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id  uuid NOT NULL,
    type        text NOT NULL CONSTRAINT session_event_type CHECK (type IN ('logon', 'logoff', 'lost', 'drain_started', 'heartbeat_resumed')),
    at          timestamptz NOT NULL,
    comment     text
);

CREATE INDEX longops_session_events_session ON longops_session_events (session_id, at);

CREATE TABLE longops_operations (
    id                   uuid PRIMARY KEY,
    entry_no             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    company              text NOT NULL REFERENCES longops_companies (name),
    task                 text NOT NULL,
    -- json, not jsonb: arguments and results come back exactly as given (jsonb rewrites
    -- numbers such as 1e20 and -0.0 and refuses the NUL character).
    args                 json NOT NULL,
    description          text,
    queue                text NOT NULL,
    category             text,
    priority             integer NOT NULL DEFAULT 2000 CONSTRAINT operation_priority CHECK (priority IN (1000, 2000, 3000)),
    status               text NOT NULL CONSTRAINT operation_status CHECK (status IN ('on_hold', 'ready', 'in_process', 'finished', 'error', 'cancelled')),
    status_reason        text,
    earliest_start_at    timestamptz NOT NULL,
    expires_at           timestamptz,
    max_attempts         integer NOT NULL DEFAULT 1 CONSTRAINT operation_max_attempts CHECK (max_attempts BETWEEN 1 AND 100),
    attempt_count        integer NOT NULL DEFAULT 0 CONSTRAINT operation_attempt_count CHECK (attempt_count >= 0),
    run_count            integer NOT NULL DEFAULT 0,
    rerun_delay          integer NOT NULL DEFAULT 0 CONSTRAINT operation_rerun_delay CHECK (rerun_delay BETWEEN 0 AND 3600),
    retry_policy         json,
    timeout_seconds      double precision NOT NULL DEFAULT 43200,
    recurrence           json,
    user_name            text,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    ready_at             timestamptz,
    started_at           timestamptz,
    ended_at             timestamptz,
    last_error           text,
    result               json,
    lease_token          uuid,
    session_id           uuid,
    dedup_key            text,
    labels               json NOT NULL DEFAULT '{}',
    cancel_requested_at  timestamptz,
    cancel_requested_by  text,
    cancel_reason        text,
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
    entry_no       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    operation_id   uuid NOT NULL,
    company        text NOT NULL,
    run_no         integer NOT NULL,
    attempt        integer NOT NULL,
    session_id     uuid,
    user_name      text,
    task           text NOT NULL,
    started_at     timestamptz NOT NULL,
    ended_at       timestamptz,
    outcome        text NOT NULL CONSTRAINT attempt_outcome CHECK (outcome IN ('in_process', 'success', 'error', 'timeout', 'cancelled', 'lost', 'interrupted', 'skipped')),
    error_message  text,
    traceback      text,
    UNIQUE (operation_id, run_no)
);

CREATE INDEX longops_attempts_ended ON longops_attempts (ended_at);

CREATE TABLE longops_leaders (
    name        text PRIMARY KEY,
    session_id  uuid NOT NULL,
    expires_at  timestamptz NOT NULL
);
