-- Named queries for PostgreSQL. One query per Store method; parameters in %(name)s style.
-- Loaded once by longops.store.queries; never built up from strings elsewhere.

-- name: get_company
SELECT * FROM longops_companies WHERE name = %(name)s;

-- name: get_operation_by_entry_no
SELECT * FROM longops_operations
 WHERE entry_no = %(entry_no)s AND (%(company)s::text IS NULL OR company = %(company)s);

-- name: upsert_company
INSERT INTO longops_companies (name, display_name, time_zone, active)
VALUES (%(name)s, %(display_name)s, %(time_zone)s, %(active)s)
ON CONFLICT (name) DO UPDATE
   SET display_name = excluded.display_name, time_zone = excluded.time_zone,
       active = excluded.active
RETURNING *;

-- name: list_companies
SELECT * FROM longops_companies ORDER BY name;

-- name: upsert_category
INSERT INTO longops_categories (company, code, description, max_concurrent, paused)
VALUES (%(company)s, %(code)s, %(description)s, %(max_concurrent)s, %(paused)s)
ON CONFLICT (company, code) DO UPDATE
   SET description = excluded.description,
       max_concurrent = excluded.max_concurrent,
       paused = excluded.paused
RETURNING *;

-- name: get_category
SELECT * FROM longops_categories WHERE company = %(company)s AND code = %(code)s;

-- name: list_categories
SELECT * FROM longops_categories WHERE company = %(company)s ORDER BY code;

-- name: pause_queue
INSERT INTO longops_paused_queues (name, paused_at) VALUES (%(name)s, %(at)s)
ON CONFLICT (name) DO NOTHING;

-- name: resume_queue
DELETE FROM longops_paused_queues WHERE name = %(name)s;

-- name: list_paused_queues
SELECT name FROM longops_paused_queues;

-- name: insert_operation
-- A second active operation with the same dedup key in the company is not an error: the
-- caller gets the existing one (see get_active_by_dedup).
INSERT INTO longops_operations (
    id, company, task, args, description, queue, category, priority, status,
    earliest_start_at, expires_at, max_attempts, rerun_delay, retry_policy, timeout_seconds,
    recurrence, user_name, created_at, updated_at, ready_at, dedup_key, labels,
    stall_after_seconds)
VALUES (
    %(id)s, %(company)s, %(task)s, %(args)s, %(description)s, %(queue)s, %(category)s,
    %(priority)s, %(status)s, %(earliest_start_at)s, %(expires_at)s, %(max_attempts)s,
    %(rerun_delay)s, %(retry_policy)s, %(timeout_seconds)s, %(recurrence)s, %(user_name)s,
    %(created_at)s, %(created_at)s, %(ready_at)s, %(dedup_key)s, %(labels)s,
    %(stall_after_seconds)s)
ON CONFLICT (company, dedup_key) WHERE dedup_key IS NOT NULL AND status IN ('on_hold', 'ready', 'in_process')
DO NOTHING
RETURNING *;

-- name: copy_operations
COPY longops_operations (
    id, company, task, args, description, queue, category, priority, status,
    earliest_start_at, expires_at, max_attempts, rerun_delay, retry_policy, timeout_seconds,
    recurrence, user_name, created_at, updated_at, ready_at, dedup_key, labels,
    stall_after_seconds)
FROM STDIN;

-- name: notify_ready
SELECT pg_notify('longops_ready', %(queue)s);

-- name: get_active_by_dedup
SELECT * FROM longops_operations
 WHERE company = %(company)s AND dedup_key = %(dedup_key)s
   AND status IN ('on_hold', 'ready', 'in_process');

-- name: get_operation
SELECT * FROM longops_operations
 WHERE id = %(id)s AND (%(company)s::text IS NULL OR company = %(company)s);

-- name: list_operations
SELECT * FROM longops_operations
 WHERE (%(company)s::text IS NULL OR company = %(company)s)
   AND (cardinality(%(statuses)s::text[]) = 0 OR status = ANY(%(statuses)s::text[]))
   AND (%(task)s::text IS NULL OR task = %(task)s)
   AND (%(category)s::text IS NULL OR category = %(category)s)
   AND (%(queue)s::text IS NULL OR queue = %(queue)s)
   AND (%(after_entry_no)s::bigint IS NULL OR entry_no > %(after_entry_no)s)
 ORDER BY entry_no
 LIMIT %(limit)s;

-- name: count_operations
SELECT status, count(*) AS n FROM longops_operations
 WHERE (%(company)s::text IS NULL OR company = %(company)s)
 GROUP BY status;

-- name: apply_action
-- Guarded by the statuses the action may start from; a row in any other status is left
-- alone and the caller learns it from the empty result.
UPDATE longops_operations SET
    status = %(status)s,
    status_reason = %(status_reason)s,
    earliest_start_at = coalesce(%(earliest_start_at)s, earliest_start_at),
    attempt_count = CASE WHEN %(reset_attempts)s THEN 0 ELSE attempt_count END,
    ready_at = CASE WHEN %(status)s = 'ready' THEN %(at)s ELSE ready_at END,
    ended_at = CASE WHEN %(status)s IN ('finished', 'error', 'cancelled') THEN %(at)s ELSE ended_at END,
    last_error = CASE WHEN %(status)s = 'ready' THEN NULL ELSE last_error END,
    user_name = coalesce(%(user_name)s, user_name),
    -- A cancel before the start records who, why and how; other actions clear the record.
    cancel_requested_at = CASE WHEN %(cancel_mode)s::text IS NOT NULL THEN %(at)s
                               WHEN %(clear_cancel)s THEN NULL ELSE cancel_requested_at END,
    cancel_requested_by = CASE WHEN %(cancel_mode)s::text IS NOT NULL THEN %(cancel_by)s
                               WHEN %(clear_cancel)s THEN NULL ELSE cancel_requested_by END,
    cancel_reason = CASE WHEN %(cancel_mode)s::text IS NOT NULL THEN %(cancel_reason)s
                         WHEN %(clear_cancel)s THEN NULL ELSE cancel_reason END,
    cancel_mode = CASE WHEN %(cancel_mode)s::text IS NOT NULL THEN %(cancel_mode)s
                       WHEN %(clear_cancel)s THEN NULL ELSE cancel_mode END,
    cancel_force = CASE WHEN %(clear_cancel)s THEN false ELSE cancel_force END,
    cancel_overdue_at = CASE WHEN %(clear_cancel)s THEN NULL ELSE cancel_overdue_at END,
    -- Back to the queue: the last run's reading stays on its attempt, not on the entry.
    progress = CASE WHEN %(status)s IN ('ready', 'on_hold') THEN NULL ELSE progress END,
    checkpoint = CASE WHEN %(clear_checkpoint)s THEN NULL ELSE checkpoint END,
    checkpoint_at = CASE WHEN %(clear_checkpoint)s THEN NULL ELSE checkpoint_at END,
    updated_at = %(at)s
 WHERE id = %(id)s
   AND (%(company)s::text IS NULL OR company = %(company)s)
   AND status = ANY(%(allowed_from)s::text[])
RETURNING *;

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

-- name: notify_cancel
SELECT pg_notify('longops_cancel', %(id)s::text);

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

-- name: delete_failed
-- "Remove Failed Entries": non-recurring entries in error whose last run ended before the cut.
DELETE FROM longops_operations
 WHERE company = %(company)s AND status = 'error' AND recurrence IS NULL
   AND ended_at <= %(ended_before)s
RETURNING id;

-- name: list_attempts
SELECT * FROM longops_attempts WHERE operation_id = %(id)s ORDER BY run_no;

-- name: claim_lock
-- Claims take turns (transaction-scoped advisory lock) so that the category counts below
-- are read after every earlier claim committed: READ COMMITTED gives each statement a
-- fresh snapshot, and without the turn two claimers could both see a free slot.
SELECT pg_advisory_xact_lock(7243015001);

-- name: claim_operations
WITH paused AS (
    SELECT name FROM longops_paused_queues
),
busy AS (
    -- Running operations per category: the slots already taken.
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
categorized AS (
    -- At most `free` per category, High -> Normal -> Low then FIFO inside it.
    SELECT pick.id, pick.priority, pick.entry_no
      FROM free_slots f
     CROSS JOIN LATERAL (
        SELECT o.id, o.priority, o.entry_no
          FROM longops_operations o
         WHERE o.status = 'ready' AND o.company = f.company AND o.category = f.code
           AND o.earliest_start_at <= %(now)s
           AND (o.expires_at IS NULL OR o.expires_at > %(now)s)
           AND o.queue = ANY(%(queues)s::text[])
           AND o.queue NOT IN (SELECT name FROM paused)
         ORDER BY o.priority, o.entry_no
         LIMIT f.free
           FOR UPDATE OF o SKIP LOCKED
     ) pick
),
uncategorized AS (
    -- Walks longops_operations_ready_fifo in order and stops after `limit` rows.
    -- SKIP LOCKED: a row an operator is changing right now is left for the next claim
    -- instead of making this one wait.
    SELECT o.id, o.priority, o.entry_no
      FROM longops_operations o
     WHERE o.status = 'ready' AND o.category IS NULL
       AND o.earliest_start_at <= %(now)s
       AND (o.expires_at IS NULL OR o.expires_at > %(now)s)
       AND o.queue = ANY(%(queues)s::text[])
       AND o.queue NOT IN (SELECT name FROM paused)
     ORDER BY o.priority, o.entry_no
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
),
chosen AS (
    SELECT id FROM (
        SELECT * FROM categorized
        UNION ALL
        SELECT * FROM uncategorized
    ) candidates
    -- A session declared lost (or draining) claims nothing, even before it notices.
    WHERE EXISTS (SELECT 1 FROM longops_sessions s WHERE s.id = %(session_id)s AND s.state = 'active')
    ORDER BY priority, entry_no
    LIMIT %(limit)s
),
claimed AS (
    -- A new lease token per claim: whoever held the previous one can no longer write.
    UPDATE longops_operations o SET
        status = 'in_process',
        attempt_count = o.attempt_count + 1,
        run_count = o.run_count + 1,
        lease_token = gen_random_uuid(),
        session_id = %(session_id)s,
        started_at = %(now)s,
        ended_at = NULL,
        last_error = NULL,
        progress = NULL,
        progress_moved_at = %(now)s,
        stalled_at = NULL,
        cancel_mode = NULL,
        cancel_overdue_at = NULL,
        updated_at = %(now)s
      FROM chosen c
     WHERE o.id = c.id
    RETURNING o.*
),
logged AS (
    -- The attempt row is committed with the claim, before task code runs, so a crash
    -- always leaves evidence (Business Central commits its log entry first too).
    INSERT INTO longops_attempts (operation_id, company, run_no, attempt, session_id, user_name, task, started_at, outcome)
    SELECT id, company, run_count, attempt_count, session_id, user_name, task, %(now)s, 'in_process'
      FROM claimed
),
timeline AS (
    INSERT INTO longops_operation_events (operation_id, company, at, type, run_no, data)
    SELECT id, company, %(now)s, 'attempt_started', run_count,
           json_build_object('session_id', session_id, 'attempt', attempt_count)
      FROM claimed
)
SELECT * FROM claimed;

-- name: finish_runs
-- One statement for a whole batch of results. Fenced by the lease token: a session
-- declared lost, or a run already handed back, matches no row and so changes nothing.
-- A cancel request pending on the row wins over a retry, the next run of a recurrence, a
-- drain's hand-back, a rescue and a failure: the operation ends cancelled. It is read in
-- SET, from the row as locked, so a request that commits while this statement runs counts.
WITH input AS (
    SELECT * FROM unnest(
        %(ids)s::uuid[], %(leases)s::uuid[], %(run_nos)s::integer[], %(ats)s::timestamptz[],
        %(outcomes)s::text[], %(statuses)s::text[], %(reasons)s::text[],
        %(starts)s::timestamptz[], %(attempt_counts)s::integer[], %(errors)s::text[],
        %(tracebacks)s::text[], %(results)s::text[], %(run_starts)s::timestamptz[],
        %(progresses)s::text[], %(stop_modes)s::text[], %(cancel_modes)s::text[],
        %(clear_checkpoints)s::boolean[]
    ) AS t(id, lease_token, run_no, at, outcome, status, status_reason, earliest_start_at,
           attempt_count, error_message, traceback, result, run_started_at, progress,
           stop_mode, cancel_mode, clear_checkpoint)
),
op AS (
    UPDATE longops_operations o SET
        status = CASE WHEN o.cancel_requested_at IS NOT NULL AND i.status IN ('ready', 'error')
                      THEN 'cancelled' ELSE i.status END,
        status_reason = CASE WHEN o.cancel_requested_at IS NOT NULL AND i.status IN ('ready', 'error')
                             THEN 'cancelled' ELSE i.status_reason END,
        earliest_start_at = coalesce(i.earliest_start_at, o.earliest_start_at),
        attempt_count = coalesce(i.attempt_count, o.attempt_count),
        ended_at = i.at,
        ready_at = CASE WHEN i.status = 'ready' AND o.cancel_requested_at IS NULL
                        THEN i.at ELSE o.ready_at END,
        last_error = i.error_message,
        result = coalesce(i.result::json, o.result),
        started_at = coalesce(i.run_started_at, o.started_at),
        lease_token = NULL,
        session_id = NULL,
        cancel_mode = CASE
            WHEN o.cancel_requested_at IS NOT NULL AND i.status IN ('ready', 'error')
            THEN coalesce(i.cancel_mode,
                          CASE WHEN i.outcome IN ('interrupted', 'lost') THEN 'forced'
                               ELSE 'cooperative' END)
            WHEN i.status = 'cancelled' THEN i.cancel_mode
            ELSE NULL END,
        -- Back in the queue, the entry shows no reading: the run's last one is on its attempt.
        progress = CASE WHEN i.status = 'ready' AND o.cancel_requested_at IS NULL THEN NULL
                        ELSE coalesce(i.progress::json, o.progress) END,
        stalled_at = NULL,
        checkpoint = CASE WHEN i.clear_checkpoint THEN NULL ELSE o.checkpoint END,
        checkpoint_at = CASE WHEN i.clear_checkpoint THEN NULL ELSE o.checkpoint_at END,
        updated_at = i.at
      FROM input i
     WHERE o.id = i.id AND o.status = 'in_process' AND o.lease_token = i.lease_token
    RETURNING o.id, o.company, i.lease_token, o.status, o.status_reason, o.cancel_mode
),
att AS (
    UPDATE longops_attempts a SET
        started_at = coalesce(i.run_started_at, a.started_at),
        ended_at = i.at, outcome = i.outcome,
        error_message = i.error_message, traceback = i.traceback,
        stop_mode = i.stop_mode,
        progress = coalesce(i.progress::json,
                            (SELECT o.progress FROM longops_operations o WHERE o.id = i.id))
      FROM input i
     WHERE (i.id, i.lease_token) IN (SELECT id, lease_token FROM op)
       AND a.operation_id = i.id AND a.run_no = i.run_no
),
timeline AS (
    INSERT INTO longops_operation_events (operation_id, company, at, type, run_no, data)
    SELECT i.id, op.company, i.at, 'attempt_ended', i.run_no,
           json_build_object('outcome', i.outcome, 'status', op.status,
                             'reason', op.status_reason, 'stop_mode', i.stop_mode,
                             'cancel_mode', op.cancel_mode, 'error', left(i.error_message, 200))
      FROM input i JOIN op ON op.id = i.id AND op.lease_token = i.lease_token
)
SELECT id, lease_token FROM op;

-- name: next_due_at
SELECT min(earliest_start_at) AS due FROM longops_operations
 WHERE status = 'ready' AND queue = ANY(%(queues)s::text[])
   AND queue NOT IN (SELECT name FROM longops_paused_queues);

-- name: insert_session
INSERT INTO longops_sessions (id, host, pid, queues, concurrency, state, started_at, last_heartbeat_at)
VALUES (%(id)s, %(host)s, %(pid)s, %(queues)s, %(concurrency)s, %(state)s, %(started_at)s, %(started_at)s);

-- name: heartbeat
-- Only a live session can beat; a lost one learns its state from the follow-up read.
UPDATE longops_sessions SET last_heartbeat_at = %(at)s
 WHERE id = %(id)s AND state IN ('active', 'draining')
RETURNING state;

-- name: get_session_state
SELECT state FROM longops_sessions WHERE id = %(id)s;

-- name: end_session
UPDATE longops_sessions SET state = %(state)s,
       ended_at = CASE WHEN %(state)s IN ('stopped', 'lost') THEN %(at)s ELSE ended_at END
 WHERE id = %(id)s AND state <> 'lost';

-- name: insert_session_event
INSERT INTO longops_session_events (session_id, type, at, comment)
VALUES (%(session_id)s, %(type)s, %(at)s, %(comment)s);

-- name: list_sessions
SELECT * FROM longops_sessions
 WHERE NOT %(active_only)s OR state IN ('active', 'draining')
 ORDER BY started_at DESC
 LIMIT 500;

-- name: list_session_events
SELECT * FROM longops_session_events
 WHERE %(session_id)s::uuid IS NULL OR session_id = %(session_id)s
 ORDER BY id DESC
 LIMIT 1000;

-- name: mark_lost_sessions
UPDATE longops_sessions SET state = 'lost', ended_at = %(now)s
 WHERE state IN ('active', 'draining') AND last_heartbeat_at < %(cutoff)s
RETURNING id;

-- name: orphaned_runs
-- Running operations whose session is no longer alive (lost, stopped, or never recorded).
SELECT o.* FROM longops_operations o
  LEFT JOIN longops_sessions s ON s.id = o.session_id
 WHERE o.status = 'in_process'
   AND (s.id IS NULL OR s.state IN ('lost', 'stopped'))
 LIMIT %(limit)s;

-- name: expire_operations
UPDATE longops_operations SET status = 'cancelled', status_reason = 'expired',
       cancel_mode = 'expired', ended_at = %(now)s, updated_at = %(now)s
 WHERE status = 'ready' AND expires_at IS NOT NULL AND expires_at <= %(now)s
RETURNING id, company, run_count;

-- name: prune_operations
DELETE FROM longops_operations
 WHERE status IN ('finished', 'cancelled') AND ended_at < %(before)s;

-- name: prune_attempts
-- An operation in error keeps its history until someone restarts or removes it.
DELETE FROM longops_attempts AS a
 WHERE a.ended_at < %(before)s
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
     WHERE e.id < coalesce((SELECT id FROM longops_operation_events WHERE at >= %(before)s
                            ORDER BY id LIMIT 1), 9223372036854775807)
       AND NOT EXISTS (SELECT 1 FROM longops_operations o
                        WHERE o.id = e.operation_id AND o.status IN ('error', 'in_process'))
     ORDER BY e.id
     LIMIT 10000);

-- name: prune_session_events
DELETE FROM longops_session_events WHERE at < %(before)s;

-- name: prune_sessions
DELETE FROM longops_sessions WHERE state IN ('stopped', 'lost') AND ended_at < %(before)s;

-- name: try_lead
INSERT INTO longops_leaders (name, session_id, expires_at)
VALUES (%(name)s, %(session_id)s, %(expires_at)s)
ON CONFLICT (name) DO UPDATE
   SET session_id = excluded.session_id, expires_at = excluded.expires_at
 WHERE longops_leaders.expires_at < %(now)s OR longops_leaders.session_id = excluded.session_id
RETURNING session_id;

-- name: resign
DELETE FROM longops_leaders WHERE name = %(name)s AND session_id = %(session_id)s;

-- name: ready_recurring
SELECT * FROM longops_operations
 WHERE status = 'ready' AND recurrence IS NOT NULL AND earliest_start_at <= %(now)s
 ORDER BY entry_no
 LIMIT %(limit)s;

-- name: move_start
UPDATE longops_operations SET earliest_start_at = %(new_start)s, updated_at = %(at)s
 WHERE id = %(id)s AND status = 'ready' AND earliest_start_at = %(expected_start)s
RETURNING id;

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS longops_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- name: migration_lock
-- Two processes upgrading at once take turns; the second finds nothing left to apply.
SELECT pg_advisory_xact_lock(7243015000);

-- name: list_migrations
SELECT version, name, checksum FROM longops_migrations ORDER BY version;

-- name: record_migration
INSERT INTO longops_migrations (version, name, checksum) VALUES (%(version)s, %(name)s, %(checksum)s);

-- name: cancel_requested
SELECT id, cancel_force, cancel_reason, cancel_requested_by FROM longops_operations
 WHERE id = ANY(%(ids)s::uuid[]) AND status = 'in_process' AND cancel_requested_at IS NOT NULL;

-- name: flush_progress
-- One statement for a batch of progress readings, fenced by lease token like a result.
-- `live` locks the rows whose lease still matches, so the stalled flag read there is the
-- one this update clears; the reading and (when progress moved) the end of a stall reach
-- the timeline in the same statement, in that order.
WITH input AS (
    SELECT * FROM unnest(
        %(ids)s::uuid[], %(leases)s::uuid[], %(ats)s::timestamptz[], %(progresses)s::text[],
        %(moved)s::boolean[]
    ) AS t(id, lease_token, at, progress, moved)
),
live AS (
    SELECT o.id, o.lease_token, o.stalled_at, o.run_count, o.company,
           i.at, i.progress, i.moved
      FROM longops_operations o JOIN input i ON i.id = o.id AND i.lease_token = o.lease_token
     WHERE o.status = 'in_process'
       FOR UPDATE OF o
),
updated AS (
    UPDATE longops_operations o SET
        progress = l.progress::json,
        progress_moved_at = CASE WHEN l.moved THEN l.at ELSE o.progress_moved_at END,
        stalled_at = CASE WHEN l.moved THEN NULL ELSE o.stalled_at END,
        updated_at = l.at
      FROM live l
     WHERE o.id = l.id
    RETURNING o.id
),
logged AS (
    INSERT INTO longops_operation_events (operation_id, company, at, type, run_no, data)
    SELECT id, company, at, type, run_count, data FROM (
        SELECT l.id, l.company, l.at, 'progress' AS type, l.run_count, l.progress::json AS data,
               0 AS ord
          FROM live l
        UNION ALL
        SELECT l.id, l.company, l.at, 'unstalled', l.run_count,
               json_build_object('stalled_at', l.stalled_at), 1
          FROM live l
         WHERE l.stalled_at IS NOT NULL AND l.moved
    ) e
    ORDER BY e.id, e.ord
)
SELECT id, lease_token FROM live;

-- name: save_checkpoint
-- The state and the progress so far in one write; the stall clock moves only when the
-- progress did (a checkpoint alone is not movement).
UPDATE longops_operations SET
    checkpoint = %(state)s::json, checkpoint_at = %(at)s,
    progress = coalesce(%(progress)s::json, progress),
    progress_moved_at = CASE WHEN %(moved)s THEN %(at)s ELSE progress_moved_at END,
    stalled_at = CASE WHEN %(moved)s THEN NULL ELSE stalled_at END,
    updated_at = %(at)s
 WHERE id = %(id)s AND status = 'in_process' AND lease_token = %(lease_token)s;

-- name: mark_cancel_overdue
UPDATE longops_operations SET cancel_overdue_at = %(at)s, updated_at = %(at)s
 WHERE id = %(id)s AND status = 'in_process' AND lease_token = %(lease_token)s
   AND cancel_overdue_at IS NULL
RETURNING id, company, run_count;

-- name: flag_stalled
-- Running operations whose progress has not moved for their stall_after.
UPDATE longops_operations SET stalled_at = %(now)s
 WHERE status = 'in_process' AND stalled_at IS NULL
   AND progress_moved_at <= %(now)s - make_interval(secs => stall_after_seconds)
RETURNING id, company, run_count, progress_moved_at;

-- name: list_events
SELECT * FROM longops_operation_events
 WHERE operation_id = %(id)s
   AND (%(after_id)s::bigint IS NULL OR id > %(after_id)s)
   AND (cardinality(%(types)s::text[]) = 0 OR type = ANY(%(types)s::text[]))
   AND (%(run_no)s::integer IS NULL OR run_no = %(run_no)s)
 ORDER BY CASE WHEN %(newest_first)s THEN -id ELSE id END
 LIMIT %(limit)s;

-- name: running_in_categories
-- Who holds each category's slots right now (for wait reasons).
SELECT company, category, id FROM longops_operations
 WHERE status = 'in_process' AND category IS NOT NULL
 ORDER BY entry_no;

-- name: list_all_categories
SELECT * FROM longops_categories ORDER BY company, code;

-- name: served_queues
SELECT DISTINCT unnest(queues) AS name FROM longops_sessions WHERE state = 'active';

-- name: recent_durations
-- How long the task's last successful runs took (the ETA before any progress). Reads at
-- most the last 5,000 attempts to end, through the index on their end: a task that rarely
-- runs gets no estimate rather than a scan of the whole log.
SELECT extract(epoch FROM ended_at - started_at) AS seconds
  FROM (SELECT task, outcome, started_at, ended_at FROM longops_attempts
         WHERE ended_at IS NOT NULL ORDER BY ended_at DESC LIMIT 5000) recent
 WHERE task = %(task)s AND outcome = 'success'
 ORDER BY ended_at DESC
 LIMIT %(limit)s;

-- name: lock_run_row
-- A running operation's row while its run holds the lease, locked: the writes that follow in the transaction see no change in between.
SELECT company, run_count, stalled_at FROM longops_operations
 WHERE id = %(id)s AND status = 'in_process' AND lease_token = %(lease_token)s
   FOR UPDATE;
