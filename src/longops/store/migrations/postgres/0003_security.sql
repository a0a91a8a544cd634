-- longops schema, version 3 (PostgreSQL): users, permission sets per company, API tokens,
-- the audit log, per-company limits and fairness, and row-level security policies.

-- A company may cap its operations in process (NULL: no cap). served_seq orders companies
-- by when a claim last took work from them, so claims take turns between companies.
ALTER TABLE longops_companies ADD COLUMN max_in_process integer
    CONSTRAINT company_max_in_process CHECK (max_in_process BETWEEN 1 AND 100000);
ALTER TABLE longops_companies ADD COLUMN served_seq bigint NOT NULL DEFAULT 0;

-- The companies a worker session serves (NULL: all of them).
ALTER TABLE longops_sessions ADD COLUMN companies text[];

-- A task may require a permission set of whoever enqueues it or sets it ready; kept on the
-- row so that front ends without the task's code enforce it too.
ALTER TABLE longops_operations ADD COLUMN required_permission text
    CONSTRAINT operation_required_permission CHECK (required_permission IN ('JOBQUEUE-VIEW', 'JOBQUEUE-USER', 'JOBQUEUE-ADMIN', 'SUPER'));

-- The claim walks each company's ready operations in order (one index range per company)
-- and stops after the batch, instead of walking one global order.
DROP INDEX longops_operations_ready_fifo;
CREATE INDEX longops_operations_ready_company ON longops_operations (company, priority, entry_no) WHERE status = 'ready' AND category IS NULL;

CREATE TABLE longops_users (
    name           text PRIMARY KEY,
    display_name   text NOT NULL,
    -- Argon2id, in the library's self-describing format; never the password.
    password_hash  text,
    state          text NOT NULL DEFAULT 'active' CONSTRAINT user_state CHECK (state IN ('active', 'disabled')),
    is_super       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    disabled_at    timestamptz
);

CREATE TABLE longops_memberships (
    user_name       text NOT NULL REFERENCES longops_users (name) ON DELETE CASCADE,
    company         text NOT NULL REFERENCES longops_companies (name),
    -- SUPER is global (longops_users.is_super), never a membership.
    permission_set  text NOT NULL CONSTRAINT membership_permission_set CHECK (permission_set IN ('JOBQUEUE-VIEW', 'JOBQUEUE-USER', 'JOBQUEUE-ADMIN')),
    granted_at      timestamptz NOT NULL,
    PRIMARY KEY (user_name, company, permission_set)
);

CREATE TABLE longops_api_tokens (
    id            uuid PRIMARY KEY,
    user_name     text NOT NULL REFERENCES longops_users (name) ON DELETE CASCADE,
    name          text NOT NULL,
    -- SHA-256 of the token text (see longops.domain.users.token_hash).
    token_hash    text NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);

CREATE UNIQUE INDEX longops_api_tokens_name ON longops_api_tokens (user_name, name) WHERE revoked_at IS NULL;

CREATE TABLE longops_audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- NULL for actions that span companies (users, tokens, queues): SUPER reads those.
    company    text REFERENCES longops_companies (name),
    at         timestamptz NOT NULL,
    -- NULL for the local super actor (a process holding the database URL).
    actor      text,
    front_end  text NOT NULL CONSTRAINT audit_front_end CHECK (front_end IN ('library', 'cli', 'api', 'web')),
    action     text NOT NULL,
    target     text NOT NULL,
    details    json NOT NULL DEFAULT '{}'
);

CREATE INDEX longops_audit_log_company ON longops_audit_log (company, id);

-- Row-level security (a second wall behind core's checks). The store sets
-- longops.companies at the start of every transaction when row-level security is on:
-- '*' for workers and services, else the actor's companies, comma-separated. Unset or
-- empty sees nothing. The policies exist from this migration on; `migrate()` with the
-- row_level_security option enables and forces them (enable_row_level_security).
CREATE FUNCTION longops_in_scope(company text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE coalesce(current_setting('longops.companies', true), '')
        WHEN '*' THEN true
        ELSE company = ANY (string_to_array(current_setting('longops.companies', true), ','))
    END
$$;

CREATE POLICY longops_scope ON longops_companies
    USING (longops_in_scope(name)) WITH CHECK (longops_in_scope(name));
CREATE POLICY longops_scope ON longops_categories
    USING (longops_in_scope(company)) WITH CHECK (longops_in_scope(company));
CREATE POLICY longops_scope ON longops_operations
    USING (longops_in_scope(company)) WITH CHECK (longops_in_scope(company));
CREATE POLICY longops_scope ON longops_attempts
    USING (longops_in_scope(company)) WITH CHECK (longops_in_scope(company));
CREATE POLICY longops_scope ON longops_operation_events
    USING (longops_in_scope(company)) WITH CHECK (longops_in_scope(company));
CREATE POLICY longops_scope ON longops_memberships
    USING (longops_in_scope(company)) WITH CHECK (longops_in_scope(company));
CREATE POLICY longops_scope ON longops_audit_log
    USING (longops_in_scope(company)) WITH CHECK (longops_in_scope(company));
