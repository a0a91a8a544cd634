-- longops: compatible, online
-- longops schema (PostgreSQL): maintenance mode. Both changes only add (a table, an allowed
-- value), so code of the version before runs on it unchanged and it may be applied while
-- workers run.
--
-- One row, always there: whether maintenance mode is on, why, and how long running work
-- may take to finish once it began (drain_timeout, in seconds) before workers hand it back
-- without spending an attempt. The claim (claim_operations) takes nothing while it is on.
-- Who started or stopped it is in the audit log (actions start_maintenance, stop_maintenance).
CREATE TABLE longops_maintenance (
    id smallint PRIMARY KEY CONSTRAINT maintenance_single_row CHECK (id = 1),
    active boolean NOT NULL DEFAULT false,
    reason text,
    drain_timeout double precision NOT NULL DEFAULT 60
        CONSTRAINT maintenance_drain_timeout CHECK (drain_timeout >= 0),
    started_at timestamptz,
    stopped_at timestamptz
);
INSERT INTO longops_maintenance (id, active) VALUES (1, false);

-- A run handed back because maintenance mode began (its attempt not spent) says so: the
-- status_reason 'maintenance' joins domain.status.StatusReason. The whole list again, as
-- PostgreSQL cannot add one value to a CHECK constraint.
ALTER TABLE longops_operations DROP CONSTRAINT operation_status_reason;
ALTER TABLE longops_operations ADD CONSTRAINT operation_status_reason CHECK (status_reason IN ('retry', 'recurring', 'recurring_after_error', 'interrupted', 'outside_run_window', 'run_now', 'cancelled', 'expired', 'error', 'timeout', 'lost', 'no_worker_for_task', 'maintenance'));
