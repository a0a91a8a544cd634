-- longops: compatible, online
-- longops schema (SQLite): task apps, rolling deploys and the schema guard (see the
-- PostgreSQL migration for what each part is for). Lists are JSON text, as elsewhere.
ALTER TABLE longops_sessions ADD COLUMN tasks TEXT;
ALTER TABLE longops_sessions ADD COLUMN code_version TEXT;
ALTER TABLE longops_sessions ADD COLUMN schema_version INTEGER;

ALTER TABLE longops_migrations ADD COLUMN flags TEXT;

CREATE TABLE longops_apps (
    name            TEXT PRIMARY KEY,
    version         TEXT,
    seen_at         TEXT NOT NULL,
    uninstalled_at  TEXT,
    exported_at     TEXT,
    purge_at        TEXT
);

CREATE TABLE longops_app_tasks (
    app             TEXT NOT NULL REFERENCES longops_apps (name) ON DELETE CASCADE,
    task            TEXT NOT NULL,
    worker_wait_seconds REAL CONSTRAINT app_task_worker_wait CHECK (worker_wait_seconds > 0),
    PRIMARY KEY (app, task)
);

DROP TRIGGER longops_operations_status_reason_insert;
DROP TRIGGER longops_operations_status_reason_update;

CREATE TRIGGER longops_operations_status_reason_insert
BEFORE INSERT ON longops_operations
WHEN NEW.status_reason NOT IN ('retry', 'recurring', 'recurring_after_error', 'interrupted', 'outside_run_window', 'run_now', 'cancelled', 'expired', 'error', 'timeout', 'lost', 'no_worker_for_task')
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: operation_status_reason');
END;

CREATE TRIGGER longops_operations_status_reason_update
BEFORE UPDATE OF status_reason ON longops_operations
WHEN NEW.status_reason NOT IN ('retry', 'recurring', 'recurring_after_error', 'interrupted', 'outside_run_window', 'run_now', 'cancelled', 'expired', 'error', 'timeout', 'lost', 'no_worker_for_task')
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: operation_status_reason');
END;
