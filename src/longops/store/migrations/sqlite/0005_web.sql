-- longops schema, version 5 (SQLite): the pages. Notifications (the inbox and the toasts)
-- and the indexes the Overview, Job Queue Entries and Log Entries pages read through.

CREATE TABLE longops_notifications (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Copied from the operation, whose own key guarantees it; no key here, so that the
    -- row written with each ending costs no lookup.
    company       TEXT NOT NULL,
    user_name     TEXT NOT NULL,
    operation_id  TEXT NOT NULL,
    kind          TEXT NOT NULL CONSTRAINT notification_kind CHECK (kind IN ('succeeded', 'failed', 'cancelled')),
    title         TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    read_at       TEXT
);

-- A user's inbox in a company, newest first, and its unread part (the header's count).
CREATE INDEX longops_notifications_inbox ON longops_notifications (company, user_name, id);
CREATE INDEX longops_notifications_unread ON longops_notifications (company, user_name) WHERE read_at IS NULL;

-- Every path that ends an operation (a run finishing, a cancel before start, expiry, the
-- rescuer) goes through this UPDATE of status, so the notification is written by the
-- database in the same transaction as the change, whichever code made it. Operations of
-- no user (the local super actor's) notify nobody.
CREATE TRIGGER longops_notify_done
AFTER UPDATE OF status ON longops_operations
WHEN NEW.status IN ('finished', 'error', 'cancelled')
     AND OLD.status <> NEW.status
     AND NEW.user_name IS NOT NULL
BEGIN
    INSERT INTO longops_notifications (company, user_name, operation_id, kind, title, created_at)
    VALUES (
        NEW.company,
        NEW.user_name,
        NEW.id,
        CASE NEW.status WHEN 'finished' THEN 'succeeded' WHEN 'error' THEN 'failed' ELSE 'cancelled' END,
        coalesce(NEW.description, NEW.task),
        NEW.ended_at
    );
END;

-- No new index on operations for the list's task and user filters: SQLite does not fold
-- the filter's bound parameters ("(:task IS NULL OR task = :task)"), so it could not use one,
-- and each would cost every enqueue and status change.

-- The Log Entries page (newest first, per company) and its clean-up by age.
CREATE INDEX longops_attempts_company ON longops_attempts (company, entry_no);
CREATE INDEX longops_attempts_company_ended ON longops_attempts (company, ended_at);
