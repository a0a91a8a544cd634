-- Named queries for SQLite. One query per Store method; parameters in :name style.
-- Lists arrive as JSON arrays and are read with json_each. Ids are 32-hex-digit UUIDs and
-- times fixed-width UTC text, so equality and order work on the stored text.

-- name: get_company
SELECT * FROM longops_companies WHERE name = :name;

-- name: get_operation_by_entry_no
SELECT * FROM longops_operations
 WHERE entry_no = :entry_no AND (:company IS NULL OR company = :company)
   AND (:companies IS NULL OR company IN (SELECT value FROM json_each(:companies)));

-- name: upsert_company
INSERT INTO longops_companies (name, display_name, time_zone, active, max_in_process)
VALUES (:name, :display_name, :time_zone, :active, :max_in_process)
ON CONFLICT (name) DO UPDATE
   SET display_name = excluded.display_name, time_zone = excluded.time_zone,
       active = excluded.active, max_in_process = excluded.max_in_process
RETURNING *;

-- name: list_companies
SELECT * FROM longops_companies
 WHERE :companies IS NULL OR name IN (SELECT value FROM json_each(:companies))
 ORDER BY name;

-- name: upsert_category
INSERT INTO longops_categories (company, code, description, max_concurrent, paused)
VALUES (:company, :code, :description, :max_concurrent, :paused)
ON CONFLICT (company, code) DO UPDATE
   SET description = excluded.description,
       max_concurrent = excluded.max_concurrent,
       paused = excluded.paused
RETURNING *;

-- name: get_category
SELECT * FROM longops_categories WHERE company = :company AND code = :code;

-- name: list_categories
SELECT * FROM longops_categories WHERE company = :company ORDER BY code;

-- name: pause_queue
INSERT INTO longops_paused_queues (name, paused_at) VALUES (:name, :at)
ON CONFLICT (name) DO NOTHING;

-- name: resume_queue
DELETE FROM longops_paused_queues WHERE name = :name;

-- name: list_paused_queues
SELECT name FROM longops_paused_queues;

-- name: insert_operation
INSERT INTO longops_operations (
    id, company, task, args, description, queue, category, priority, status,
    earliest_start_at, expires_at, max_attempts, rerun_delay, retry_policy, timeout_seconds,
    recurrence, user_name, created_at, updated_at, ready_at, dedup_key, labels,
    stall_after_seconds, required_permission, request_hash, trace_context)
VALUES (
    :id, :company, :task, :args, :description, :queue, :category, :priority, :status,
    :earliest_start_at, :expires_at, :max_attempts, :rerun_delay, :retry_policy,
    :timeout_seconds, :recurrence, :user_name, :created_at, :created_at, :ready_at,
    :dedup_key, :labels, :stall_after_seconds, :required_permission, :request_hash, :trace_context)
ON CONFLICT DO NOTHING
RETURNING *;

-- name: get_active_by_dedup
SELECT * FROM longops_operations
 WHERE company = :company AND dedup_key = :dedup_key
   AND status IN ('on_hold', 'ready', 'in_process');

-- name: get_operation
SELECT * FROM longops_operations
 WHERE id = :id AND (:company IS NULL OR company = :company)
   AND (:companies IS NULL OR company IN (SELECT value FROM json_each(:companies)));

-- name: list_operations
-- Oldest first; a page goes on after the last entry number it showed (keyset paging).
SELECT * FROM longops_operations
 WHERE (:company IS NULL OR company = :company)
   AND (:companies IS NULL OR company IN (SELECT value FROM json_each(:companies)))
   AND (:statuses = '[]' OR status IN (SELECT value FROM json_each(:statuses)))
   AND (:task IS NULL OR task = :task)
   AND (:category IS NULL OR category = :category)
   AND (:queue IS NULL OR queue = :queue)
   AND (:user_name IS NULL OR user_name = :user_name)
   AND (:created_after IS NULL OR created_at >= :created_after)
   AND (:created_before IS NULL OR created_at < :created_before)
   AND (:started_after IS NULL OR started_at >= :started_after)
   AND (:started_before IS NULL OR started_at < :started_before)
   AND (:text IS NULL OR lower(task) LIKE :text ESCAPE '\' OR lower(description) LIKE :text ESCAPE '\')
   AND (:stalled IS NULL OR (status = 'in_process' AND stalled_at IS NOT NULL) = :stalled)
   AND (:after_entry_no IS NULL OR entry_no > :after_entry_no)
   AND (:before_entry_no IS NULL OR entry_no < :before_entry_no)
 ORDER BY entry_no
 LIMIT :limit;

-- name: list_operations_desc
-- Newest first (dashboards); a page goes on before the last entry number it showed.
SELECT * FROM longops_operations
 WHERE (:company IS NULL OR company = :company)
   AND (:companies IS NULL OR company IN (SELECT value FROM json_each(:companies)))
   AND (:statuses = '[]' OR status IN (SELECT value FROM json_each(:statuses)))
   AND (:task IS NULL OR task = :task)
   AND (:category IS NULL OR category = :category)
   AND (:queue IS NULL OR queue = :queue)
   AND (:user_name IS NULL OR user_name = :user_name)
   AND (:created_after IS NULL OR created_at >= :created_after)
   AND (:created_before IS NULL OR created_at < :created_before)
   AND (:started_after IS NULL OR started_at >= :started_after)
   AND (:started_before IS NULL OR started_at < :started_before)
   AND (:text IS NULL OR lower(task) LIKE :text ESCAPE '\' OR lower(description) LIKE :text ESCAPE '\')
   AND (:stalled IS NULL OR (status = 'in_process' AND stalled_at IS NOT NULL) = :stalled)
   AND (:after_entry_no IS NULL OR entry_no > :after_entry_no)
   AND (:before_entry_no IS NULL OR entry_no < :before_entry_no)
 ORDER BY entry_no DESC
 LIMIT :limit;

-- name: count_operations
SELECT status, count(*) AS n FROM longops_operations
 WHERE (:company IS NULL OR company = :company)
   AND (:companies IS NULL OR company IN (SELECT value FROM json_each(:companies)))
 GROUP BY status;

-- name: apply_action
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

-- name: insert_event
INSERT INTO longops_operation_events (operation_id, company, at, type, run_no, data)
VALUES (:id, :company, :at, :type, :run_no, :data);

-- name: request_cancel
UPDATE longops_operations SET
    cancel_requested_at = coalesce(cancel_requested_at, :at),
    -- A forced request on top of another keeps who first asked and why (the timeline has
    -- both requests).
    cancel_requested_by = CASE WHEN cancel_requested_at IS NULL THEN :by ELSE cancel_requested_by END,
    cancel_reason = CASE WHEN cancel_requested_at IS NULL THEN :reason ELSE cancel_reason END,
    cancel_force = cancel_force OR :force,
    updated_at = :at
 WHERE id = :id
   AND (:company IS NULL OR company = :company)
   AND status = 'in_process'
   AND (cancel_requested_at IS NULL OR (:force AND NOT cancel_force))
RETURNING *;

-- name: delete_operation
DELETE FROM longops_operations
 WHERE id = :id
   AND (:company IS NULL OR company = :company)
   AND status <> 'in_process'
RETURNING id;

-- name: delete_events
DELETE FROM longops_operation_events WHERE operation_id = :id;

-- name: delete_failed
DELETE FROM longops_operations
 WHERE company = :company AND status = 'error' AND recurrence IS NULL
   AND ended_at <= :ended_before
RETURNING id;

-- name: list_attempts
SELECT * FROM longops_attempts
 WHERE operation_id = :id AND (:companies IS NULL OR company IN (SELECT value FROM json_each(:companies)))
 ORDER BY run_no;

-- name: claim_operations
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
-- The companies served now go to the back of the line for the next claim; with one active
-- company there is no line, and the write is saved.
UPDATE longops_companies SET served_seq = (SELECT max(served_seq) + 1 FROM longops_companies)
 WHERE name IN (SELECT value FROM json_each(:companies))
   AND (SELECT count(*) FROM longops_companies WHERE active) > 1;

-- name: insert_claimed_attempts
-- The attempt row of each operation just claimed (ids: a JSON array), committed with the
-- claim, before task code runs, so a crash always leaves evidence.
INSERT INTO longops_attempts (operation_id, company, run_no, attempt, session_id, user_name, task, started_at, outcome)
SELECT id, company, run_count, attempt_count, session_id, user_name, task, :now, 'in_process'
  FROM longops_operations
 WHERE id IN (SELECT value FROM json_each(:ids));

-- name: log_claimed
INSERT INTO longops_operation_events (operation_id, company, at, type, run_no, data)
SELECT id, company, :now, 'attempt_started', run_count,
       json_object('session_id', session_id, 'attempt', attempt_count)
  FROM longops_operations
 WHERE id IN (SELECT value FROM json_each(:ids))
 ORDER BY entry_no;

-- name: log_finished
INSERT INTO longops_operation_events (operation_id, company, at, type, run_no, data)
VALUES (:id, :company, :at, 'attempt_ended', :run_no,
        json_object('outcome', :outcome, 'status', :final_status, 'reason', :final_reason,
                    'stop_mode', :stop_mode, 'cancel_mode', :final_cancel_mode,
                    'error', substr(:error_message, 1, 200)));

-- name: last_reading
SELECT progress FROM longops_operations
 WHERE id = :id AND status = 'in_process' AND lease_token = :lease_token;

-- name: finish_operation
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
 WHERE id = :id AND status = 'in_process' AND lease_token = :lease_token
RETURNING id, company, status, status_reason, cancel_mode;

-- name: finish_attempt
UPDATE longops_attempts SET
    started_at = coalesce(:run_started_at, started_at),
    ended_at = :at, outcome = :outcome, error_message = :error_message, traceback = :traceback,
    stop_mode = :stop_mode, progress = coalesce(:progress, :last_reading), peak_rss = :peak_rss
 WHERE operation_id = :id AND run_no = :run_no;

-- name: next_due_at
SELECT min(earliest_start_at) AS due FROM longops_operations
 WHERE status = 'ready' AND queue IN (SELECT value FROM json_each(:queues))
   AND queue NOT IN (SELECT name FROM longops_paused_queues)
   AND (:companies IS NULL OR company IN (SELECT value FROM json_each(:companies)));

-- name: insert_session
INSERT INTO longops_sessions (id, host, pid, queues, concurrency, state, started_at, last_heartbeat_at, companies, tasks, code_version, schema_version)
VALUES (:id, :host, :pid, :queues, :concurrency, :state, :started_at, :started_at, :companies, :tasks, :code_version, :schema_version);

-- name: heartbeat
UPDATE longops_sessions SET last_heartbeat_at = :at
 WHERE id = :id AND state IN ('active', 'draining')
RETURNING state;

-- name: get_session_state
SELECT state FROM longops_sessions WHERE id = :id;

-- name: end_session
UPDATE longops_sessions SET state = :state,
       ended_at = CASE WHEN :state IN ('stopped', 'lost') THEN :at ELSE ended_at END
 WHERE id = :id AND state <> 'lost';

-- name: insert_session_event
INSERT INTO longops_session_events (session_id, type, at, comment)
VALUES (:session_id, :type, :at, :comment);

-- name: list_sessions
SELECT * FROM longops_sessions
 WHERE NOT :active_only OR state IN ('active', 'draining')
 ORDER BY started_at DESC
 LIMIT 500;

-- name: list_session_events
SELECT * FROM longops_session_events
 WHERE :session_id IS NULL OR session_id = :session_id
 ORDER BY id DESC
 LIMIT 1000;

-- name: mark_lost_sessions
UPDATE longops_sessions SET state = 'lost', ended_at = :now
 WHERE state IN ('active', 'draining') AND last_heartbeat_at < :cutoff
RETURNING id;

-- name: orphaned_runs
SELECT o.* FROM longops_operations o
  LEFT JOIN longops_sessions s ON s.id = o.session_id
 WHERE o.status = 'in_process'
   AND (s.id IS NULL OR s.state IN ('lost', 'stopped'))
 LIMIT :limit;

-- name: session_runs
-- What the database says a session runs: its worker compares this with its own table of
-- runs and hands back any it does not know (a claim whose reply was lost).
SELECT o.* FROM longops_operations o
 WHERE o.status = 'in_process' AND o.session_id = :session_id
 ORDER BY o.entry_no;

-- name: expire_operations
UPDATE longops_operations SET status = 'cancelled', status_reason = 'expired',
       cancel_mode = 'expired', ended_at = :now, updated_at = :now
 WHERE status = 'ready' AND expires_at IS NOT NULL AND expires_at <= :now
RETURNING id, company, run_count;

-- name: prune_operations
DELETE FROM longops_operations
 WHERE status IN ('finished', 'cancelled') AND ended_at < :before;

-- name: prune_attempts
-- An operation in error keeps its history until someone restarts or removes it.
DELETE FROM longops_attempts AS a
 WHERE a.ended_at < :before
   AND NOT EXISTS (SELECT 1 FROM longops_operations o
                    WHERE o.id = a.operation_id AND o.status = 'error');

-- name: prune_operation_events
-- As with attempts, an operation in error (or still running) keeps its timeline. Ids
-- follow time, so the cut is found by walking the key from the oldest event: no index on
-- the time is paid for in the hot path. At most 10,000 rows a statement (the caller
-- repeats), so a large backlog never holds one long transaction.
DELETE FROM longops_operation_events
 WHERE id IN (
    SELECT e.id FROM longops_operation_events e
     WHERE e.id < coalesce((SELECT id FROM longops_operation_events WHERE at >= :before
                            ORDER BY id LIMIT 1), 9223372036854775807)
       AND NOT EXISTS (SELECT 1 FROM longops_operations o
                        WHERE o.id = e.operation_id AND o.status IN ('error', 'in_process'))
     ORDER BY e.id
     LIMIT 10000);

-- name: prune_session_events
DELETE FROM longops_session_events WHERE at < :before;

-- name: prune_sessions
DELETE FROM longops_sessions WHERE state IN ('stopped', 'lost') AND ended_at < :before;

-- name: try_lead
INSERT INTO longops_leaders (name, session_id, expires_at)
VALUES (:name, :session_id, :expires_at)
ON CONFLICT (name) DO UPDATE
   SET session_id = excluded.session_id, expires_at = excluded.expires_at
 WHERE longops_leaders.expires_at < :now OR longops_leaders.session_id = excluded.session_id
RETURNING session_id;

-- name: resign
DELETE FROM longops_leaders WHERE name = :name AND session_id = :session_id;

-- name: ready_recurring
SELECT * FROM longops_operations
 WHERE status = 'ready' AND recurrence IS NOT NULL AND earliest_start_at <= :now
 ORDER BY entry_no
 LIMIT :limit;

-- name: move_start
UPDATE longops_operations SET earliest_start_at = :new_start, updated_at = :at
 WHERE id = :id AND status = 'ready' AND earliest_start_at = :expected_start
RETURNING id;

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS longops_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    checksum    TEXT NOT NULL,
    applied_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now'))
);

-- name: list_migrations
SELECT version, name, checksum FROM longops_migrations ORDER BY version;

-- name: record_migration
INSERT INTO longops_migrations (version, name, checksum) VALUES (:version, :name, :checksum);

-- name: record_migration_flags
UPDATE longops_migrations SET flags = :flags WHERE version = :version;

-- name: cancel_requested
SELECT id, cancel_force, cancel_reason, cancel_requested_by FROM longops_operations
 WHERE id IN (SELECT value FROM json_each(:ids)) AND status = 'in_process' AND cancel_requested_at IS NOT NULL;

-- name: flush_progress_one
UPDATE longops_operations SET
    progress = :progress,
    progress_moved_at = CASE WHEN :moved THEN :at ELSE progress_moved_at END,
    stalled_at = CASE WHEN :moved THEN NULL ELSE stalled_at END,
    updated_at = :at
 WHERE id = :id AND status = 'in_process' AND lease_token = :lease_token;

-- name: save_checkpoint
-- The state and the progress so far in one write; the stall clock moves only when the
-- progress did (a checkpoint alone is not movement).
UPDATE longops_operations SET
    checkpoint = :state, checkpoint_at = :at,
    progress = coalesce(:progress, progress),
    progress_moved_at = CASE WHEN :moved THEN :at ELSE progress_moved_at END,
    stalled_at = CASE WHEN :moved THEN NULL ELSE stalled_at END,
    updated_at = :at
 WHERE id = :id AND status = 'in_process' AND lease_token = :lease_token;

-- name: mark_cancel_overdue
UPDATE longops_operations SET cancel_overdue_at = :at, updated_at = :at
 WHERE id = :id AND status = 'in_process' AND lease_token = :lease_token
   AND cancel_overdue_at IS NULL
RETURNING id, company, run_count;

-- name: flag_stalled
-- Differs from PostgreSQL: times are text, so the elapsed seconds come from julianday
-- arithmetic, whose rounding (tens of microseconds) a millisecond of slack absorbs.
UPDATE longops_operations SET stalled_at = :now
 WHERE status = 'in_process' AND stalled_at IS NULL
   AND (julianday(:now) - julianday(progress_moved_at)) * 86400.0 >= stall_after_seconds - 0.001
RETURNING id, company, run_count, progress_moved_at;

-- name: list_events
SELECT * FROM longops_operation_events
 WHERE operation_id = :id
   AND (:after_id IS NULL OR id > :after_id)
   AND (:types = '[]' OR type IN (SELECT value FROM json_each(:types)))
   AND (:run_no IS NULL OR run_no = :run_no)
 ORDER BY CASE WHEN :newest_first THEN -id ELSE id END
 LIMIT :limit;

-- name: running_in_categories
SELECT company, category, id FROM longops_operations
 WHERE status = 'in_process' AND category IS NOT NULL
 ORDER BY entry_no;

-- name: list_all_categories
SELECT * FROM longops_categories ORDER BY company, code;

-- name: served_queues
SELECT DISTINCT q.value AS name, s.companies, s.tasks FROM longops_sessions s, json_each(s.queues) q
 WHERE s.state = 'active';

-- name: running_per_company
SELECT company, count(*) AS running FROM longops_operations
 WHERE status = 'in_process'
 GROUP BY company;

-- name: recent_durations
SELECT (julianday(ended_at) - julianday(started_at)) * 86400.0 AS seconds
  FROM (SELECT task, outcome, started_at, ended_at FROM longops_attempts
         WHERE ended_at IS NOT NULL ORDER BY ended_at DESC LIMIT 5000) recent
 WHERE task = :task AND outcome = 'success'
 ORDER BY ended_at DESC
 LIMIT :limit;

-- name: lock_run_row
-- A running operation's row while its run holds the lease (SQLite's single writer already excludes others).
SELECT company, run_count, stalled_at FROM longops_operations
 WHERE id = :id AND status = 'in_process' AND lease_token = :lease_token;
-- name: insert_audit
INSERT INTO longops_audit_log (company, at, actor, front_end, action, target, details)
VALUES (:company, :at, :actor, :front_end, :action, :target, :details);

-- name: list_audit
SELECT * FROM longops_audit_log
 WHERE ((:companies IS NULL AND company IS NOT NULL)
        OR company IN (SELECT value FROM json_each(coalesce(:companies, '[]')))
        OR (:include_global AND company IS NULL))
   AND (:before_id IS NULL OR id < :before_id)
 ORDER BY id DESC
 LIMIT :limit;

-- name: insert_user
INSERT INTO longops_users (name, display_name, password_hash, state, is_super, created_at, updated_at)
VALUES (:name, :display_name, :password_hash, :state, :is_super, :created_at, :created_at)
ON CONFLICT (name) DO NOTHING
RETURNING name;

-- name: get_user
SELECT name, display_name, state, is_super, created_at, disabled_at,
       password_hash IS NOT NULL AS has_password
  FROM longops_users WHERE name = :name;

-- name: list_users
SELECT name, display_name, state, is_super, created_at, disabled_at,
       password_hash IS NOT NULL AS has_password
  FROM longops_users ORDER BY name;

-- name: list_memberships
SELECT user_name, company, permission_set FROM longops_memberships
 WHERE :name IS NULL OR user_name = :name
 ORDER BY user_name, company, permission_set;

-- name: get_password_hash
SELECT password_hash FROM longops_users WHERE name = :name;

-- name: set_password_hash
UPDATE longops_users SET password_hash = :password_hash, updated_at = :at
 WHERE name = :name
RETURNING name;

-- name: set_user_state
UPDATE longops_users SET state = :state, updated_at = :at,
       disabled_at = CASE WHEN :state = 'disabled' THEN :at ELSE NULL END
 WHERE name = :name
RETURNING name;

-- name: set_user_super
UPDATE longops_users SET is_super = :is_super, updated_at = :at
 WHERE name = :name
RETURNING name;

-- name: delete_user
DELETE FROM longops_users WHERE name = :name RETURNING name;

-- name: insert_membership
INSERT INTO longops_memberships (user_name, company, permission_set, granted_at)
VALUES (:name, :company, :permission_set, :at)
ON CONFLICT DO NOTHING
RETURNING user_name;

-- name: delete_membership
DELETE FROM longops_memberships
 WHERE user_name = :name AND company = :company AND permission_set = :permission_set
RETURNING user_name;

-- name: active_users
SELECT name FROM longops_users
 WHERE state = 'active' AND name IN (SELECT value FROM json_each(:names));

-- name: insert_token
INSERT INTO longops_api_tokens (id, user_name, name, token_hash, created_at, expires_at)
VALUES (:id, :user_name, :name, :token_hash, :created_at, :expires_at)
ON CONFLICT (user_name, name) WHERE revoked_at IS NULL DO NOTHING
RETURNING id;

-- name: get_token
SELECT t.*, u.state AS user_state
  FROM longops_api_tokens t JOIN longops_users u ON u.name = t.user_name
 WHERE t.id = :id;

-- name: get_token_user
-- The user a token belongs to (as get_user reads it), keyed by the token.
SELECT u.name, u.display_name, u.state, u.is_super, u.created_at, u.disabled_at,
       u.password_hash IS NOT NULL AS has_password
  FROM longops_api_tokens t JOIN longops_users u ON u.name = t.user_name
 WHERE t.id = :id;

-- name: list_token_memberships
SELECT m.user_name, m.company, m.permission_set
  FROM longops_api_tokens t JOIN longops_memberships m ON m.user_name = t.user_name
 WHERE t.id = :id
 ORDER BY m.user_name, m.company, m.permission_set;

-- name: touch_token
UPDATE longops_api_tokens SET last_used_at = :at
 WHERE id = :id AND (last_used_at IS NULL OR last_used_at < :not_since);

-- name: list_tokens
SELECT * FROM longops_api_tokens WHERE user_name = :user_name ORDER BY created_at, name;

-- name: revoke_token
UPDATE longops_api_tokens SET revoked_at = :at
 WHERE id = :id AND revoked_at IS NULL
RETURNING id;

-- name: personal_operations
SELECT * FROM longops_operations
 WHERE user_name = :name OR cancel_requested_by = :name
 ORDER BY entry_no;

-- name: personal_attempts
SELECT * FROM longops_attempts WHERE user_name = :name ORDER BY entry_no;

-- name: personal_audit
SELECT * FROM longops_audit_log WHERE actor = :name OR target = :target ORDER BY id;

-- name: forget_operations
UPDATE longops_operations SET
    user_name = CASE WHEN user_name = :name THEN :pseudonym ELSE user_name END,
    cancel_requested_by = CASE WHEN cancel_requested_by = :name THEN :pseudonym ELSE cancel_requested_by END
 WHERE user_name = :name OR cancel_requested_by = :name;

-- name: forget_attempts
UPDATE longops_attempts SET user_name = :pseudonym WHERE user_name = :name;

-- name: forget_audit
UPDATE longops_audit_log SET
    actor = CASE WHEN actor = :name THEN :pseudonym ELSE actor END,
    target = CASE WHEN target = :target THEN :pseudonym_target ELSE target END
 WHERE actor = :name OR target = :target;

-- name: personal_events
SELECT * FROM longops_operation_events WHERE json_extract(data, '$.by') = :name ORDER BY id;

-- name: forget_events
UPDATE longops_operation_events SET data = json_set(data, '$.by', :pseudonym)
 WHERE json_extract(data, '$.by') = :name;

-- name: events_since
SELECT * FROM longops_operation_events
 WHERE id > :after_id
 ORDER BY id
 LIMIT :limit;

-- name: last_event_id
SELECT coalesce(max(id), 0) AS id FROM longops_operation_events;

-- name: last_entry_no
SELECT coalesce(max(entry_no), 0) AS entry_no FROM longops_operations;

-- name: get_operation_any
SELECT * FROM longops_operations WHERE id = :id;

-- name: company_events_since
SELECT * FROM longops_operation_events
 WHERE id > :after_id AND company = :company
 ORDER BY id
 LIMIT :limit;

-- name: request_drain
-- Someone asks a live session to drain; the worker sees it at its next heartbeat.
UPDATE longops_sessions SET state = 'draining'
 WHERE id = :id AND state = 'active'
RETURNING *;

-- == the pages (migration 0005) ==========================================================

-- name: count_operations_capped
-- The list's filter, counted no further than :cap (facets and cues stop at "10,000+").
SELECT count(*) AS n FROM (
  SELECT 1 FROM longops_operations
   WHERE (:company IS NULL OR company = :company)
     AND (:companies IS NULL OR company IN (SELECT value FROM json_each(:companies)))
     AND (:statuses = '[]' OR status IN (SELECT value FROM json_each(:statuses)))
     AND (:task IS NULL OR task = :task)
     AND (:category IS NULL OR category = :category)
     AND (:queue IS NULL OR queue = :queue)
     AND (:user_name IS NULL OR user_name = :user_name)
     AND (:created_after IS NULL OR created_at >= :created_after)
     AND (:created_before IS NULL OR created_at < :created_before)
     AND (:started_after IS NULL OR started_at >= :started_after)
     AND (:started_before IS NULL OR started_at < :started_before)
     AND (:text IS NULL OR lower(task) LIKE :text ESCAPE '\' OR lower(description) LIKE :text ESCAPE '\')
     AND (:stalled IS NULL OR (status = 'in_process' AND stalled_at IS NOT NULL) = :stalled)
   LIMIT :cap
);

-- name: count_operations_capped_status
-- The same, for one company and one status: plain equalities, so that SQLite, which does
-- not fold bound parameters, walks the (company, status, entry_no) index.
SELECT count(*) AS n FROM (
  SELECT 1 FROM longops_operations
   WHERE company = :company AND status = :status
     AND (:companies IS NULL OR company IN (SELECT value FROM json_each(:companies)))
     AND (:task IS NULL OR task = :task)
     AND (:category IS NULL OR category = :category)
     AND (:queue IS NULL OR queue = :queue)
     AND (:user_name IS NULL OR user_name = :user_name)
     AND (:created_after IS NULL OR created_at >= :created_after)
     AND (:created_before IS NULL OR created_at < :created_before)
     AND (:started_after IS NULL OR started_at >= :started_after)
     AND (:started_before IS NULL OR started_at < :started_before)
     AND (:text IS NULL OR lower(task) LIKE :text ESCAPE '\' OR lower(description) LIKE :text ESCAPE '\')
     AND (:stalled IS NULL OR (status = 'in_process' AND stalled_at IS NOT NULL) = :stalled)
   LIMIT :cap
);

-- name: list_running
-- Operations in process, the one that started first first (Overview's longest running, the
-- header's running operations, the Sessions page's current operations).
SELECT * FROM longops_operations
 WHERE status = 'in_process'
   AND (:company IS NULL OR company = :company)
   AND (:companies IS NULL OR company IN (SELECT value FROM json_each(:companies)))
   AND (:user_name IS NULL OR user_name = :user_name)
 ORDER BY started_at, entry_no
 LIMIT :limit;

-- name: runs_per_hour
-- Runs that ended since :since, per hour after it (bucket 0 is the oldest hour).
SELECT (CAST(strftime('%s', ended_at) AS INTEGER) - CAST(strftime('%s', :since) AS INTEGER)) / 3600 AS bucket,
       sum(CASE WHEN outcome = 'success' THEN 1 ELSE 0 END) AS finished,
       sum(CASE WHEN outcome IN ('error', 'timeout', 'lost') THEN 1 ELSE 0 END) AS failed
  FROM longops_attempts
 WHERE company = :company AND ended_at >= :since AND ended_at < :until
 GROUP BY bucket;

-- name: category_activity
SELECT c.code,
       (SELECT count(*) FROM longops_operations o
         WHERE o.company = c.company AND o.category = c.code AND o.status = 'in_process') AS running,
       (SELECT count(*) FROM (SELECT 1 FROM longops_operations o
         WHERE o.company = c.company AND o.category = c.code AND o.status = 'ready' LIMIT :cap)) AS waiting
  FROM longops_categories c
 WHERE c.company = :company
 ORDER BY c.code;

-- name: list_company_attempts
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

-- name: delete_attempts
-- "Delete Entries older than": ended log entries only (a run in process keeps its own).
DELETE FROM longops_attempts
 WHERE company = :company AND ended_at IS NOT NULL AND ended_at < :ended_before;

-- name: update_operation
-- Editing is Business Central's rule: only while on hold.
UPDATE longops_operations SET
    description = :description,
    priority = :priority,
    category = :category,
    earliest_start_at = :earliest_start_at,
    recurrence = :recurrence,
    max_attempts = :max_attempts,
    timeout_seconds = :timeout_seconds,
    updated_at = :at
 WHERE id = :id AND company = :company AND status = 'on_hold'
RETURNING *;

-- name: list_notifications
SELECT * FROM longops_notifications
 WHERE company = :company AND user_name = :user_name
   AND (NOT :unread_only OR read_at IS NULL)
   AND (:before_id IS NULL OR id < :before_id)
 ORDER BY id DESC
 LIMIT :limit;

-- name: count_unread_notifications
SELECT count(*) AS n FROM longops_notifications
 WHERE company = :company AND user_name = :user_name AND read_at IS NULL;

-- name: mark_notifications_read
UPDATE longops_notifications SET read_at = :at
 WHERE company = :company AND user_name = :user_name AND read_at IS NULL
   AND (:ids IS NULL OR id IN (SELECT value FROM json_each(:ids)));

-- name: notifications_since
SELECT * FROM longops_notifications WHERE id > :after_id ORDER BY id LIMIT :limit;

-- name: last_notification_id
SELECT coalesce(max(id), 0) AS id FROM longops_notifications;

-- name: personal_notifications
SELECT * FROM longops_notifications WHERE user_name = :name ORDER BY id;

-- name: forget_notifications
UPDATE longops_notifications SET user_name = :pseudonym WHERE user_name = :name;

-- name: prune_notifications
-- With the operations they tell of: past the retention period, read or not.
DELETE FROM longops_notifications WHERE created_at < :before;

-- name: insert_web_session
INSERT INTO longops_web_sessions (id, user_name, secret_hash, created_at, last_seen_at, expires_at, client)
VALUES (:id, :user_name, :secret_hash, :created_at, :created_at, :expires_at, :client)
RETURNING id;

-- name: get_web_session
SELECT s.*, u.state AS user_state
  FROM longops_web_sessions s JOIN longops_users u ON u.name = s.user_name
 WHERE s.id = :id;

-- name: touch_web_session
-- At most one write per session per interval, however many pages it reads.
UPDATE longops_web_sessions SET last_seen_at = :at
 WHERE id = :id AND last_seen_at < :not_since AND revoked_at IS NULL;

-- name: list_web_sessions
SELECT * FROM longops_web_sessions WHERE user_name = :user_name ORDER BY created_at DESC, id;

-- name: revoke_web_sessions
-- One session (id given) or every live one of the user (not yet past its absolute end).
UPDATE longops_web_sessions SET revoked_at = :at
 WHERE user_name = :user_name AND revoked_at IS NULL AND expires_at > :at
   AND (:id IS NULL OR id = :id)
RETURNING id;

-- name: prune_web_sessions
DELETE FROM longops_web_sessions WHERE expires_at < :before;

-- == notifications (migration 8) ==

-- name: upsert_notify_rule
INSERT INTO longops_notify_rules (company, name, on_event, task, category, queue, user_name, recipients, enabled, created_at, threshold)
VALUES (:company, :name, :on_event, :task, :category, :queue, :user_name, :recipients, :enabled, :created_at, :threshold)
ON CONFLICT (company, name) DO UPDATE
   SET on_event = excluded.on_event, task = excluded.task, category = excluded.category,
       queue = excluded.queue, user_name = excluded.user_name,
       recipients = excluded.recipients, enabled = excluded.enabled,
       threshold = excluded.threshold
RETURNING *;

-- name: delete_notify_rule
DELETE FROM longops_notify_rules WHERE company = :company AND name = :name RETURNING name;

-- name: list_notify_rules
SELECT * FROM longops_notify_rules WHERE company = :company ORDER BY name;

-- name: add_notified_admin
INSERT INTO longops_notified_admins (company, user_name) VALUES (:company, :user_name)
ON CONFLICT DO NOTHING RETURNING user_name;

-- name: remove_notified_admin
DELETE FROM longops_notified_admins WHERE company = :company AND user_name = :user_name
RETURNING user_name;

-- name: list_notified_admins
SELECT user_name FROM longops_notified_admins WHERE company = :company ORDER BY user_name;

-- name: upsert_notify_channel
INSERT INTO longops_notify_channels (company, name, url_secret, url_masked, url_schema, rate_limit, rate_window, created_at)
VALUES (:company, :name, :url_secret, :url_masked, :url_schema, :rate_limit, :rate_window, :created_at)
ON CONFLICT (company, name) DO UPDATE
   SET url_secret = excluded.url_secret, url_masked = excluded.url_masked,
       url_schema = excluded.url_schema, rate_limit = excluded.rate_limit,
       rate_window = excluded.rate_window
RETURNING company, name, url_masked, url_schema, rate_limit, rate_window, created_at;

-- name: delete_notify_channel
DELETE FROM longops_notify_channels WHERE company = :company AND name = :name RETURNING name;

-- name: list_notify_channels
SELECT company, name, url_masked, url_schema, rate_limit, rate_window, created_at
  FROM longops_notify_channels WHERE company = :company ORDER BY name;

-- name: get_notify_channel_secret
SELECT url_secret, rate_limit, rate_window FROM longops_notify_channels
 WHERE company = :company AND name = :name;

-- name: pending_outbox
SELECT id, company, operation_id, event, at, rule_name FROM longops_notify_outbox
 WHERE expanded_at IS NULL ORDER BY id LIMIT :limit;

-- name: mark_outbox_expanded
UPDATE longops_notify_outbox SET expanded_at = :at WHERE id = :id AND expanded_at IS NULL;

-- name: insert_delivery
INSERT INTO longops_notify_deliveries (outbox_id, company, operation_id, event, rule_name, recipient, idem_key, next_at, created_at)
VALUES (:outbox_id, :company, :operation_id, :event, :rule_name, :recipient, :idem_key, :at, :at)
ON CONFLICT DO NOTHING;

-- name: finish_delivery
UPDATE longops_notify_deliveries
   SET status = :status, next_at = :next_at, last_error = :error,
       attempts = attempts - :uncharge,
       sent_at = :sent_at, claim_token = NULL, locked_until = NULL
 WHERE id = :id AND claim_token = :claim_token AND status = 'pending'
RETURNING id;

-- name: insert_inbox_notification
INSERT INTO longops_notifications (company, user_name, operation_id, kind, title, created_at)
VALUES (:company, :user_name, :operation_id, :kind, :title, :at);

-- name: list_deliveries
SELECT * FROM longops_notify_deliveries
 WHERE company = :company AND (:status IS NULL OR status = :status)
 ORDER BY id DESC LIMIT :limit;

-- name: count_recent_sends
-- What a channel's rate limit counts: each send, a digest (its items share one sent_at) once.
SELECT (SELECT count(*) FROM longops_notify_deliveries
         WHERE company = :company AND recipient = :recipient
           AND status = 'sent' AND sent_at > :since)
     + (SELECT count(DISTINCT sent_at) FROM longops_notify_deliveries
         WHERE company = :company AND recipient = :recipient
           AND status = 'digested' AND sent_at > :since) AS n;

-- name: retry_delivery
UPDATE longops_notify_deliveries
   SET status = 'pending', attempts = 0, next_at = :at, claim_token = NULL, locked_until = NULL
 WHERE company = :company AND id = :id AND status = 'dead'
RETURNING id;

-- name: claim_deliveries
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

-- name: list_watch_rules
-- The enabled rules whose conditions need a clock (the watch service).
SELECT * FROM longops_notify_rules
 WHERE enabled = 1 AND on_event IN ('running_long', 'waiting_long', 'milestone')
 ORDER BY company, name;

-- name: insert_watched
-- Once per dedup key: a condition still met at the next look is not told again.
INSERT INTO longops_notify_outbox (company, operation_id, event, at, rule_name, dedup)
VALUES (:company, :operation_id, :event, :at, :rule_name, :dedup)
ON CONFLICT DO NOTHING;

-- name: prune_notify_deliveries
-- Deliveries done with (sent, digested, dead) past the retention period; pending ones stay.
DELETE FROM longops_notify_deliveries
 WHERE status <> 'pending' AND created_at < :before;

-- name: prune_notify_outbox
-- Expanded outbox entries past the retention period with no delivery left.
DELETE FROM longops_notify_outbox
 WHERE expanded_at IS NOT NULL AND at < :before
   AND NOT EXISTS (SELECT 1 FROM longops_notify_deliveries d WHERE d.outbox_id = longops_notify_outbox.id);

-- name: mute_rule
INSERT INTO longops_notify_mutes (company, user_name, rule_name)
VALUES (:company, :user_name, :rule_name) ON CONFLICT DO NOTHING;

-- name: unmute_rule
DELETE FROM longops_notify_mutes
 WHERE company = :company AND user_name = :user_name AND rule_name = :rule_name;

-- name: list_mutes
SELECT user_name, rule_name FROM longops_notify_mutes WHERE company = :company
 ORDER BY user_name, rule_name;

-- name: deliveries_due
-- Whether a claim would find anything: a read, so an idle sender takes no write lock.
SELECT 1 AS due FROM longops_notify_deliveries
 WHERE status = 'pending' AND next_at <= :now
   AND (locked_until IS NULL OR locked_until <= :now)
 LIMIT 1;

-- name: fleet_metrics
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

-- name: set_user_contact
UPDATE longops_users SET email = :email, notify_by_email = :notify_by_email, updated_at = :at
 WHERE name = :name RETURNING name;

-- name: get_user_contact
SELECT email, notify_by_email FROM longops_users WHERE name = :name;

-- name: email_recipients
SELECT name, email FROM longops_users
 WHERE notify_by_email = 1 AND email IS NOT NULL AND state = 'active' ORDER BY name;

-- name: clear_personal_email_channel
UPDATE longops_notify_channels SET personal_email = 0
 WHERE company = :company AND personal_email = 1;

-- name: mark_personal_email_channel
UPDATE longops_notify_channels SET personal_email = 1
 WHERE company = :company AND name = :name RETURNING name;

-- name: personal_email_channel
SELECT name FROM longops_notify_channels WHERE company = :company AND personal_email = 1;

-- ---------------------------------------------------------------------------------------
-- Apps (issue 15): the schema guard, the app registry, uninstall and export.

-- name: set_session_tasks
UPDATE longops_sessions SET tasks = :tasks WHERE id = :id;

-- name: list_migrations_flags
SELECT * FROM longops_migrations ORDER BY version;

-- name: upsert_app
INSERT INTO longops_apps (name, version, seen_at) VALUES (:app, :version, :at)
ON CONFLICT (name) DO UPDATE
   SET version = excluded.version, seen_at = excluded.seen_at,
       uninstalled_at = NULL, purge_at = NULL;

-- name: insert_app_task
INSERT INTO longops_app_tasks (app, task, worker_wait_seconds) VALUES (:app, :task, :wait)
ON CONFLICT (app, task) DO UPDATE SET worker_wait_seconds = excluded.worker_wait_seconds;

-- name: list_apps
SELECT * FROM longops_apps ORDER BY name;

-- name: get_app
SELECT * FROM longops_apps WHERE name = :app;

-- name: list_app_tasks
SELECT * FROM longops_app_tasks ORDER BY app, task;

-- name: mark_app_uninstalled
UPDATE longops_apps SET uninstalled_at = coalesce(:at, uninstalled_at),
       purge_at = coalesce(:purge_at, purge_at)
 WHERE name = :app;

-- name: mark_app_exported
UPDATE longops_apps SET exported_at = :at WHERE name = :app;

-- name: operations_of_tasks
SELECT * FROM longops_operations
 WHERE task IN (SELECT value FROM json_each(:tasks))
   AND (:companies IS NULL OR company IN (SELECT value FROM json_each(:companies)))
   AND entry_no > :after
 ORDER BY entry_no
 LIMIT 1000;

-- name: delete_unused_categories
-- Operations keep their category (a foreign key): one any operation still names stays.
DELETE FROM longops_categories
 WHERE company = :company AND code IN (SELECT value FROM json_each(:codes))
   AND NOT EXISTS (SELECT 1 FROM longops_operations o
                    WHERE o.company = longops_categories.company
                      AND o.category = longops_categories.code)
RETURNING code;

-- name: fail_unserved
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
DELETE FROM longops_operation_events WHERE operation_id IN (
    SELECT o.id FROM longops_operations o
     WHERE o.status IN ('finished', 'error', 'cancelled')
       AND o.task IN (SELECT t.task FROM longops_app_tasks t
                        JOIN longops_apps a ON a.name = t.app WHERE a.purge_at <= :now));

-- name: purge_uninstalled_attempts
DELETE FROM longops_attempts WHERE operation_id IN (
    SELECT o.id FROM longops_operations o
     WHERE o.status IN ('finished', 'error', 'cancelled')
       AND o.task IN (SELECT t.task FROM longops_app_tasks t
                        JOIN longops_apps a ON a.name = t.app WHERE a.purge_at <= :now));

-- name: purge_uninstalled
DELETE FROM longops_operations
 WHERE status IN ('finished', 'error', 'cancelled')
   AND task IN (SELECT t.task FROM longops_app_tasks t
                  JOIN longops_apps a ON a.name = t.app WHERE a.purge_at <= :now)
RETURNING id;

-- Maintenance mode (domain/maintenance.py, store/maintenance.py) -----------------------------

-- name: get_maintenance
SELECT * FROM longops_maintenance WHERE id = 1;

-- name: lock_maintenance
-- BEGIN IMMEDIATE already orders the switch after any claim in flight.
SELECT 1;

-- name: start_maintenance
UPDATE longops_maintenance
   SET active = 1, reason = :reason, drain_timeout = :drain_timeout, started_at = :at,
       stopped_at = NULL
 WHERE id = 1 AND NOT active
RETURNING *;

-- name: stop_maintenance
UPDATE longops_maintenance SET active = 0, stopped_at = :at
 WHERE id = 1 AND active
RETURNING *;
