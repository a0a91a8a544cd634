-- longops schema, version 2 (SQLite): operation tracking.
-- Progress and its stall flag, checkpoints, the cancellation ladder's record, and the
-- timeline of every operation (longops_operation_events).

ALTER TABLE longops_operations ADD COLUMN progress TEXT;
-- When the progress last changed (set at claim): the stall detector compares it with
-- stall_after_seconds.
ALTER TABLE longops_operations ADD COLUMN progress_moved_at TEXT;
ALTER TABLE longops_operations ADD COLUMN stall_after_seconds REAL NOT NULL DEFAULT 600;
ALTER TABLE longops_operations ADD COLUMN stalled_at TEXT;
ALTER TABLE longops_operations ADD COLUMN checkpoint TEXT;
ALTER TABLE longops_operations ADD COLUMN checkpoint_at TEXT;
ALTER TABLE longops_operations ADD COLUMN cancel_force INTEGER NOT NULL DEFAULT 0;
ALTER TABLE longops_operations ADD COLUMN cancel_mode TEXT CONSTRAINT operation_cancel_mode CHECK (cancel_mode IN ('before_start', 'cooperative', 'forced', 'overdue', 'expired'));
ALTER TABLE longops_operations ADD COLUMN cancel_overdue_at TEXT;

ALTER TABLE longops_attempts ADD COLUMN stop_mode TEXT CONSTRAINT attempt_stop_mode CHECK (stop_mode IN ('cooperative', 'forced', 'overdue'));
ALTER TABLE longops_attempts ADD COLUMN progress TEXT;

CREATE TABLE longops_operation_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    operation_id  TEXT NOT NULL,
    company       TEXT NOT NULL,
    at            TEXT NOT NULL,
    type          TEXT NOT NULL CONSTRAINT operation_event_type CHECK (type IN ('attempt_started', 'attempt_ended', 'status_changed', 'progress', 'checkpoint', 'cancel_requested', 'cancel_overdue', 'timeout', 'stalled', 'unstalled')),
    run_no        INTEGER,
    data          TEXT NOT NULL DEFAULT '{}'
);

-- One index besides the key: every claim and every result adds a row here, so each index
-- is paid for in the hot path. Company streams and pruning walk the key (ids follow time).
CREATE INDEX longops_operation_events_operation ON longops_operation_events (operation_id, id);

