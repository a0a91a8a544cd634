-- Named queries for SQLite. One query per Store method; parameters in :name style.
-- Lists arrive as JSON arrays and are read with json_each. Ids are 32-hex-digit UUIDs and
-- times fixed-width UTC text, so equality and order work on the stored text.

-- name: get_company
SELECT * FROM longops_companies WHERE name = :name;

-- name: get_operation_by_entry_no
SELECT * FROM longops_operations
 WHERE entry_no = :entry_no AND (:company IS NULL OR company = :company);

-- name: upsert_company
INSERT INTO longops_companies (name, display_name, time_zone, active)
VALUES (:name, :display_name, :time_zone, :active)
ON CONFLICT (name) DO UPDATE
   SET display_name = excluded.display_name, time_zone = excluded.time_zone,
       active = excluded.active
RETURNING *;

-- name: list_companies
SELECT * FROM longops_companies ORDER BY name;

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
    stall_after_seconds)
VALUES (
    :id, :company, :task, :args, :description, :queue, :category, :priority, :status,
    :earliest_start_at, :expires_at, :max_attempts, :rerun_delay, :retry_policy,
    :timeout_seconds, :recurrence, :user_name, :created_at, :created_at, :ready_at,
    :dedup_key, :labels, :stall_after_seconds)
ON CONFLICT (company, dedup_key) WHERE dedup_key IS NOT NULL AND status IN ('on_hold', 'ready', 'in_process')
DO NOTHING
RETURNING *;

-- name: get_active_by_dedup
SELECT * FROM longops_operations
 WHERE company = :company AND dedup_key = :dedup_key
   AND status IN ('on_hold', 'ready', 'in_process');

-- name: get_operation
SELECT * FROM longops_operations
 WHERE id = :id AND (:company IS NULL OR company = :company);

-- name: list_operations
SELECT * FROM longops_operations
 WHERE (:company IS NULL OR company = :company)
   AND (:statuses = '[]' OR status IN (SELECT value FROM json_each(:statuses)))
   AND (:task IS NULL OR task = :task)
   AND (:category IS NULL OR category = :category)
   AND (:queue IS NULL OR queue = :queue)
   AND (:after_entry_no IS NULL OR entry_no > :after_entry_no)
 ORDER BY entry_no
 LIMIT :limit;

-- name: count_operations
SELECT status, count(*) AS n FROM longops_operations
 WHERE (:company IS NULL OR company = :company)
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
SELECT * FROM longops_attempts WHERE operation_id = :id ORDER BY run_no;

-- name: claim_operations
-- Differs from PostgreSQL: no FOR UPDATE SKIP LOCKED and no LATERAL. The caller holds
-- the database's single write lock (BEGIN IMMEDIATE), so no other claim can interleave,
-- and a window function ranks each category's ready operations instead of LATERAL.
WITH paused AS (
    SELECT name FROM longops_paused_queues
),
served AS (
    SELECT value AS name FROM json_each(:queues)
),
busy AS (
    SELECT company, category, count(*) AS running
      FROM longops_operations
     WHERE status = 'in_process' AND category IS NOT NULL
     GROUP BY company, category
),
free_slots AS (
    SELECT c.company, c.code, c.max_concurrent - coalesce(b.running, 0) AS free
      FROM longops_categories c
      LEFT JOIN busy b ON b.company = c.company AND b.category = c.code
     WHERE NOT c.paused AND c.max_concurrent > coalesce(b.running, 0)
),
ranked AS (
    SELECT o.entry_no, o.priority, f.free,
           row_number() OVER (PARTITION BY o.company, o.category ORDER BY o.priority, o.entry_no) AS rn
      FROM longops_operations o INDEXED BY longops_operations_ready_category
      JOIN free_slots f ON f.company = o.company AND f.code = o.category
     WHERE o.status = 'ready' AND o.category IS NOT NULL
       AND o.earliest_start_at <= :now
       AND (o.expires_at IS NULL OR o.expires_at > :now)
       AND o.queue IN (SELECT name FROM served)
       AND o.queue NOT IN (SELECT name FROM paused)
),
candidates AS (
    SELECT entry_no, priority FROM ranked WHERE rn <= free
    UNION ALL
    SELECT entry_no, priority FROM (
        -- INDEXED BY: walk the index that is already in claim order and stop after the
        -- batch. Left to itself the planner may pick the due-time index and sort every
        -- due row, which costs milliseconds per claim once thousands are ready.
        SELECT o.entry_no, o.priority
          FROM longops_operations o INDEXED BY longops_operations_ready_fifo
         WHERE o.status = 'ready' AND o.category IS NULL
           AND o.queue IN (SELECT name FROM served)
           AND o.earliest_start_at <= :now
           AND (o.expires_at IS NULL OR o.expires_at > :now)
           AND o.queue NOT IN (SELECT name FROM paused)
         ORDER BY o.priority, o.entry_no
         LIMIT :limit)
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
 WHERE entry_no IN (SELECT entry_no FROM candidates ORDER BY priority, entry_no LIMIT :limit)
   -- A session declared lost (or draining) claims nothing, even before it notices.
   AND EXISTS (SELECT 1 FROM longops_sessions s WHERE s.id = :session_id AND s.state = 'active')
RETURNING *;

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
    stop_mode = :stop_mode, progress = coalesce(:progress, :last_reading)
 WHERE operation_id = :id AND run_no = :run_no;

-- name: next_due_at
SELECT min(earliest_start_at) AS due FROM longops_operations
 WHERE status = 'ready' AND queue IN (SELECT value FROM json_each(:queues))
   AND queue NOT IN (SELECT name FROM longops_paused_queues);

-- name: insert_session
INSERT INTO longops_sessions (id, host, pid, queues, concurrency, state, started_at, last_heartbeat_at)
VALUES (:id, :host, :pid, :queues, :concurrency, :state, :started_at, :started_at);

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
SELECT DISTINCT q.value AS name FROM longops_sessions s, json_each(s.queues) q
 WHERE s.state = 'active';

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
