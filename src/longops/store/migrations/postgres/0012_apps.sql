-- longops: compatible, online
-- longops schema (PostgreSQL): task apps, rolling deploys and the schema guard.
-- Every change adds (a column, a table, a value): code of version 0011 runs on it unchanged.
--
-- What each worker session can run and which code it is: the claim takes only operations
-- of the session's tasks, and an operation whose task no live session has waits with
-- `no_worker_for_task`. NULL tasks: a session from before this migration, taken as able to
-- run every task (as its code claims anything).
ALTER TABLE longops_sessions ADD COLUMN tasks text[];
ALTER TABLE longops_sessions ADD COLUMN code_version text;
ALTER TABLE longops_sessions ADD COLUMN schema_version integer;

-- The schema guard reads each applied migration's flags (`compatible`: code of the version
-- before it runs on it; `online`: it may be applied while workers run). Comma-separated.
ALTER TABLE longops_migrations ADD COLUMN flags text;

-- Installed apps and their tasks, as the last worker or server that had the app recorded
-- them: once an app's package is gone, its tasks can no longer be read from code, and
-- `longops apps uninstall` finds its operations here.
CREATE TABLE longops_apps (
    name            text PRIMARY KEY,
    version         text,
    seen_at         timestamptz NOT NULL,
    uninstalled_at  timestamptz,
    exported_at     timestamptz,
    purge_at        timestamptz
);

CREATE TABLE longops_app_tasks (
    app             text NOT NULL REFERENCES longops_apps (name) ON DELETE CASCADE,
    task            text NOT NULL,
    -- Seconds an operation of the task may wait for a worker that has it before it fails
    -- with `no_worker_for_task` (NULL: it waits as long as it takes).
    worker_wait_seconds double precision CONSTRAINT app_task_worker_wait CHECK (worker_wait_seconds > 0),
    PRIMARY KEY (app, task)
);

ALTER TABLE longops_operations DROP CONSTRAINT operation_status_reason;
ALTER TABLE longops_operations ADD CONSTRAINT operation_status_reason CHECK (status_reason IN ('retry', 'recurring', 'recurring_after_error', 'interrupted', 'outside_run_window', 'run_now', 'cancelled', 'expired', 'error', 'timeout', 'lost', 'no_worker_for_task'));
