-- SQLite's own queries: only those that really differ from PostgreSQL's, each saying why
-- (-- why:, not sent to the database). Every other query is written once in sql/common/.
-- Parameters in :name style. Lists arrive as JSON arrays and are read with json_each. Ids
-- are 32-hex-digit UUIDs and times fixed-width UTC text, so equality and order work on the
-- stored text. Loaded once by longops.store.queries.

-- Fragments the common queries splice in as {{name}}.

-- fragment: in_companies
-- The companies a read is narrowed to (NULL: every company).
(:companies IS NULL OR company IN (SELECT value FROM json_each(:companies)))

-- fragment: in_statuses
-- The statuses a list asks for (none: every status).
(:statuses = '[]' OR status IN (SELECT value FROM json_each(:statuses)))

-- fragment: like_text
-- A search (domain.filters.search_terms): a substring of the description, task or last error
-- (SQLite's LIKE has no escape character unless told; no index serves it: a scan), an entry
-- number, an id prefix (a range of the 32-hex-digit ids). The user filter is a name prefix.
(:text IS NULL
    OR (:text_like IS NOT NULL
        AND lower(coalesce(description, '') || ' ' || task || ' ' || coalesce(last_error, '')) LIKE :text_like ESCAPE '\')
    OR entry_no = :text_entry_no
    OR id BETWEEN :id_low AND :id_high)
   AND (:user_prefix IS NULL OR lower(user_name) LIKE :user_prefix ESCAPE '\')

-- fragment: listed_operations
-- longops_operations as the lists and their counts read it: on SQLite the table itself
-- (PostgreSQL's splits off the running operations, whose indexes leave them out; SQLite
-- rewrites only the indexes whose columns an UPDATE sets, so its claim does not pay for
-- the lists' indexes). Used as `FROM {{listed_operations}} o`.
longops_operations

-- name: list_operations
-- why: one read of the table; PostgreSQL reads the running operations apart (its lists'
--      indexes leave them out, migration 0016; SQLite's claim does not rewrite them).
-- Oldest first; a page goes on after the last entry number it showed (keyset paging).
SELECT * FROM longops_operations
 WHERE {{operation_filter}}
   AND {{entry_no_window}}
 ORDER BY entry_no
 LIMIT :limit;

-- name: list_operations_desc
-- why: one read of the table (see list_operations).
-- Newest first (dashboards); a page goes on before the last entry number it showed.
SELECT * FROM longops_operations
 WHERE {{operation_filter}}
   AND {{entry_no_window}}
 ORDER BY entry_no DESC
 LIMIT :limit;

-- name: list_operations_sorted
-- why: one read of the table (see list_operations).
-- Sorted by a column (domain.filters.SortKey), ties by entry number, both in one direction;
-- a page goes on after the cursor's (value, entry number), keyset paging as above. The store
-- puts the dialect's expression of the column for SORT_KEY (each has an index, migration
-- 0015), ASC or DESC for SORT_DIR, and for SORT_AFTER the comparison with the cursor (or
-- TRUE on a first page).
SELECT * FROM longops_operations
 WHERE {{operation_filter}}
   AND SORT_AFTER
 ORDER BY SORT_KEY SORT_DIR, entry_no SORT_DIR
 LIMIT :limit;

-- name: list_companies
-- why: a list parameter: a JSON array read with json_each (PostgreSQL binds a text[]).
SELECT * FROM longops_companies
 WHERE :companies IS NULL OR name IN (SELECT value FROM json_each(:companies))
 ORDER BY name;

-- name: apply_action
-- why: a list parameter: a JSON array read with json_each (PostgreSQL binds a text[]).
UPDATE longops_operations SET
    status = :status,
    status_reason = :status_reason,
    earliest_start_at = coalesce(:earliest_start_at, earliest_start_at),
    attempt_count = CASE WHEN :reset_attempts THEN 0 ELSE attempt_count END,
    ready_at = CASE WHEN :status = 'ready' THEN :at ELSE ready_at END,
    ended_at = CASE WHEN :status IN ('finished', 'error', 'cancelled') THEN :at ELSE ended_at END,
    last_error = CASE WHEN :status = 'ready' THEN NULL ELSE last_error END,
    user_name = coalesce(:user_name, user_name),
    cancel_requested_at = CASE WHEN :cancel_mode IS NOT NULL THEN :at
                               WHEN :clear_cancel THEN NULL ELSE cancel_requested_at END,
    cancel_requested_by = CASE WHEN :cancel_mode IS NOT NULL THEN :cancel_by
                               WHEN :clear_cancel THEN NULL ELSE cancel_requested_by END,
    cancel_reason = CASE WHEN :cancel_mode IS NOT NULL THEN :cancel_reason
                         WHEN :clear_cancel THEN NULL ELSE cancel_reason END,
    cancel_mode = CASE WHEN :cancel_mode IS NOT NULL THEN :cancel_mode
                       WHEN :clear_cancel THEN NULL ELSE cancel_mode END,
    cancel_force = CASE WHEN :clear_cancel THEN 0 ELSE cancel_force END,
    cancel_overdue_at = CASE WHEN :clear_cancel THEN NULL ELSE cancel_overdue_at END,
    progress = CASE WHEN :status IN ('ready', 'on_hold') THEN NULL ELSE progress END,
    checkpoint = CASE WHEN :clear_checkpoint THEN NULL ELSE checkpoint END,
    checkpoint_at = CASE WHEN :clear_checkpoint THEN NULL ELSE checkpoint_at END,
    updated_at = :at
 WHERE id = :id
   AND (:company IS NULL OR company = :company)
   AND status IN (SELECT value FROM json_each(:allowed_from))
RETURNING *;

-- name: insert_operation_one
-- why: the caller reads the new entry number from the connection (the rowid) instead of
--      RETURNING the row; PostgreSQL sends the INSERT with its NOTIFY (insert_operation_notify).
-- One plain enqueue (no dedup key, no client Operation-Id): nothing can conflict but the
-- id, which is new; the caller has every other value (store._sql.core.inserted).
{{insert_new_operation}}
ON CONFLICT DO NOTHING;

-- name: claim_operations
-- why: the hot path: SQLite's single writer claims in steps (this pick, then
--      insert_claimed_attempts, log_claimed, mark_companies_served); PostgreSQL in one statement.
-- Companies take turns as on PostgreSQL (see there). Differs from PostgreSQL: no FOR
-- UPDATE SKIP LOCKED and no LATERAL. The caller holds the database's single write lock
-- (BEGIN IMMEDIATE), so no other claim can interleave. In place of LATERAL, each company's
-- (and each category's) candidates come from a correlated `entry_no IN (... LIMIT)`
-- subquery, which SQLite runs once per company as a bounded walk of an index in claim
-- order (LIMIT cannot name an outer column, so it is the batch size; `turn <= cap` then
-- applies the company's own cap).
WITH paused AS (
    SELECT name FROM longops_paused_queues
),
runs_as AS (
    -- Who an operation runs on behalf of must still be allowed to (see PostgreSQL).
    SELECT EXISTS (SELECT 1 FROM longops_users) AS has_users
),
queues AS (
    SELECT value AS name FROM json_each(:queues)
),
served AS (
    -- The active companies this session serves, how many each may still start, and when
    -- a claim last took from them. Every row below carries its company's cap and turn, so
    -- no later step joins back to this.
    SELECT c.name AS company, c.served_seq,
           CASE WHEN c.max_in_process IS NULL THEN :limit
                ELSE max(min(:limit, c.max_in_process - (
                        SELECT count(*) FROM longops_operations r
                         WHERE r.company = c.name AND r.status = 'in_process')), 0)
           END AS cap
      FROM longops_companies c
     WHERE c.active
       AND (:companies IS NULL OR c.name IN (SELECT value FROM json_each(:companies)))
),
free_slots AS (
    -- Slots left per category; counted per category row (through the busy index) rather
    -- than grouped up front, so a company without categories pays nothing for them.
    SELECT company, code, cap, served_seq, min(max_concurrent - running, cap) AS free FROM (
        SELECT c.company, c.code, c.max_concurrent, s.cap, s.served_seq,
               (SELECT count(*) FROM longops_operations b INDEXED BY longops_operations_busy
                 WHERE b.status = 'in_process' AND b.category IS NOT NULL
                   AND b.company = c.company AND b.category = c.code) AS running
          FROM longops_categories c
          JOIN served s ON s.company = c.company AND s.cap > 0
         WHERE NOT c.paused
    ) WHERE max_concurrent > running
),
categorized AS (
    -- At most `free` per category, High -> Normal -> Low then FIFO inside it.
    SELECT entry_no, company, priority, cap, served_seq FROM (
        SELECT o.entry_no, o.company, o.priority, f.cap, f.served_seq, f.free,
               row_number() OVER (PARTITION BY o.company, o.category ORDER BY o.priority, o.entry_no) AS rn
          FROM free_slots f, longops_operations o
         WHERE o.entry_no IN (
                SELECT x.entry_no FROM longops_operations x INDEXED BY longops_operations_ready_category
                 WHERE x.status = 'ready' AND x.category IS NOT NULL
                   AND x.company = f.company AND x.category = f.code
                   AND x.earliest_start_at <= :now
                   AND (x.expires_at IS NULL OR x.expires_at > :now)
                   AND x.queue IN (SELECT name FROM queues)
                   AND x.queue NOT IN (SELECT name FROM paused)
                   AND (:tasks IS NULL OR x.task IN (SELECT value FROM json_each(:tasks)))
                   AND (x.user_name IS NULL OR NOT (SELECT has_users FROM runs_as) OR EXISTS (
                        SELECT 1 FROM longops_may_run r WHERE r.user_name = x.user_name
                           AND (r.is_super OR x.required_permission IS NULL
                                OR (r.company = x.company AND r.required = x.required_permission))))
                 ORDER BY x.priority, x.entry_no
                 LIMIT :limit)
    ) WHERE rn <= free
),
uncategorized AS (
    -- INDEXED BY: walk the index that is already in claim order and stop after the
    -- batch. Left to itself the planner may pick the due-time index and sort every
    -- due row, which costs milliseconds per claim once thousands are ready.
    SELECT o.entry_no, o.company, o.priority, s.cap, s.served_seq
      FROM served s, longops_operations o
     WHERE s.cap > 0
       AND o.entry_no IN (
            SELECT x.entry_no FROM longops_operations x INDEXED BY longops_operations_ready_company
             WHERE x.status = 'ready' AND x.category IS NULL AND x.company = s.company
               AND x.queue IN (SELECT name FROM queues)
               AND x.earliest_start_at <= :now
               AND (x.expires_at IS NULL OR x.expires_at > :now)
               AND x.queue NOT IN (SELECT name FROM paused)
               -- Only tasks this session has (NULL: any); others wait, `no_worker_for_task`.
               AND (:tasks IS NULL OR x.task IN (SELECT value FROM json_each(:tasks)))
               AND (x.user_name IS NULL OR NOT (SELECT has_users FROM runs_as) OR EXISTS (
                    SELECT 1 FROM longops_may_run r WHERE r.user_name = x.user_name
                       AND (r.is_super OR x.required_permission IS NULL
                            OR (r.company = x.company AND r.required = x.required_permission))))
             ORDER BY x.priority, x.entry_no
             LIMIT :limit)
),
ranked AS (
    SELECT c.entry_no, c.priority, c.cap, c.served_seq,
           row_number() OVER (PARTITION BY c.company ORDER BY c.priority, c.entry_no) AS turn
      FROM (SELECT * FROM categorized UNION ALL SELECT * FROM uncategorized) c
),
chosen AS (
    SELECT entry_no
      FROM ranked
     WHERE turn <= cap
     ORDER BY turn, served_seq, priority, entry_no
     LIMIT :limit
)
UPDATE longops_operations SET
    status = 'in_process',
    attempt_count = attempt_count + 1,
    run_count = run_count + 1,
    lease_token = lower(hex(randomblob(16))),
    session_id = :session_id,
    started_at = :now,
    ended_at = NULL,
    last_error = NULL,
    progress = NULL,
    progress_moved_at = :now,
    stalled_at = NULL,
    cancel_mode = NULL,
    cancel_overdue_at = NULL,
    updated_at = :now
 WHERE entry_no IN (SELECT entry_no FROM chosen)
   -- A session declared lost (or draining) claims nothing, even before it notices.
   AND EXISTS (SELECT 1 FROM longops_sessions s WHERE s.id = :session_id AND s.state = 'active')
   -- Nothing is claimed in maintenance mode, even by a worker that has not noticed it.
   AND NOT EXISTS (SELECT 1 FROM longops_maintenance m WHERE m.id = 1 AND m.active)
RETURNING *;

-- name: mark_companies_served
-- why: a step of SQLite's claim (PostgreSQL claims in one statement).
-- The companies served now go to the back of the line for the next claim; with one active
-- company there is no line, and the write is saved.
UPDATE longops_companies SET served_seq = (SELECT max(served_seq) + 1 FROM longops_companies)
 WHERE name IN (SELECT value FROM json_each(:companies))
   AND (SELECT count(*) FROM longops_companies WHERE active) > 1;

-- name: insert_claimed_attempts
-- why: a step of SQLite's claim (PostgreSQL claims in one statement).
-- The attempt row of each operation just claimed (ids: a JSON array), committed with the
-- claim, before task code runs, so a crash always leaves evidence.
INSERT INTO longops_attempts (operation_id, company, run_no, attempt, session_id, user_name, task, started_at, outcome)
SELECT id, company, run_count, attempt_count, session_id, user_name, task, :now, 'in_process'
  FROM longops_operations
 WHERE id IN (SELECT value FROM json_each(:ids));

-- name: log_claimed
-- why: a step of SQLite's claim (PostgreSQL claims in one statement).
INSERT INTO longops_operation_events (operation_id, company, at, type, run_no, data)
SELECT id, company, :now, 'attempt_started', run_count,
       json_object('session_id', session_id, 'attempt', attempt_count)
  FROM longops_operations
 WHERE id IN (SELECT value FROM json_each(:ids))
 ORDER BY entry_no;

-- name: log_finished
-- why: a step of SQLite's finish (PostgreSQL finishes a batch in one statement).
-- Run after finish_operation, for the results that applied: the entry's new status, reason
-- and cancel mode are read from its row, so the finish needs no RETURNING per result.
INSERT INTO longops_operation_events (operation_id, company, at, type, run_no, data)
SELECT o.id, o.company, :at, 'attempt_ended', :run_no,
       json_object('outcome', :outcome, 'status', o.status, 'reason', o.status_reason,
                   'stop_mode', :stop_mode, 'cancel_mode', o.cancel_mode,
                   'error', substr(:error_message, 1, 200))
  FROM longops_operations o
 WHERE o.id = :id;

-- name: finish_check
-- why: a step of SQLite's finish (PostgreSQL finishes a batch in one statement).
-- Which runs of a batch of results are still in process (ids: a JSON array; the caller
-- compares each lease), with each run's last reading, which the attempt keeps when the
-- result carries none: one read for the batch. The caller holds the write lock, so
-- nothing changes between this read and the updates.
SELECT id, lease_token, progress FROM longops_operations
 WHERE id IN (SELECT value FROM json_each(:ids)) AND status = 'in_process';

-- name: finish_operation
-- why: a step of SQLite's finish (PostgreSQL finishes a batch in one statement).
-- Sent for the batch at once (executemany), so it returns nothing: log_finished reads the row.
-- Fenced by the lease token, as on PostgreSQL; and as there, a pending cancel request wins
-- over a retry, the next recurrence, a hand-back, a rescue and a failure.
UPDATE longops_operations SET
    status = CASE WHEN cancel_requested_at IS NOT NULL AND :status IN ('ready', 'error')
                  THEN 'cancelled' ELSE :status END,
    status_reason = CASE WHEN cancel_requested_at IS NOT NULL AND :status IN ('ready', 'error')
                         THEN 'cancelled' ELSE :status_reason END,
    earliest_start_at = coalesce(:earliest_start_at, earliest_start_at),
    attempt_count = coalesce(:attempt_count, attempt_count),
    ended_at = :at,
    ready_at = CASE WHEN :status = 'ready' AND cancel_requested_at IS NULL THEN :at ELSE ready_at END,
    last_error = :error_message,
    result = coalesce(:result, result),
    started_at = coalesce(:run_started_at, started_at),
    lease_token = NULL,
    session_id = NULL,
    cancel_mode = CASE
        WHEN cancel_requested_at IS NOT NULL AND :status IN ('ready', 'error')
        THEN coalesce(:cancel_mode,
                      CASE WHEN :outcome IN ('interrupted', 'lost') THEN 'forced'
                           ELSE 'cooperative' END)
        WHEN :status = 'cancelled' THEN :cancel_mode
        ELSE NULL END,
    progress = CASE WHEN :status = 'ready' AND cancel_requested_at IS NULL THEN NULL
                    ELSE coalesce(:progress, progress) END,
    stalled_at = NULL,
    checkpoint = CASE WHEN :clear_checkpoint THEN NULL ELSE checkpoint END,
    checkpoint_at = CASE WHEN :clear_checkpoint THEN NULL ELSE checkpoint_at END,
    updated_at = :at
 WHERE id = :id AND status = 'in_process' AND lease_token = :lease_token;

-- name: finish_attempt
-- why: a step of SQLite's finish (PostgreSQL finishes a batch in one statement).
UPDATE longops_attempts SET
    started_at = coalesce(:run_started_at, started_at),
    ended_at = :at, outcome = :outcome, error_message = :error_message, traceback = :traceback,
    stop_mode = :stop_mode, progress = coalesce(:progress, :last_reading), peak_rss = :peak_rss
 WHERE operation_id = :id AND run_no = :run_no;

-- name: next_due_at
-- why: a list parameter: a JSON array read with json_each (PostgreSQL binds a text[]).
SELECT min(earliest_start_at) AS due FROM longops_operations
 WHERE status = 'ready' AND queue IN (SELECT value FROM json_each(:queues))
   AND queue NOT IN (SELECT name FROM longops_paused_queues)
   AND (:companies IS NULL OR company IN (SELECT value FROM json_each(:companies)));

-- name: create_migrations_table
-- why: column types: time is fixed-width UTC text here.
CREATE TABLE IF NOT EXISTS longops_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    checksum    TEXT NOT NULL,
    applied_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now'))
);

-- name: cancel_requested
-- why: a list parameter: a JSON array read with json_each (PostgreSQL binds a text[]).
SELECT id, cancel_force, cancel_reason, cancel_requested_by FROM longops_operations
 WHERE id IN (SELECT value FROM json_each(:ids)) AND status = 'in_process' AND cancel_requested_at IS NOT NULL;

-- name: flush_progress_one
-- why: one reading at a time (PostgreSQL flushes a batch with arrays).
UPDATE longops_operations SET
    progress = :progress,
    progress_moved_at = CASE WHEN :moved THEN :at ELSE progress_moved_at END,
    stalled_at = CASE WHEN :moved THEN NULL ELSE stalled_at END,
    updated_at = :at
 WHERE id = :id AND status = 'in_process' AND lease_token = :lease_token;

-- name: flag_stalled
-- why: time arithmetic: julianday() on UTC text.
-- Differs from PostgreSQL: times are text, so the elapsed seconds come from julianday
-- arithmetic, whose rounding (tens of microseconds) a millisecond of slack absorbs.
UPDATE longops_operations SET stalled_at = :now
 WHERE status = 'in_process' AND stalled_at IS NULL
   AND (julianday(:now) - julianday(progress_moved_at)) * 86400.0 >= stall_after_seconds - 0.001
RETURNING id, company, run_count, progress_moved_at;

-- name: list_events
-- why: a list parameter: a JSON array read with json_each (PostgreSQL binds a text[]).
SELECT * FROM longops_operation_events
 WHERE operation_id = :id
   AND (:after_id IS NULL OR id > :after_id)
   AND (:types = '[]' OR type IN (SELECT value FROM json_each(:types)))
   AND (:run_no IS NULL OR run_no = :run_no)
 ORDER BY CASE WHEN :newest_first THEN -id ELSE id END
 LIMIT :limit;

-- name: served_queues
-- why: sessions.queues is JSON text here (json_each), a text[] on PostgreSQL.
SELECT DISTINCT q.value AS name, s.companies, s.tasks, s.claim_stopped
  FROM longops_sessions s, json_each(s.queues) q
 WHERE s.state = 'active';

-- name: recent_durations
-- why: time arithmetic: julianday() on UTC text.
SELECT (julianday(ended_at) - julianday(started_at)) * 86400.0 AS seconds
  FROM (SELECT task, outcome, started_at, ended_at FROM longops_attempts
         WHERE ended_at IS NOT NULL ORDER BY ended_at DESC LIMIT 5000) recent
 WHERE task = :task AND outcome = 'success'
 ORDER BY ended_at DESC
 LIMIT :limit;

-- name: lock_run_row
-- why: no row locks: the write transaction already holds SQLite's one write lock.
-- A running operation's row while its run holds the lease (SQLite's single writer already excludes others).
SELECT company, run_count, stalled_at FROM longops_operations
 WHERE id = :id AND status = 'in_process' AND lease_token = :lease_token;

-- name: list_audit
-- why: a list parameter: a JSON array read with json_each (PostgreSQL binds a text[]).
SELECT * FROM longops_audit_log
 WHERE ((:companies IS NULL AND company IS NOT NULL)
        OR company IN (SELECT value FROM json_each(coalesce(:companies, '[]')))
        OR (:include_global AND company IS NULL))
   AND (:before_id IS NULL OR id < :before_id)
 ORDER BY id DESC
 LIMIT :limit;

-- name: active_users
-- why: a list parameter: a JSON array read with json_each (PostgreSQL binds a text[]).
SELECT name FROM longops_users
 WHERE state = 'active' AND name IN (SELECT value FROM json_each(:names));

-- name: personal_events
-- why: JSON functions (json_extract).
SELECT * FROM longops_operation_events WHERE json_extract(data, '$.by') = :name ORDER BY id;

-- name: forget_events
-- why: JSON functions (json_set, json_extract).
UPDATE longops_operation_events SET data = json_set(data, '$.by', :pseudonym)
 WHERE json_extract(data, '$.by') = :name;

-- name: runs_per_hour
-- why: time arithmetic (strftime('%s')) and sums of CASE (no FILTER).
-- Runs that ended since :since, per bucket of :bucket seconds after it (bucket 0 is the oldest).
SELECT (CAST(strftime('%s', ended_at) AS INTEGER) - CAST(strftime('%s', :since) AS INTEGER)) / :bucket AS bucket,
       sum(CASE WHEN outcome = 'success' THEN 1 ELSE 0 END) AS finished,
       sum(CASE WHEN outcome IN ('error', 'timeout', 'lost') THEN 1 ELSE 0 END) AS failed
  FROM longops_attempts
 WHERE company = :company AND ended_at >= :since AND ended_at < :until
 GROUP BY bucket;

-- name: list_company_attempts
-- why: a list parameter: a JSON array read with json_each (PostgreSQL binds a text[]).
-- The Log Entries page: newest first; a page goes on before the last entry number it showed.
SELECT a.*, o.description AS operation_description FROM longops_attempts a
  LEFT JOIN longops_operations o ON o.id = a.operation_id
 WHERE a.company = :company
   AND (:companies IS NULL OR a.company IN (SELECT value FROM json_each(:companies)))
   AND (:task IS NULL OR a.task = :task)
   AND (:outcomes = '[]' OR a.outcome IN (SELECT value FROM json_each(:outcomes)))
   AND (:operation_id IS NULL OR a.operation_id = :operation_id)
   AND (:started_from IS NULL OR a.started_at >= :started_from)
   AND (:started_to IS NULL OR a.started_at < :started_to)
   AND (:before_entry_no IS NULL OR a.entry_no < :before_entry_no)
 ORDER BY a.entry_no DESC
 LIMIT :limit;

-- name: mark_notifications_read
-- why: a list parameter: a JSON array read with json_each (PostgreSQL binds a text[]).
UPDATE longops_notifications SET read_at = :at
 WHERE company = :company AND user_name = :user_name AND read_at IS NULL
   AND (:ids IS NULL OR id IN (SELECT value FROM json_each(:ids)));

-- name: claim_deliveries
-- why: no SKIP LOCKED: SQLite's single writer already keeps claims apart.
-- Due deliveries, and those whose claim lapsed (a sender died mid-send), taken with a
-- fresh claim token under SQLite's one write lock.
UPDATE longops_notify_deliveries
   SET claim_token = :claim_token, locked_until = :until, attempts = attempts + 1
 WHERE id IN (SELECT id FROM longops_notify_deliveries
               WHERE status = 'pending' AND next_at <= :now
                 AND (locked_until IS NULL OR locked_until <= :now)
               ORDER BY next_at, id
               LIMIT :limit)
RETURNING *;

-- name: fleet_metrics
-- why: untyped NULLs (SQLite has no :: casts).
-- The fleet's figures for /metrics in one statement: operations by company, queue and
-- status; the oldest due, ready operation per queue; stalled runs per company; live sessions.
SELECT 'operations' AS metric, company, queue, status, COUNT(*) AS n, NULL AS at
  FROM longops_operations
 GROUP BY company, queue, status
UNION ALL
SELECT 'oldest_ready', NULL, queue, NULL, COUNT(*), MIN(earliest_start_at)
  FROM longops_operations
 WHERE status = 'ready' AND earliest_start_at <= :now
 GROUP BY queue
UNION ALL
SELECT 'stalled', company, NULL, NULL, COUNT(*), NULL
  FROM longops_operations
 WHERE status = 'in_process' AND stalled_at IS NOT NULL
 GROUP BY company
UNION ALL
SELECT 'sessions', NULL, NULL, NULL, COUNT(*), NULL
  FROM longops_sessions
 WHERE state IN ('active', 'draining');

-- Apps (issue 15) and maintenance mode: the queries that differ.

-- name: operations_of_tasks
-- why: a list parameter: a JSON array here (json_each), a text[] on PostgreSQL (= ANY).
SELECT * FROM longops_operations
 WHERE task IN (SELECT value FROM json_each(:tasks))
   AND (:companies IS NULL OR company IN (SELECT value FROM json_each(:companies)))
   AND entry_no > :after
 ORDER BY entry_no
 LIMIT 1000;

-- name: delete_unused_categories
-- why: a list parameter: a JSON array here (json_each), a text[] on PostgreSQL (= ANY).
-- Operations keep their category (a foreign key): one any operation still names stays.
DELETE FROM longops_categories
 WHERE company = :company AND code IN (SELECT value FROM json_each(:codes))
   AND NOT EXISTS (SELECT 1 FROM longops_operations o
                    WHERE o.company = longops_categories.company
                      AND o.category = longops_categories.code)
RETURNING code;

-- name: fail_unserved
-- why: time arithmetic (julianday() on UTC text), sessions.tasks JSON text here.
-- As on PostgreSQL (see there).
UPDATE longops_operations SET status = 'error', status_reason = 'no_worker_for_task',
       ended_at = :now, updated_at = :now,
       last_error = 'no live worker session had task ' || task || ' within '
                    || (SELECT min(w.worker_wait_seconds) FROM longops_app_tasks w
                         WHERE w.task = longops_operations.task) || ' s (its worker_wait)'
 WHERE status = 'ready'
   AND task IN (SELECT task FROM longops_app_tasks WHERE worker_wait_seconds IS NOT NULL)
   AND julianday(earliest_start_at) + (SELECT min(w.worker_wait_seconds) FROM longops_app_tasks w
                                         WHERE w.task = longops_operations.task) / 86400.0
       < julianday(:now)
   AND NOT EXISTS (SELECT 1 FROM longops_sessions s
                    WHERE s.state = 'active'
                      AND (s.tasks IS NULL
                           OR longops_operations.task IN (SELECT value FROM json_each(s.tasks))))
RETURNING id;

-- name: purge_uninstalled_events
-- why: no data-modifying CTEs here: the history goes first, statement by statement
--      (PostgreSQL deletes it inside purge_uninstalled).
DELETE FROM longops_operation_events WHERE operation_id IN (
    SELECT o.id FROM longops_operations o
     WHERE o.status IN ('finished', 'error', 'cancelled')
       AND EXISTS (SELECT 1 FROM longops_app_tasks t JOIN longops_apps a ON a.name = t.app
                    WHERE t.task = o.task AND a.purge_at <= :now
                      AND o.created_at <= a.exported_at));

-- name: purge_uninstalled_attempts
-- why: no data-modifying CTEs here (see purge_uninstalled_events).
DELETE FROM longops_attempts WHERE operation_id IN (
    SELECT o.id FROM longops_operations o
     WHERE o.status IN ('finished', 'error', 'cancelled')
       AND EXISTS (SELECT 1 FROM longops_app_tasks t JOIN longops_apps a ON a.name = t.app
                    WHERE t.task = o.task AND a.purge_at <= :now
                      AND o.created_at <= a.exported_at));

-- name: purge_uninstalled
-- why: no data-modifying CTEs here: purge_uninstalled_events and _attempts ran first.
-- Only what an export covered: created at or before the app's last export began.
DELETE FROM longops_operations
 WHERE status IN ('finished', 'error', 'cancelled')
   AND EXISTS (SELECT 1 FROM longops_app_tasks t JOIN longops_apps a ON a.name = t.app
                WHERE t.task = longops_operations.task AND a.purge_at <= :now
                  AND longops_operations.created_at <= a.exported_at)
RETURNING id;

-- name: lock_maintenance
-- why: BEGIN IMMEDIATE already orders the switch after any claim in flight; PostgreSQL
--      takes a table lock.
SELECT 1;

-- name: keep_deleted_copy
-- why: PostgreSQL copies the row as JSON in SQL (to_jsonb); here SqliteStore._keep_copy reads
--      the row (copy_source) and writes its columns' JSON itself.
INSERT INTO longops_deleted_operations
    (id, company, entry_no, deleted_at, keep_until, deleted_by, operation)
VALUES (:id, :company, :entry_no, :at, :until, :by, :operation)
ON CONFLICT (id) DO UPDATE SET
    company = excluded.company, entry_no = excluded.entry_no, deleted_at = excluded.deleted_at,
    keep_until = excluded.keep_until, deleted_by = excluded.deleted_by,
    operation = excluded.operation;

-- name: copy_source
-- why: PostgreSQL copies the row in one statement (keep_deleted_copy).
SELECT * FROM longops_operations
 WHERE id = :id AND (:company IS NULL OR company = :company) AND status <> 'in_process';

-- name: restore_deleted_copy
-- why: PostgreSQL puts the row back in SQL (jsonb_populate_record); here
--      SqliteStore._restore_copy reads the copy and inserts its columns.
SELECT operation FROM longops_deleted_operations
 WHERE id = :id AND (:company IS NULL OR company = :company)
   AND keep_until >= :at AND deleted_by IS :by;

-- name: forget_deleted_copies
-- why: JSON read with json_extract; PostgreSQL uses its JSON operators (->>).
-- Copies kept for a Delete's Undo (migration 0017) that name the user go at once.
DELETE FROM longops_deleted_operations
 WHERE deleted_by = :name
    OR json_extract(operation, '$.user_name') = :name
    OR json_extract(operation, '$.cancel_requested_by') = :name;
