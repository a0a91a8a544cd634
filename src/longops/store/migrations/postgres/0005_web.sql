-- longops schema, version 5 (PostgreSQL): the pages. Notifications (the inbox and the
-- toasts) and the indexes the Overview, Job Queue Entries and Log Entries pages read through.

CREATE TABLE longops_notifications (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Copied from the operation, whose own key guarantees it; no key here, so that the
    -- row written with each ending costs no lookup.
    company       text NOT NULL,
    user_name     text NOT NULL,
    operation_id  uuid NOT NULL,
    kind          text NOT NULL CONSTRAINT notification_kind CHECK (kind IN ('succeeded', 'failed', 'cancelled')),
    title         text NOT NULL,
    created_at    timestamptz NOT NULL,
    read_at       timestamptz
);

-- A user's inbox in a company, newest first, and its unread part (the header's count).
CREATE INDEX longops_notifications_inbox ON longops_notifications (company, user_name, id);
CREATE INDEX longops_notifications_unread ON longops_notifications (company, user_name) WHERE read_at IS NULL;

-- Every path that ends an operation (a run finishing, a cancel before start, expiry, the
-- rescuer) goes through an UPDATE of status, so the notification is written by the
-- database in the same transaction as the change, whichever statement made it. Operations
-- of no user (the local super actor's) notify nobody. The WHEN clause keeps the trigger
-- off every other update (progress, heartbeats, claims).
CREATE FUNCTION longops_notify_done() RETURNS trigger
    LANGUAGE plpgsql AS $$
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
    RETURN NULL;
END
$$;

CREATE TRIGGER longops_notify_done
    AFTER UPDATE OF status ON longops_operations
    FOR EACH ROW
    WHEN (NEW.status IN ('finished', 'error', 'cancelled')
          AND OLD.status IS DISTINCT FROM NEW.status
          AND NEW.user_name IS NOT NULL)
    EXECUTE FUNCTION longops_notify_done();

-- Row-level security, as for the other company tables (migration 0003): the policy exists
-- from here on; migrate() with row_level_security enables and forces it.
CREATE POLICY longops_scope ON longops_notifications
    USING (longops_in_scope(company)) WITH CHECK (longops_in_scope(company));

-- The list's task and category filters and their facet counts (partial: operations of no
-- category do not pay for the second).
CREATE INDEX longops_operations_task_status ON longops_operations (company, task, status, entry_no);
CREATE INDEX longops_operations_category_status ON longops_operations (company, category, status, entry_no) WHERE category IS NOT NULL;
-- "My operations", "My failures" and the header's running operations.
-- Partial: the local super actor's operations (no user) do not pay for it.
CREATE INDEX longops_operations_user_status ON longops_operations (company, user_name, status, entry_no) WHERE user_name IS NOT NULL;
-- The Log Entries page (newest first, per company) and its clean-up by age.
CREATE INDEX longops_attempts_company ON longops_attempts (company, entry_no);
CREATE INDEX longops_attempts_company_ended ON longops_attempts (company, ended_at);
