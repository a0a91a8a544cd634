-- Runs: cancel signals, checkpoints, run events, sessions, the leader, the sweeps.
-- Queries both dialects run alike, written once (see longops.store.queries and
-- store/README.md): psycopg's %(name)s placeholders; SQLite gets :name, a ::type cast right
-- after a placeholder is PostgreSQL's and is dropped there. {{fragment}} splices a
-- fragment (sql/common/fragments.sql or the dialect's queries.sql).

-- name: insert_session
INSERT INTO longops_sessions (id, host, pid, queues, concurrency, state, started_at, last_heartbeat_at, companies, tasks, code_version, schema_version)
VALUES (%(id)s, %(host)s, %(pid)s, %(queues)s, %(concurrency)s, %(state)s, %(started_at)s, %(started_at)s, %(companies)s, %(tasks)s, %(code_version)s, %(schema_version)s);

-- name: set_session_tasks
-- The tasks a worker can claim, as its app registry grows (issue 15).
UPDATE longops_sessions SET tasks = %(tasks)s WHERE id = %(id)s;

-- name: set_session_claim_stopped
-- Why a worker stopped claiming (the schema guard), NULL once it claims again.
UPDATE longops_sessions SET claim_stopped = %(reason)s WHERE id = %(id)s;

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

-- name: session_runs
-- What the database says a session runs: its worker compares this with its own table of
-- runs and hands back any it does not know (a claim whose reply was lost).
SELECT o.* FROM longops_operations o
 WHERE o.status = 'in_process' AND o.session_id = %(session_id)s
 ORDER BY o.entry_no;

-- name: expire_operations
UPDATE longops_operations SET status = 'cancelled', status_reason = 'expired',
       cancel_mode = 'expired', ended_at = %(now)s, updated_at = %(now)s
 WHERE status = 'ready' AND expires_at IS NOT NULL AND expires_at <= %(now)s
RETURNING id, company, run_count;

-- name: prune_operations
-- Pruning deletes in batches (PRUNE_BATCH rows), each statement its own transaction
-- (the caller repeats until a batch comes back short): the keys of the oldest rows due,
-- found by an index, then those rows by their key. So a large history is never one long
-- transaction holding its locks (ServiceStore.prune).
DELETE FROM longops_operations
 WHERE id IN (SELECT id FROM longops_operations
               WHERE status IN ('finished', 'cancelled') AND ended_at < %(before)s
               ORDER BY ended_at
               LIMIT %(batch)s);

-- name: prune_attempts
-- An operation in error keeps its history until someone restarts or removes it.
DELETE FROM longops_attempts
 WHERE entry_no IN (
    SELECT a.entry_no FROM longops_attempts a
     WHERE a.ended_at < %(before)s
       AND NOT EXISTS (SELECT 1 FROM longops_operations o
                        WHERE o.id = a.operation_id AND o.status = 'error')
     ORDER BY a.ended_at
     LIMIT %(batch)s);

-- name: prune_operation_events
-- As with attempts, an operation in error (or still running) keeps its timeline. Ids
-- follow time, so the cut is found by walking the key from the oldest event: no index on
-- the time is paid for in the hot path. A batch at a time, as the others.
DELETE FROM longops_operation_events
 WHERE id IN (
    SELECT e.id FROM longops_operation_events e
     WHERE e.id < coalesce((SELECT id FROM longops_operation_events WHERE at >= %(before)s
                            ORDER BY id LIMIT 1), 9223372036854775807)
       AND NOT EXISTS (SELECT 1 FROM longops_operations o
                        WHERE o.id = e.operation_id AND o.status IN ('error', 'in_process'))
     ORDER BY e.id
     LIMIT %(batch)s);

-- name: prune_session_events
DELETE FROM longops_session_events
 WHERE id IN (SELECT id FROM longops_session_events WHERE at < %(before)s
               ORDER BY id LIMIT %(batch)s);

-- name: prune_sessions
DELETE FROM longops_sessions
 WHERE id IN (SELECT id FROM longops_sessions
               WHERE state IN ('stopped', 'lost') AND ended_at < %(before)s
               LIMIT %(batch)s);

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

-- name: request_drain
-- Someone asks a live session to drain; the worker sees it at its next heartbeat.
UPDATE longops_sessions SET state = 'draining'
 WHERE id = %(id)s AND state = 'active'
RETURNING *;

-- == the pages (migration 0005) ==========================================================

-- name: prune_notifications
-- With the operations they tell of: past the retention period, read or not.
DELETE FROM longops_notifications
 WHERE id IN (SELECT id FROM longops_notifications WHERE created_at < %(before)s
               ORDER BY id LIMIT %(batch)s);

-- name: prune_web_sessions
DELETE FROM longops_web_sessions
 WHERE id IN (SELECT id FROM longops_web_sessions WHERE expires_at < %(before)s
               LIMIT %(batch)s);

-- == notifications (migration 8) ==

-- name: prune_notify_deliveries
-- Deliveries done with (sent, digested, dead) past the retention period; pending ones stay.
DELETE FROM longops_notify_deliveries
 WHERE id IN (SELECT id FROM longops_notify_deliveries
               WHERE status <> 'pending' AND created_at < %(before)s
               ORDER BY id LIMIT %(batch)s);

-- name: prune_notify_outbox
-- Expanded outbox entries past the retention period with no delivery left.
DELETE FROM longops_notify_outbox
 WHERE id IN (SELECT o.id FROM longops_notify_outbox o
               WHERE o.expanded_at IS NOT NULL AND o.at < %(before)s
                 AND NOT EXISTS (SELECT 1 FROM longops_notify_deliveries d
                                  WHERE d.outbox_id = o.id)
               ORDER BY o.id LIMIT %(batch)s);
