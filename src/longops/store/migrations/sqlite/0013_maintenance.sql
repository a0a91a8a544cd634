-- longops: compatible, online
-- longops schema (SQLite): maintenance mode. Both changes only add (a table, an allowed
-- value), so code of the version before runs on it unchanged and it may be applied while
-- workers run.
--
-- One row, always there: whether maintenance mode is on, why, and how long running work
-- may take to finish once it began (drain_timeout, in seconds) before workers hand it back
-- without spending an attempt. The claim (claim_operations) takes nothing while it is on.
-- Who started or stopped it is in the audit log (actions start_maintenance, stop_maintenance).
CREATE TABLE longops_maintenance (
    id INTEGER PRIMARY KEY CONSTRAINT maintenance_single_row CHECK (id = 1),
    active INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1)),
    reason TEXT,
    drain_timeout REAL NOT NULL DEFAULT 60
        CONSTRAINT maintenance_drain_timeout CHECK (drain_timeout >= 0),
    started_at TEXT,
    stopped_at TEXT
);
INSERT INTO longops_maintenance (id, active) VALUES (1, 0);

-- A run handed back because maintenance mode began (its attempt not spent) says so: the
-- status_reason 'maintenance' joins domain.status.StatusReason. SQLite keeps the rule in
-- two triggers (0011): they are made again with the longer list.
DROP TRIGGER longops_operations_status_reason_insert;
DROP TRIGGER longops_operations_status_reason_update;

CREATE TRIGGER longops_operations_status_reason_insert
BEFORE INSERT ON longops_operations
WHEN NEW.status_reason NOT IN ('retry', 'recurring', 'recurring_after_error', 'interrupted', 'outside_run_window', 'run_now', 'cancelled', 'expired', 'error', 'timeout', 'lost', 'no_worker_for_task', 'maintenance')
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: operation_status_reason');
END;

CREATE TRIGGER longops_operations_status_reason_update
BEFORE UPDATE OF status_reason ON longops_operations
WHEN NEW.status_reason NOT IN ('retry', 'recurring', 'recurring_after_error', 'interrupted', 'outside_run_window', 'run_now', 'cancelled', 'expired', 'error', 'timeout', 'lost', 'no_worker_for_task', 'maintenance')
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: operation_status_reason');
END;
