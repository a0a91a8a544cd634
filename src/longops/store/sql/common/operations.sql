-- Operations: insert, read, act on, edit, delete; attempts, timelines, what they wait for.
-- Queries both dialects run alike, written once (see longops.store.queries and
-- store/README.md): psycopg's %(name)s placeholders; SQLite gets :name, a ::type cast right
-- after a placeholder is PostgreSQL's and is dropped there. {{fragment}} splices a
-- fragment (sql/common/fragments.sql or the dialect's queries.sql).

-- name: insert_operation
-- A second active operation with the same dedup key in the company is not an error: the
-- caller gets the existing one (see get_active_by_dedup).
{{insert_new_operation}}
-- No target: a dedup key held by an active operation, or an id a client already used
-- (an Operation-Id sent again), both hand back the existing row (see _insert_with).
ON CONFLICT DO NOTHING
RETURNING *;

-- name: get_active_by_dedup
SELECT * FROM longops_operations
 WHERE company = %(company)s AND dedup_key = %(dedup_key)s
   AND status IN ('on_hold', 'ready', 'in_process');

-- name: get_operation
SELECT * FROM longops_operations
 WHERE id = %(id)s AND (%(company)s::text IS NULL OR company = %(company)s)
   AND {{in_companies}};

-- name: count_operations
SELECT status, count(*) AS n FROM {{listed_operations}} o
 WHERE (%(company)s::text IS NULL OR company = %(company)s)
   AND {{in_companies}}
 GROUP BY status;

-- name: insert_event
INSERT INTO longops_operation_events (operation_id, company, at, type, run_no, data)
VALUES (%(id)s, %(company)s, %(at)s, %(type)s, %(run_no)s, %(data)s::json);

-- name: request_cancel
-- A first request, or a forced one on top of a cooperative request (which keeps the first
-- request's time, so the time a cancel took counts from when it was first asked).
UPDATE longops_operations SET
    cancel_requested_at = coalesce(cancel_requested_at, %(at)s),
    -- A forced request on top of another keeps who first asked and why (the timeline has
    -- both requests).
    cancel_requested_by = CASE WHEN cancel_requested_at IS NULL THEN %(by)s ELSE cancel_requested_by END,
    cancel_reason = CASE WHEN cancel_requested_at IS NULL THEN %(reason)s ELSE cancel_reason END,
    cancel_force = cancel_force OR %(force)s,
    updated_at = %(at)s
 WHERE id = %(id)s
   AND (%(company)s::text IS NULL OR company = %(company)s)
   AND status = 'in_process'
   AND (cancel_requested_at IS NULL OR (%(force)s AND NOT cancel_force))
RETURNING *;

-- name: delete_operation
-- Business Central refuses to delete an entry while it is In Process. Its timeline goes
-- with it (delete_events); its attempts (log entries) stay until retention, as in BC.
DELETE FROM longops_operations
 WHERE id = %(id)s
   AND (%(company)s::text IS NULL OR company = %(company)s)
   AND status <> 'in_process'
RETURNING id;

-- name: delete_events
DELETE FROM longops_operation_events WHERE operation_id = %(id)s;

-- name: forget_deleted_copy
-- A Delete's copy (migration 0017) once restored, or when the Delete did not happen.
DELETE FROM longops_deleted_operations WHERE id = %(id)s;

-- name: purge_deleted_copies
-- Copies kept for an Undo whose time is up (the caller then drops their timelines).
DELETE FROM longops_deleted_operations WHERE keep_until < %(at)s
RETURNING id;

-- name: delete_orphan_events
-- The timeline of an operation that is gone (kept for a Delete's Undo until its copy went).
DELETE FROM longops_operation_events
 WHERE operation_id = %(id)s
   AND NOT EXISTS (SELECT 1 FROM longops_operations WHERE id = %(id)s);

-- name: delete_failed
-- "Remove Failed Entries": non-recurring entries in error whose last run ended before the cut.
DELETE FROM longops_operations
 WHERE company = %(company)s AND status = 'error' AND recurrence IS NULL
   AND ended_at <= %(ended_before)s
RETURNING id;

-- name: list_attempts
SELECT * FROM longops_attempts
 WHERE operation_id = %(id)s
   AND {{in_companies}}
 ORDER BY run_no;

-- name: running_in_categories
-- Who holds each category's slots right now (for wait reasons).
SELECT company, category, id FROM longops_operations
 WHERE status = 'in_process' AND category IS NOT NULL
 ORDER BY entry_no;

-- name: list_all_categories
SELECT * FROM longops_categories ORDER BY company, code;

-- name: running_per_company
SELECT company, count(*) AS running FROM longops_operations
 WHERE status = 'in_process'
 GROUP BY company;

-- name: events_since
-- The timeline of every operation after an event id, in id order (live streams read it).
SELECT * FROM longops_operation_events
 WHERE id > %(after_id)s
 ORDER BY id
 LIMIT %(limit)s;

-- name: last_event_id
SELECT coalesce(max(id), 0) AS id FROM longops_operation_events;

-- name: last_entry_no
SELECT coalesce(max(entry_no), 0) AS entry_no FROM longops_operations;

-- name: get_operation_any
-- By id in any company: only to tell a reused Operation-Id, never shown to a caller as is.
SELECT * FROM longops_operations WHERE id = %(id)s;

-- name: company_events_since
-- One company's timeline after an event id (a list stream resuming); walks the key.
SELECT * FROM longops_operation_events
 WHERE id > %(after_id)s AND company = %(company)s
 ORDER BY id
 LIMIT %(limit)s;

-- name: delete_attempts
-- "Delete Entries older than": ended log entries only (a run in process keeps its own).
DELETE FROM longops_attempts
 WHERE company = %(company)s AND ended_at IS NOT NULL AND ended_at < %(ended_before)s;

-- name: update_operation
-- Editing is Business Central's rule: only while on hold.
UPDATE longops_operations SET
    description = %(description)s,
    priority = %(priority)s,
    category = %(category)s,
    earliest_start_at = %(earliest_start_at)s,
    recurrence = %(recurrence)s,
    max_attempts = %(max_attempts)s,
    timeout_seconds = %(timeout_seconds)s,
    updated_at = %(at)s
 WHERE id = %(id)s AND company = %(company)s AND status = 'on_hold'
RETURNING *;
