-- longops schema (PostgreSQL): an operation's status_reason is one of
-- domain.status.StatusReason (tests/unit/test_status_sync.py keeps the two equal), or NULL
-- when a person set the status. Every value longops has written is in the list, so existing
-- rows pass; a row that does not makes this migration fail, naming the constraint.
ALTER TABLE longops_operations ADD CONSTRAINT operation_status_reason CHECK (status_reason IN ('retry', 'recurring', 'recurring_after_error', 'interrupted', 'outside_run_window', 'run_now', 'cancelled', 'expired', 'error', 'timeout', 'lost'));
