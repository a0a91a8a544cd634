-- longops schema (SQLite): an operation's status_reason is one of
-- domain.status.StatusReason (tests/unit/test_status_sync.py keeps the two equal), or NULL
-- when a person set the status. SQLite cannot add a CHECK constraint to an existing table,
-- so two triggers refuse what the PostgreSQL constraint refuses, with its name.
CREATE TRIGGER longops_operations_status_reason_insert
BEFORE INSERT ON longops_operations
WHEN NEW.status_reason NOT IN ('retry', 'recurring', 'recurring_after_error', 'interrupted', 'outside_run_window', 'run_now', 'cancelled', 'expired', 'error', 'timeout', 'lost')
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: operation_status_reason');
END;

CREATE TRIGGER longops_operations_status_reason_update
BEFORE UPDATE OF status_reason ON longops_operations
WHEN NEW.status_reason NOT IN ('retry', 'recurring', 'recurring_after_error', 'interrupted', 'outside_run_window', 'run_now', 'cancelled', 'expired', 'error', 'timeout', 'lost')
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: operation_status_reason');
END;
