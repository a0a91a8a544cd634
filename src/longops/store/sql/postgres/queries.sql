-- Named queries for PostgreSQL. One query per Store method; parameters in %(name)s style.
-- Loaded once by longops.store.queries; never built up from strings elsewhere.

-- name: get_company
SELECT * FROM longops_companies WHERE name = %(name)s;

-- name: get_operation_by_entry_no
SELECT * FROM longops_operations
 WHERE entry_no = %(entry_no)s AND (%(company)s::text IS NULL OR company = %(company)s)
   AND (%(companies)s::text[] IS NULL OR company = ANY(%(companies)s::text[]));

-- name: upsert_company
INSERT INTO longops_companies (name, display_name, time_zone, active, max_in_process)
VALUES (%(name)s, %(display_name)s, %(time_zone)s, %(active)s, %(max_in_process)s)
ON CONFLICT (name) DO UPDATE
   SET display_name = excluded.display_name, time_zone = excluded.time_zone,
       active = excluded.active, max_in_process = excluded.max_in_process
RETURNING *;

-- name: list_companies
SELECT * FROM longops_companies
 WHERE %(companies)s::text[] IS NULL OR name = ANY(%(companies)s::text[])
 ORDER BY name;

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
    stall_after_seconds, required_permission, request_hash, trace_context)
VALUES (
    %(id)s, %(company)s, %(task)s, %(args)s, %(description)s, %(queue)s, %(category)s,
    %(priority)s, %(status)s, %(earliest_start_at)s, %(expires_at)s, %(max_attempts)s,
    %(rerun_delay)s, %(retry_policy)s, %(timeout_seconds)s, %(recurrence)s, %(user_name)s,
    %(created_at)s, %(created_at)s, %(ready_at)s, %(dedup_key)s, %(labels)s,
    %(stall_after_seconds)s, %(required_permission)s, %(request_hash)s, %(trace_context)s)
-- No target: a dedup key held by an active operation, or an id a client already used
-- (an Operation-Id sent again), both hand back the existing row (see _insert_with).
ON CONFLICT DO NOTHING
RETURNING *;

-- name: copy_operations
COPY longops_operations (
    id, company, task, args, description, queue, category, priority, status,
    earliest_start_at, expires_at, max_attempts, rerun_delay, retry_policy, timeout_seconds,
    recurrence, user_name, created_at, updated_at, ready_at, dedup_key, labels,
    stall_after_seconds, required_permission, trace_context)
FROM STDIN;

-- name: notify_ready
SELECT pg_notify('longops_ready', %(queue)s);

-- name: get_active_by_dedup
SELECT * FROM longops_operations
 WHERE company = %(company)s AND dedup_key = %(dedup_key)s
   AND status IN ('on_hold', 'ready', 'in_process');

-- name: get_operation
SELECT * FROM longops_operations
 WHERE id = %(id)s AND (%(company)s::text IS NULL OR company = %(company)s)
   AND (%(companies)s::text[] IS NULL OR company = ANY(%(companies)s::text[]));

-- name: list_operations
-- Oldest first; a page goes on after the last entry number it showed (keyset paging).
SELECT * FROM longops_operations
 WHERE (%(company)s::text IS NULL OR company = %(company)s)
   AND (%(companies)s::text[] IS NULL OR company = ANY(%(companies)s::text[]))
   AND (cardinality(%(statuses)s::text[]) = 0 OR status = ANY(%(statuses)s::text[]))
   AND (%(task)s::text IS NULL OR task = %(task)s)
   AND (%(category)s::text IS NULL OR category = %(category)s)
   AND (%(queue)s::text IS NULL OR queue = %(queue)s)
   AND (%(user_name)s::text IS NULL OR user_name = %(user_name)s)
   AND (%(created_after)s::timestamptz IS NULL OR created_at >= %(created_after)s)
   AND (%(created_before)s::timestamptz IS NULL OR created_at < %(created_before)s)
   AND (%(started_after)s::timestamptz IS NULL OR started_at >= %(started_after)s)
   AND (%(started_before)s::timestamptz IS NULL OR started_at < %(started_before)s)
   AND (%(text)s::text IS NULL OR lower(task) LIKE %(text)s OR lower(description) LIKE %(text)s)
   AND (%(stalled)s::boolean IS NULL OR (status = 'in_process' AND stalled_at IS NOT NULL) = %(stalled)s)
   AND (%(after_entry_no)s::bigint IS NULL OR entry_no > %(after_entry_no)s)
   AND (%(before_entry_no)s::bigint IS NULL OR entry_no < %(before_entry_no)s)
 ORDER BY entry_no
 LIMIT %(limit)s;

-- name: list_operations_desc
-- Newest first (dashboards); a page goes on before the last entry number it showed.
SELECT * FROM longops_operations
 WHERE (%(company)s::text IS NULL OR company = %(company)s)
   AND (%(companies)s::text[] IS NULL OR company = ANY(%(companies)s::text[]))
   AND (cardinality(%(statuses)s::text[]) = 0 OR status = ANY(%(statuses)s::text[]))
   AND (%(task)s::text IS NULL OR task = %(task)s)
   AND (%(category)s::text IS NULL OR category = %(category)s)
   AND (%(queue)s::text IS NULL OR queue = %(queue)s)
   AND (%(user_name)s::text IS NULL OR user_name = %(user_name)s)
   AND (%(created_after)s::timestamptz IS NULL OR created_at >= %(created_after)s)
   AND (%(created_before)s::timestamptz IS NULL OR created_at < %(created_before)s)
   AND (%(started_after)s::timestamptz IS NULL OR started_at >= %(started_after)s)
   AND (%(started_before)s::timestamptz IS NULL OR started_at < %(started_before)s)
   AND (%(text)s::text IS NULL OR lower(task) LIKE %(text)s OR lower(description) LIKE %(text)s)
   AND (%(stalled)s::boolean IS NULL OR (status = 'in_process' AND stalled_at IS NOT NULL) = %(stalled)s)
   AND (%(after_entry_no)s::bigint IS NULL OR entry_no > %(after_entry_no)s)
   AND (%(before_entry_no)s::bigint IS NULL OR entry_no < %(before_entry_no)s)
 ORDER BY entry_no DESC
 LIMIT %(limit)s;

-- name: count_operations
SELECT status, count(*) AS n FROM longops_operations
 WHERE (%(company)s::text IS NULL OR company = %(company)s)
   AND (%(companies)s::text[] IS NULL OR company = ANY(%(companies)s::text[]))
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
SELECT * FROM longops_attempts
 WHERE operation_id = %(id)s
   AND (%(companies)s::text[] IS NULL OR company = ANY(%(companies)s::text[]))
 ORDER BY run_no;

-- name: claim_plan
-- The claim is one large statement: planning it costs more than running it. Its plan does
-- not depend on the parameters' values (every scan is an index walk bounded by LIMIT), so
-- the claim always uses the generic plan of its prepared statement instead of re-planning
-- (as PostgreSQL's default, plan_cache_mode = auto, would for this query on every claim).
SELECT set_config('plan_cache_mode', 'force_generic_plan', true);

-- name: claim_guard
-- The claim's turn, narrowed to what needs one (ADR 2): only a category limit and a
-- company's max_in_process are counts that two claimers could both read as free from their
-- statement snapshots. So this statement takes a transaction-scoped advisory lock per
-- category that has ready, due work in a company this session serves, and per served
-- company with a cap, in key order (no deadlock between claimers), and leaves the keys it
-- holds in a transaction setting. The claim statement that follows (a fresh snapshot,
-- taken after these locks were granted, so it sees every earlier claim under them) counts
-- slots only under a key held here: a category that got work in between, or a cap set in
-- between, is left for the next claim. Uncategorised work of uncapped companies takes no
-- lock at all: FOR UPDATE SKIP LOCKED keeps concurrent claims disjoint. A hash collision
-- only makes two categories share a lock.
SELECT set_config('longops.claim_keys', coalesce(string_agg(k::text, ','), ''), true) AS keys
  FROM (
    SELECT k, pg_advisory_xact_lock(7243015, k)
      FROM (
        SELECT hashtext('category/' || c.company || '/' || c.code) AS k
          FROM longops_categories c
          JOIN longops_companies co ON co.name = c.company AND co.active
         WHERE NOT c.paused
           AND (%(companies)s::text[] IS NULL OR c.company = ANY(%(companies)s::text[]))
           -- LATERAL ... LIMIT 1, not EXISTS: a semi-join could be planned as a hash of
           -- every ready row; this is one probe of ready_category per category.
           AND EXISTS (SELECT 1 FROM LATERAL (
                SELECT 1 FROM longops_operations o
                 WHERE o.status = 'ready' AND o.category IS NOT NULL
                   AND o.company = c.company AND o.category = c.code
                   AND o.earliest_start_at <= %(now)s
                 LIMIT 1) w)
        UNION
        SELECT hashtext('company/' || co.name)
          FROM longops_companies co
         WHERE co.active AND co.max_in_process IS NOT NULL
           AND (%(companies)s::text[] IS NULL OR co.name = ANY(%(companies)s::text[]))
         ORDER BY 1
      ) wanted
  ) held;

-- name: claim_operations
-- Companies take turns: each company's ready operations are ranked (its turn 1, 2, ...),
-- and the batch is filled turn by turn, starting with the company served least recently.
-- So a backlog in one company cannot starve another's single operation, even when a
-- claim takes one operation at a time. Every company is read only up to the batch size
-- (LATERAL ... LIMIT on an index that starts with the company), so a claim costs the same
-- behind a backlog of any size.
WITH paused AS (
    SELECT name FROM longops_paused_queues
),
guard AS (
    -- The advisory-lock keys claim_guard took in this transaction.
    SELECT coalesce(string_to_array(nullif(current_setting('longops.claim_keys', true), ''), ',')::int[],
                    '{}'::int[]) AS keys
),
runs_as AS (
    -- An operation runs on behalf of its user (whoever last set it ready): in a database
    -- that has users, one whose user is disabled or gone, or no longer holds the
    -- permission set its task requires (kept on the row), is not started: it waits, and
    -- its wait reason says why (domain/waiting.py). A database without users (a library
    -- that only names who enqueued) enforces nothing here. Index lookups per candidate:
    -- the user by name, their sets by (user, company) (the view longops_may_run).
    SELECT EXISTS (SELECT 1 FROM longops_users) AS has_users
),
served AS (
    -- The active companies this session serves, how many each may still start, and when
    -- a claim last took from them. Every candidate below carries its company's cap and
    -- turn, so no later step joins back to this.
    SELECT c.name AS company, c.served_seq,
           CASE WHEN c.max_in_process IS NULL THEN %(limit)s
                -- Capped, but this claim holds no turn for it (claim_guard): not now.
                WHEN NOT hashtext('company/' || c.name) = ANY((SELECT keys FROM guard)::int[]) THEN 0
                ELSE greatest(least(%(limit)s, c.max_in_process - (
                        SELECT count(*) FROM longops_operations r
                         WHERE r.company = c.name AND r.status = 'in_process')), 0)
           END AS cap
      FROM longops_companies c
     WHERE c.active
       AND (%(companies)s::text[] IS NULL OR c.name = ANY(%(companies)s::text[]))
),
busy AS (
    -- Running operations per category: the slots already taken.
    SELECT company, category, count(*) AS running
      FROM longops_operations
     WHERE status = 'in_process' AND category IS NOT NULL
     GROUP BY company, category
),
free_slots AS (
    SELECT c.company, c.code, s.cap, s.served_seq,
           least(c.max_concurrent - coalesce(b.running, 0), s.cap) AS free
      FROM longops_categories c
      JOIN served s ON s.company = c.company AND s.cap > 0
      LEFT JOIN busy b ON b.company = c.company AND b.category = c.code
     WHERE NOT c.paused AND c.max_concurrent > coalesce(b.running, 0)
       -- Counted under this claim's lock on the category only (claim_guard).
       AND hashtext('category/' || c.company || '/' || c.code) = ANY((SELECT keys FROM guard)::int[])
),
categorized AS (
    -- At most `free` per category, High -> Normal -> Low then FIFO inside it.
    SELECT pick.id, f.company, pick.priority, pick.entry_no, f.cap, f.served_seq
      FROM free_slots f
     CROSS JOIN LATERAL (
        SELECT o.id, o.priority, o.entry_no
          FROM longops_operations o
         WHERE o.status = 'ready' AND o.company = f.company AND o.category = f.code
           AND o.earliest_start_at <= %(now)s
           AND (o.expires_at IS NULL OR o.expires_at > %(now)s)
           AND o.queue = ANY(%(queues)s::text[])
           AND o.queue NOT IN (SELECT name FROM paused)
           -- Only tasks this session has (NULL: any); others wait, `no_worker_for_task`.
           AND (%(tasks)s::text[] IS NULL OR o.task = ANY(%(tasks)s::text[]))
           AND (o.user_name IS NULL OR NOT (SELECT has_users FROM runs_as) OR EXISTS (
                SELECT 1 FROM longops_may_run r WHERE r.user_name = o.user_name
                   AND (r.is_super OR o.required_permission IS NULL
                        OR (r.company = o.company AND r.required = o.required_permission))))
         ORDER BY o.priority, o.entry_no
         LIMIT f.free
     ) pick
),
uncategorized AS (
    -- Per company, walks longops_operations_ready_company in order and stops after `cap`.
    SELECT pick.id, s.company, pick.priority, pick.entry_no, s.cap, s.served_seq
      FROM served s
     CROSS JOIN LATERAL (
        SELECT o.id, o.priority, o.entry_no
          FROM longops_operations o
         WHERE o.status = 'ready' AND o.category IS NULL AND o.company = s.company
           AND o.earliest_start_at <= %(now)s
           AND (o.expires_at IS NULL OR o.expires_at > %(now)s)
           AND o.queue = ANY(%(queues)s::text[])
           AND o.queue NOT IN (SELECT name FROM paused)
           -- Only tasks this session has (NULL: any); others wait, `no_worker_for_task`.
           AND (%(tasks)s::text[] IS NULL OR o.task = ANY(%(tasks)s::text[]))
           AND (o.user_name IS NULL OR NOT (SELECT has_users FROM runs_as) OR EXISTS (
                SELECT 1 FROM longops_may_run r WHERE r.user_name = o.user_name
                   AND (r.is_super OR o.required_permission IS NULL
                        OR (r.company = o.company AND r.required = o.required_permission))))
         ORDER BY o.priority, o.entry_no
         LIMIT s.cap
     ) pick
),
ranked AS (
    SELECT c.id, c.company, c.priority, c.entry_no, c.cap, c.served_seq,
           row_number() OVER (PARTITION BY c.company ORDER BY c.priority, c.entry_no) AS turn
      FROM (SELECT * FROM categorized UNION ALL SELECT * FROM uncategorized) c
),
chosen AS (
    SELECT id
      FROM ranked
     WHERE turn <= cap
       -- A session declared lost (or draining) claims nothing, even before it notices.
       AND EXISTS (SELECT 1 FROM longops_sessions x WHERE x.id = %(session_id)s AND x.state = 'active')
       -- Nothing is claimed in maintenance mode, even by a worker that has not noticed it
       -- (one primary-key probe; start_maintenance waits for claims in flight).
       AND NOT EXISTS (SELECT 1 FROM longops_maintenance m WHERE m.id = 1 AND m.active)
     ORDER BY turn, served_seq, priority, entry_no
     LIMIT %(limit)s
),
locked AS (
    -- Only the chosen rows are locked, each found by its id (LATERAL keeps the planner
    -- from scanning the ready rows to match them). SKIP LOCKED: a row an operator is
    -- changing right now is left for the next claim instead of making this one wait; a
    -- row changed since this statement's snapshot is checked again against the conditions.
    SELECT l.id
      FROM chosen c
     CROSS JOIN LATERAL (
        SELECT o.id
          FROM longops_operations o
         WHERE o.id = c.id
           -- `IS TRUE`: no partial index's predicate (status = ...) is implied, so even
           -- the prepared statement's generic plan finds the row by its primary key; it
           -- once walked every ready row of longops_operations_ready_due per chosen id.
           AND (o.status = 'ready') IS TRUE
           AND o.earliest_start_at <= %(now)s
           AND (o.expires_at IS NULL OR o.expires_at > %(now)s)
           FOR UPDATE SKIP LOCKED
     ) l
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
      FROM locked c
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
),
turned AS (
    -- The companies served now go to the back of the line for the next claim; when only
    -- one company had work there is no line, and the write is saved.
    UPDATE longops_companies SET served_seq = (SELECT max(served_seq) + 1 FROM longops_companies)
     WHERE name IN (SELECT company FROM claimed)
       AND (SELECT count(DISTINCT company) FROM ranked) > 1
)
-- With no global turn, two claims can choose the same rows: the later one skips what the
-- earlier locked and comes back short although more work is ready. So every claim also
-- says how many rows it chose (one row of NULLs and the count when it claimed none): fewer
-- claimed than chosen means "contended, claim again", not "the queue is empty".
SELECT c.*, n.chosen
  FROM (SELECT count(*) AS chosen FROM chosen) n
  LEFT JOIN claimed c ON true;

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
        %(clear_checkpoints)s::boolean[], %(peak_rsses)s::bigint[]
    ) AS t(id, lease_token, run_no, at, outcome, status, status_reason, earliest_start_at,
           attempt_count, error_message, traceback, result, run_started_at, progress,
           stop_mode, cancel_mode, clear_checkpoint, peak_rss)
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
     -- `IS TRUE`: the generic plan then reaches each row by its primary key, not by
     -- walking longops_operations_running (whose predicate `status = 'in_process'` would
     -- otherwise match), which read thousands of entries per batch as the table aged.
     WHERE o.id = i.id AND (o.status = 'in_process') IS TRUE AND o.lease_token = i.lease_token
    RETURNING o.id, o.company, i.lease_token, o.status, o.status_reason, o.cancel_mode
),
att AS (
    UPDATE longops_attempts a SET
        started_at = coalesce(i.run_started_at, a.started_at),
        ended_at = i.at, outcome = i.outcome,
        error_message = i.error_message, traceback = i.traceback,
        stop_mode = i.stop_mode, peak_rss = i.peak_rss,
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

-- name: notify_finished
-- Sent with a batch of results, after finish_runs: a wake-up only when the batch can let a
-- dispatcher claim what it could not before, that is a run back in `ready` (a retry, a
-- recurrence, a hand-back) or a slot freed in a category or a capped company. A plain
-- ending frees only its own worker's slot, which that worker's dispatcher knows of without
-- a notification; skipping it spares the commit the NOTIFY queue's lock and every idle
-- dispatcher an empty claim.
SELECT pg_notify('longops_ready', '*')
  FROM longops_operations o
 WHERE o.id = ANY(%(ids)s::uuid[])
   AND (o.status = 'ready' OR o.category IS NOT NULL
        OR EXISTS (SELECT 1 FROM longops_companies c
                    WHERE c.name = o.company AND c.max_in_process IS NOT NULL))
 LIMIT 1;

-- name: next_due_at
SELECT min(earliest_start_at) AS due FROM longops_operations
 WHERE status = 'ready' AND queue = ANY(%(queues)s::text[])
   AND queue NOT IN (SELECT name FROM longops_paused_queues)
   AND (%(companies)s::text[] IS NULL OR company = ANY(%(companies)s::text[]));

-- name: insert_session
INSERT INTO longops_sessions (id, host, pid, queues, concurrency, state, started_at, last_heartbeat_at, companies, tasks, code_version, schema_version)
VALUES (%(id)s, %(host)s, %(pid)s, %(queues)s, %(concurrency)s, %(state)s, %(started_at)s, %(started_at)s, %(companies)s, %(tasks)s, %(code_version)s, %(schema_version)s);

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

-- name: record_migration_flags
UPDATE longops_migrations SET flags = %(flags)s WHERE version = %(version)s;

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
SELECT id, lease_token, stalled_at IS NOT NULL AND moved AS unstalled FROM live;

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
-- Which queues live sessions serve, and for which companies (NULL: every company).
-- And the tasks each has (NULL: any task), for `no_worker_for_task`.
SELECT DISTINCT q.name, s.companies, s.tasks
  FROM longops_sessions s CROSS JOIN LATERAL unnest(s.queues) AS q(name)
 WHERE s.state = 'active';

-- name: running_per_company
SELECT company, count(*) AS running FROM longops_operations
 WHERE status = 'in_process'
 GROUP BY company;

-- name: wait_context
-- What wait reasons are derived from, in one statement (one snapshot, one result): the
-- rows of running_in_categories, list_all_categories, served_queues, running_per_company,
-- list_paused_queues, list_companies, list_users and list_memberships, as JSON arrays.
SELECT
  (SELECT coalesce(json_agg(json_build_object('company', company, 'category', category,
                                              'id', id) ORDER BY entry_no), '[]')
     FROM longops_operations
    WHERE status = 'in_process' AND category IS NOT NULL) AS holding,
  (SELECT coalesce(json_agg(json_build_object('company', company, 'code', code,
                                              'description', description,
                                              'max_concurrent', max_concurrent,
                                              'paused', paused) ORDER BY company, code), '[]')
     FROM longops_categories) AS categories,
  (SELECT coalesce(json_agg(json_build_object('name', name, 'companies', companies,
                                              'tasks', tasks)), '[]')
     FROM (SELECT DISTINCT q.name, s.companies, s.tasks
             FROM longops_sessions s CROSS JOIN LATERAL unnest(s.queues) AS q(name)
            WHERE s.state = 'active') served) AS served,
  (SELECT coalesce(json_agg(json_build_object('company', company, 'running', running)), '[]')
     FROM (SELECT company, count(*) AS running FROM longops_operations
            WHERE status = 'in_process' GROUP BY company) running) AS running,
  (SELECT coalesce(json_agg(json_build_object('name', name)), '[]')
     FROM longops_paused_queues) AS paused,
  (SELECT coalesce(json_agg(json_build_object('name', name, 'display_name', display_name,
                                              'time_zone', time_zone, 'active', active,
                                              'max_in_process', max_in_process)
                            ORDER BY name), '[]')
     FROM longops_companies) AS companies,
  (SELECT coalesce(json_agg(json_build_object('name', name, 'display_name', display_name,
                                              'state', state, 'is_super', is_super,
                                              'created_at', created_at,
                                              'disabled_at', disabled_at,
                                              'has_password', password_hash IS NOT NULL)
                            ORDER BY name), '[]')
     FROM longops_users) AS users,
  (SELECT coalesce(json_agg(json_build_object('user_name', user_name, 'company', company,
                                              'permission_set', permission_set)
                            ORDER BY user_name, company, permission_set), '[]')
     FROM longops_memberships) AS members;

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
-- name: set_scope
-- Row-level security: which companies this transaction may see ('*' for all).
SELECT set_config('longops.companies', %(companies)s, true);

-- name: rls_enabled
SELECT coalesce((SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass('longops_operations')), false) AS enabled;

-- name: enable_row_level_security
-- FORCE: the policies hold for the tables' owner too (the application's role usually is).
ALTER TABLE longops_companies ENABLE ROW LEVEL SECURITY;
ALTER TABLE longops_companies FORCE ROW LEVEL SECURITY;
ALTER TABLE longops_categories ENABLE ROW LEVEL SECURITY;
ALTER TABLE longops_categories FORCE ROW LEVEL SECURITY;
ALTER TABLE longops_operations ENABLE ROW LEVEL SECURITY;
ALTER TABLE longops_operations FORCE ROW LEVEL SECURITY;
ALTER TABLE longops_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE longops_attempts FORCE ROW LEVEL SECURITY;
ALTER TABLE longops_operation_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE longops_operation_events FORCE ROW LEVEL SECURITY;
ALTER TABLE longops_memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE longops_memberships FORCE ROW LEVEL SECURITY;
ALTER TABLE longops_audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE longops_audit_log FORCE ROW LEVEL SECURITY;
ALTER TABLE longops_notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE longops_notifications FORCE ROW LEVEL SECURITY;
ALTER TABLE longops_notify_rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE longops_notify_rules FORCE ROW LEVEL SECURITY;
ALTER TABLE longops_notified_admins ENABLE ROW LEVEL SECURITY;
ALTER TABLE longops_notified_admins FORCE ROW LEVEL SECURITY;
ALTER TABLE longops_notify_channels ENABLE ROW LEVEL SECURITY;
ALTER TABLE longops_notify_channels FORCE ROW LEVEL SECURITY;
ALTER TABLE longops_notify_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE longops_notify_outbox FORCE ROW LEVEL SECURITY;
ALTER TABLE longops_notify_mutes ENABLE ROW LEVEL SECURITY;
ALTER TABLE longops_notify_mutes FORCE ROW LEVEL SECURITY;
ALTER TABLE longops_notify_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE longops_notify_deliveries FORCE ROW LEVEL SECURITY;

-- name: insert_audit
INSERT INTO longops_audit_log (company, at, actor, front_end, action, target, details)
VALUES (%(company)s, %(at)s, %(actor)s, %(front_end)s, %(action)s, %(target)s, %(details)s);

-- name: list_audit
SELECT * FROM longops_audit_log
 WHERE ((%(companies)s::text[] IS NULL AND company IS NOT NULL) OR company = ANY(%(companies)s::text[])
        OR (%(include_global)s AND company IS NULL))
   AND (%(before_id)s::bigint IS NULL OR id < %(before_id)s)
 ORDER BY id DESC
 LIMIT %(limit)s;

-- name: insert_user
INSERT INTO longops_users (name, display_name, password_hash, state, is_super, created_at, updated_at)
VALUES (%(name)s, %(display_name)s, %(password_hash)s, %(state)s, %(is_super)s, %(created_at)s, %(created_at)s)
ON CONFLICT (name) DO NOTHING
RETURNING name;

-- name: get_user
SELECT name, display_name, state, is_super, created_at, disabled_at,
       password_hash IS NOT NULL AS has_password
  FROM longops_users WHERE name = %(name)s;

-- name: list_users
SELECT name, display_name, state, is_super, created_at, disabled_at,
       password_hash IS NOT NULL AS has_password
  FROM longops_users ORDER BY name;

-- name: list_memberships
SELECT user_name, company, permission_set FROM longops_memberships
 WHERE %(name)s::text IS NULL OR user_name = %(name)s
 ORDER BY user_name, company, permission_set;

-- name: get_password_hash
SELECT password_hash FROM longops_users WHERE name = %(name)s;

-- name: set_password_hash
UPDATE longops_users SET password_hash = %(password_hash)s, updated_at = %(at)s
 WHERE name = %(name)s
RETURNING name;

-- name: set_user_state
UPDATE longops_users SET state = %(state)s, updated_at = %(at)s,
       disabled_at = CASE WHEN %(state)s = 'disabled' THEN %(at)s ELSE NULL END
 WHERE name = %(name)s
RETURNING name;

-- name: set_user_super
UPDATE longops_users SET is_super = %(is_super)s, updated_at = %(at)s
 WHERE name = %(name)s
RETURNING name;

-- name: delete_user
DELETE FROM longops_users WHERE name = %(name)s RETURNING name;

-- name: insert_membership
INSERT INTO longops_memberships (user_name, company, permission_set, granted_at)
VALUES (%(name)s, %(company)s, %(permission_set)s, %(at)s)
ON CONFLICT DO NOTHING
RETURNING user_name;

-- name: delete_membership
DELETE FROM longops_memberships
 WHERE user_name = %(name)s AND company = %(company)s AND permission_set = %(permission_set)s
RETURNING user_name;

-- name: active_users
SELECT name FROM longops_users WHERE state = 'active' AND name = ANY(%(names)s::text[]);

-- name: insert_token
INSERT INTO longops_api_tokens (id, user_name, name, token_hash, created_at, expires_at)
VALUES (%(id)s, %(user_name)s, %(name)s, %(token_hash)s, %(created_at)s, %(expires_at)s)
ON CONFLICT (user_name, name) WHERE revoked_at IS NULL DO NOTHING
RETURNING id;

-- name: get_token
SELECT t.*, u.state AS user_state
  FROM longops_api_tokens t JOIN longops_users u ON u.name = t.user_name
 WHERE t.id = %(id)s;

-- name: get_token_user
-- The user a token belongs to (as get_user reads it), keyed by the token.
SELECT u.name, u.display_name, u.state, u.is_super, u.created_at, u.disabled_at,
       u.password_hash IS NOT NULL AS has_password
  FROM longops_api_tokens t JOIN longops_users u ON u.name = t.user_name
 WHERE t.id = %(id)s;

-- name: list_token_memberships
SELECT m.user_name, m.company, m.permission_set
  FROM longops_api_tokens t JOIN longops_memberships m ON m.user_name = t.user_name
 WHERE t.id = %(id)s
 ORDER BY m.user_name, m.company, m.permission_set;

-- name: touch_token
-- At most one write per token per interval, however often it is used.
UPDATE longops_api_tokens SET last_used_at = %(at)s
 WHERE id = %(id)s AND (last_used_at IS NULL OR last_used_at < %(not_since)s);

-- name: list_tokens
SELECT * FROM longops_api_tokens WHERE user_name = %(user_name)s ORDER BY created_at, name;

-- name: revoke_token
UPDATE longops_api_tokens SET revoked_at = %(at)s
 WHERE id = %(id)s AND revoked_at IS NULL
RETURNING id;

-- name: personal_operations
SELECT * FROM longops_operations
 WHERE user_name = %(name)s OR cancel_requested_by = %(name)s
 ORDER BY entry_no;

-- name: personal_attempts
SELECT * FROM longops_attempts WHERE user_name = %(name)s ORDER BY entry_no;

-- name: personal_audit
SELECT * FROM longops_audit_log WHERE actor = %(name)s OR target = %(target)s ORDER BY id;

-- name: forget_operations
UPDATE longops_operations SET
    user_name = CASE WHEN user_name = %(name)s THEN %(pseudonym)s ELSE user_name END,
    cancel_requested_by = CASE WHEN cancel_requested_by = %(name)s THEN %(pseudonym)s ELSE cancel_requested_by END
 WHERE user_name = %(name)s OR cancel_requested_by = %(name)s;

-- name: forget_attempts
UPDATE longops_attempts SET user_name = %(pseudonym)s WHERE user_name = %(name)s;

-- name: forget_audit
UPDATE longops_audit_log SET
    actor = CASE WHEN actor = %(name)s THEN %(pseudonym)s ELSE actor END,
    target = CASE WHEN target = %(target)s THEN %(pseudonym_target)s ELSE target END
 WHERE actor = %(name)s OR target = %(target)s;

-- name: personal_events
SELECT * FROM longops_operation_events WHERE data->>'by' = %(name)s ORDER BY id;

-- name: forget_events
-- Only the timeline's "by" names a user; jsonb merges the pseudonym in.
UPDATE longops_operation_events
   SET data = (data::jsonb || jsonb_build_object('by', %(pseudonym)s::text))::json
 WHERE data->>'by' = %(name)s;

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

-- name: writers_snapshot
-- The transactions of this database that hold a transaction id now (each holds an
-- exclusive lock on it; pg_locks is readable by every role): the live streams' hub waits
-- for them to end before it takes a missing event id or entry number for one that will
-- never commit. A prepared transaction has no session (pid is null) and counts too.
SELECT coalesce(string_agg(l.transactionid::text, ','), '') AS snapshot
  FROM pg_locks l
  LEFT JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted
   AND (a.datname = current_database() OR l.pid IS NULL)
   AND l.pid IS DISTINCT FROM pg_backend_pid();

-- name: writers_done
-- None of those transactions runs any more.
SELECT NOT EXISTS (
    SELECT 1 FROM pg_locks
     WHERE locktype = 'transactionid' AND mode = 'ExclusiveLock'
       AND transactionid::text = ANY(string_to_array(%(snapshot)s, ','))
) AS done;

-- name: get_operation_any
-- By id in any company: only to tell a reused Operation-Id, never shown to a caller as is.
SELECT * FROM longops_operations WHERE id = %(id)s;

-- name: company_events_since
-- One company's timeline after an event id (a list stream resuming); walks the key.
SELECT * FROM longops_operation_events
 WHERE id > %(after_id)s AND company = %(company)s
 ORDER BY id
 LIMIT %(limit)s;

-- name: request_drain
-- Someone asks a live session to drain; the worker sees it at its next heartbeat.
UPDATE longops_sessions SET state = 'draining'
 WHERE id = %(id)s AND state = 'active'
RETURNING *;

-- == the pages (migration 0005) ==========================================================

-- name: count_operations_capped
-- The list's filter, counted no further than %(cap)s (facets and cues stop at "10,000+").
SELECT count(*) AS n FROM (
  SELECT 1 FROM longops_operations
   WHERE (%(company)s::text IS NULL OR company = %(company)s)
     AND (%(companies)s::text[] IS NULL OR company = ANY(%(companies)s::text[]))
     AND (cardinality(%(statuses)s::text[]) = 0 OR status = ANY(%(statuses)s::text[]))
     AND (%(task)s::text IS NULL OR task = %(task)s)
     AND (%(category)s::text IS NULL OR category = %(category)s)
     AND (%(queue)s::text IS NULL OR queue = %(queue)s)
     AND (%(user_name)s::text IS NULL OR user_name = %(user_name)s)
     AND (%(created_after)s::timestamptz IS NULL OR created_at >= %(created_after)s)
     AND (%(created_before)s::timestamptz IS NULL OR created_at < %(created_before)s)
     AND (%(started_after)s::timestamptz IS NULL OR started_at >= %(started_after)s)
     AND (%(started_before)s::timestamptz IS NULL OR started_at < %(started_before)s)
     AND (%(text)s::text IS NULL OR lower(task) LIKE %(text)s OR lower(description) LIKE %(text)s)
     AND (%(stalled)s::boolean IS NULL OR (status = 'in_process' AND stalled_at IS NOT NULL) = %(stalled)s)
   LIMIT %(cap)s
) capped;

-- name: count_operations_capped_status
-- The same, for one company and one status (SQLite needs plain equalities to use its
-- index; PostgreSQL plans either form alike).
SELECT count(*) AS n FROM (
  SELECT 1 FROM longops_operations
   WHERE company = %(company)s AND status = %(status)s
     AND (%(companies)s::text[] IS NULL OR company = ANY(%(companies)s::text[]))
     AND (%(task)s::text IS NULL OR task = %(task)s)
     AND (%(category)s::text IS NULL OR category = %(category)s)
     AND (%(queue)s::text IS NULL OR queue = %(queue)s)
     AND (%(user_name)s::text IS NULL OR user_name = %(user_name)s)
     AND (%(created_after)s::timestamptz IS NULL OR created_at >= %(created_after)s)
     AND (%(created_before)s::timestamptz IS NULL OR created_at < %(created_before)s)
     AND (%(started_after)s::timestamptz IS NULL OR started_at >= %(started_after)s)
     AND (%(started_before)s::timestamptz IS NULL OR started_at < %(started_before)s)
     AND (%(text)s::text IS NULL OR lower(task) LIKE %(text)s OR lower(description) LIKE %(text)s)
     AND (%(stalled)s::boolean IS NULL OR (status = 'in_process' AND stalled_at IS NOT NULL) = %(stalled)s)
   LIMIT %(cap)s
) capped;

-- name: list_running
-- Operations in process, the one that started first first (Overview's longest running, the
-- header's running operations, the Sessions page's current operations).
SELECT * FROM longops_operations
 WHERE status = 'in_process'
   AND (%(company)s::text IS NULL OR company = %(company)s)
   AND (%(companies)s::text[] IS NULL OR company = ANY(%(companies)s::text[]))
   AND (%(user_name)s::text IS NULL OR user_name = %(user_name)s)
 ORDER BY started_at, entry_no
 LIMIT %(limit)s;

-- name: runs_per_hour
-- Runs that ended since %(since)s, per hour after it (bucket 0 is the oldest hour).
SELECT floor(extract(epoch FROM ended_at - %(since)s::timestamptz) / 3600)::int AS bucket,
       count(*) FILTER (WHERE outcome = 'success') AS finished,
       count(*) FILTER (WHERE outcome IN ('error', 'timeout', 'lost')) AS failed
  FROM longops_attempts
 WHERE company = %(company)s AND ended_at >= %(since)s AND ended_at < %(until)s
 GROUP BY bucket;

-- name: category_activity
SELECT c.code,
       (SELECT count(*) FROM longops_operations o
         WHERE o.company = c.company AND o.category = c.code AND o.status = 'in_process') AS running,
       (SELECT count(*) FROM (SELECT 1 FROM longops_operations o
         WHERE o.company = c.company AND o.category = c.code AND o.status = 'ready'
         LIMIT %(cap)s) w) AS waiting
  FROM longops_categories c
 WHERE c.company = %(company)s
 ORDER BY c.code;

-- name: list_company_attempts
-- The Log Entries page: newest first; a page goes on before the last entry number it showed.
SELECT a.*, o.description AS operation_description FROM longops_attempts a
  LEFT JOIN longops_operations o ON o.id = a.operation_id
 WHERE a.company = %(company)s
   AND (%(companies)s::text[] IS NULL OR a.company = ANY(%(companies)s::text[]))
   AND (%(task)s::text IS NULL OR a.task = %(task)s)
   AND (cardinality(%(outcomes)s::text[]) = 0 OR a.outcome = ANY(%(outcomes)s::text[]))
   AND (%(operation_id)s::uuid IS NULL OR a.operation_id = %(operation_id)s)
   AND (%(started_from)s::timestamptz IS NULL OR a.started_at >= %(started_from)s)
   AND (%(started_to)s::timestamptz IS NULL OR a.started_at < %(started_to)s)
   AND (%(before_entry_no)s::bigint IS NULL OR a.entry_no < %(before_entry_no)s)
 ORDER BY a.entry_no DESC
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

-- name: list_notifications
SELECT * FROM longops_notifications
 WHERE company = %(company)s AND user_name = %(user_name)s
   AND (NOT %(unread_only)s OR read_at IS NULL)
   AND (%(before_id)s::bigint IS NULL OR id < %(before_id)s)
 ORDER BY id DESC
 LIMIT %(limit)s;

-- name: count_unread_notifications
SELECT count(*) AS n FROM longops_notifications
 WHERE company = %(company)s AND user_name = %(user_name)s AND read_at IS NULL;

-- name: mark_notifications_read
UPDATE longops_notifications SET read_at = %(at)s
 WHERE company = %(company)s AND user_name = %(user_name)s AND read_at IS NULL
   AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]));

-- name: notifications_since
SELECT * FROM longops_notifications WHERE id > %(after_id)s ORDER BY id LIMIT %(limit)s;

-- name: last_notification_id
SELECT coalesce(max(id), 0) AS id FROM longops_notifications;

-- name: personal_notifications
SELECT * FROM longops_notifications WHERE user_name = %(name)s ORDER BY id;

-- name: forget_notifications
UPDATE longops_notifications SET user_name = %(pseudonym)s WHERE user_name = %(name)s;

-- name: prune_notifications
-- With the operations they tell of: past the retention period, read or not.
DELETE FROM longops_notifications WHERE created_at < %(before)s;

-- name: insert_web_session
INSERT INTO longops_web_sessions (id, user_name, secret_hash, created_at, last_seen_at, expires_at, client)
VALUES (%(id)s, %(user_name)s, %(secret_hash)s, %(created_at)s, %(created_at)s, %(expires_at)s, %(client)s)
RETURNING id;

-- name: get_web_session
SELECT s.*, u.state AS user_state
  FROM longops_web_sessions s JOIN longops_users u ON u.name = s.user_name
 WHERE s.id = %(id)s;

-- name: touch_web_session
-- At most one write per session per interval, however many pages it reads.
UPDATE longops_web_sessions SET last_seen_at = %(at)s
 WHERE id = %(id)s AND last_seen_at < %(not_since)s AND revoked_at IS NULL;

-- name: list_web_sessions
SELECT * FROM longops_web_sessions WHERE user_name = %(user_name)s ORDER BY created_at DESC, id;

-- name: revoke_web_sessions
-- One session (id given) or every live one of the user (not yet past its absolute end).
UPDATE longops_web_sessions SET revoked_at = %(at)s
 WHERE user_name = %(user_name)s AND revoked_at IS NULL AND expires_at > %(at)s
   AND (%(id)s::uuid IS NULL OR id = %(id)s::uuid)
RETURNING id;

-- name: prune_web_sessions
DELETE FROM longops_web_sessions WHERE expires_at < %(before)s;

-- == notifications (migration 8) ==

-- name: upsert_notify_rule
INSERT INTO longops_notify_rules (company, name, on_event, task, category, queue, user_name, recipients, enabled, created_at, threshold)
VALUES (%(company)s, %(name)s, %(on_event)s, %(task)s, %(category)s, %(queue)s, %(user_name)s, %(recipients)s::json, %(enabled)s, %(created_at)s, %(threshold)s)
ON CONFLICT (company, name) DO UPDATE
   SET on_event = excluded.on_event, task = excluded.task, category = excluded.category,
       queue = excluded.queue, user_name = excluded.user_name,
       recipients = excluded.recipients, enabled = excluded.enabled,
       threshold = excluded.threshold
RETURNING *;

-- name: delete_notify_rule
DELETE FROM longops_notify_rules WHERE company = %(company)s AND name = %(name)s RETURNING name;

-- name: list_notify_rules
SELECT * FROM longops_notify_rules WHERE company = %(company)s ORDER BY name;

-- name: add_notified_admin
INSERT INTO longops_notified_admins (company, user_name) VALUES (%(company)s, %(user_name)s)
ON CONFLICT DO NOTHING RETURNING user_name;

-- name: remove_notified_admin
DELETE FROM longops_notified_admins WHERE company = %(company)s AND user_name = %(user_name)s
RETURNING user_name;

-- name: list_notified_admins
SELECT user_name FROM longops_notified_admins WHERE company = %(company)s ORDER BY user_name;

-- name: upsert_notify_channel
INSERT INTO longops_notify_channels (company, name, url_secret, url_masked, url_schema, rate_limit, rate_window, created_at)
VALUES (%(company)s, %(name)s, %(url_secret)s, %(url_masked)s, %(url_schema)s, %(rate_limit)s, %(rate_window)s, %(created_at)s)
ON CONFLICT (company, name) DO UPDATE
   SET url_secret = excluded.url_secret, url_masked = excluded.url_masked,
       url_schema = excluded.url_schema, rate_limit = excluded.rate_limit,
       rate_window = excluded.rate_window
RETURNING company, name, url_masked, url_schema, rate_limit, rate_window, created_at;

-- name: delete_notify_channel
DELETE FROM longops_notify_channels WHERE company = %(company)s AND name = %(name)s RETURNING name;

-- name: list_notify_channels
SELECT company, name, url_masked, url_schema, rate_limit, rate_window, created_at
  FROM longops_notify_channels WHERE company = %(company)s ORDER BY name;

-- name: get_notify_channel_secret
SELECT url_secret, rate_limit, rate_window FROM longops_notify_channels
 WHERE company = %(company)s AND name = %(name)s;

-- name: pending_outbox
SELECT id, company, operation_id, event, at, rule_name FROM longops_notify_outbox
 WHERE expanded_at IS NULL ORDER BY id LIMIT %(limit)s;

-- name: mark_outbox_expanded
UPDATE longops_notify_outbox SET expanded_at = %(at)s WHERE id = %(id)s AND expanded_at IS NULL;

-- name: insert_delivery
INSERT INTO longops_notify_deliveries (outbox_id, company, operation_id, event, rule_name, recipient, idem_key, next_at, created_at)
VALUES (%(outbox_id)s, %(company)s, %(operation_id)s, %(event)s, %(rule_name)s, %(recipient)s, %(idem_key)s, %(at)s, %(at)s)
ON CONFLICT DO NOTHING;

-- name: finish_delivery
UPDATE longops_notify_deliveries
   SET status = %(status)s, next_at = %(next_at)s, last_error = %(error)s,
       attempts = attempts - %(uncharge)s,
       sent_at = %(sent_at)s, claim_token = NULL, locked_until = NULL
 WHERE id = %(id)s AND claim_token = %(claim_token)s AND status = 'pending'
RETURNING id;

-- name: insert_inbox_notification
INSERT INTO longops_notifications (company, user_name, operation_id, kind, title, created_at)
VALUES (%(company)s, %(user_name)s, %(operation_id)s, %(kind)s, %(title)s, %(at)s);

-- name: list_deliveries
SELECT * FROM longops_notify_deliveries
 WHERE company = %(company)s AND (%(status)s::text IS NULL OR status = %(status)s::text)
 ORDER BY id DESC LIMIT %(limit)s;

-- name: count_recent_sends
-- What a channel's rate limit counts: each send, a digest (its items share one sent_at) once.
SELECT (SELECT count(*) FROM longops_notify_deliveries
         WHERE company = %(company)s AND recipient = %(recipient)s
           AND status = 'sent' AND sent_at > %(since)s)
     + (SELECT count(DISTINCT sent_at) FROM longops_notify_deliveries
         WHERE company = %(company)s AND recipient = %(recipient)s
           AND status = 'digested' AND sent_at > %(since)s) AS n;

-- name: retry_delivery
UPDATE longops_notify_deliveries
   SET status = 'pending', attempts = 0, next_at = %(at)s, claim_token = NULL, locked_until = NULL
 WHERE company = %(company)s AND id = %(id)s AND status = 'dead'
RETURNING id;

-- name: claim_deliveries
-- Due deliveries, and those whose claim lapsed (a sender died mid-send), taken with a
-- fresh claim token; SKIP LOCKED lets every worker's service claim at once.
UPDATE longops_notify_deliveries d
   SET claim_token = %(claim_token)s, locked_until = %(until)s, attempts = d.attempts + 1
 WHERE d.id IN (SELECT id FROM longops_notify_deliveries
                 WHERE status = 'pending' AND next_at <= %(now)s
                   AND (locked_until IS NULL OR locked_until <= %(now)s)
                 ORDER BY next_at, id
                 LIMIT %(limit)s
                 FOR UPDATE SKIP LOCKED)
RETURNING d.*;

-- name: list_watch_rules
-- The enabled rules whose conditions need a clock (the watch service).
SELECT * FROM longops_notify_rules
 WHERE enabled AND on_event IN ('running_long', 'waiting_long', 'milestone')
 ORDER BY company, name;

-- name: insert_watched
-- Once per dedup key: a condition still met at the next look is not told again.
INSERT INTO longops_notify_outbox (company, operation_id, event, at, rule_name, dedup)
VALUES (%(company)s, %(operation_id)s, %(event)s, %(at)s, %(rule_name)s, %(dedup)s)
ON CONFLICT DO NOTHING;

-- name: prune_notify_deliveries
-- Deliveries done with (sent, digested, dead) past the retention period; pending ones stay.
DELETE FROM longops_notify_deliveries
 WHERE status <> 'pending' AND created_at < %(before)s;

-- name: prune_notify_outbox
-- Expanded outbox entries past the retention period with no delivery left.
DELETE FROM longops_notify_outbox
 WHERE expanded_at IS NOT NULL AND at < %(before)s
   AND NOT EXISTS (SELECT 1 FROM longops_notify_deliveries d WHERE d.outbox_id = longops_notify_outbox.id);

-- name: mute_rule
INSERT INTO longops_notify_mutes (company, user_name, rule_name)
VALUES (%(company)s, %(user_name)s, %(rule_name)s) ON CONFLICT DO NOTHING;

-- name: unmute_rule
DELETE FROM longops_notify_mutes
 WHERE company = %(company)s AND user_name = %(user_name)s AND rule_name = %(rule_name)s;

-- name: list_mutes
SELECT user_name, rule_name FROM longops_notify_mutes WHERE company = %(company)s
 ORDER BY user_name, rule_name;

-- name: deliveries_due
-- Whether a claim would find anything: a read, so an idle sender takes no write lock.
SELECT 1 AS due FROM longops_notify_deliveries
 WHERE status = 'pending' AND next_at <= %(now)s
   AND (locked_until IS NULL OR locked_until <= %(now)s)
 LIMIT 1;

-- name: fleet_metrics
-- The fleet's figures for /metrics in one statement: operations by company, queue and
-- status; the oldest due, ready operation per queue; stalled runs per company; live sessions.
SELECT 'operations' AS metric, company, queue, status, COUNT(*) AS n, NULL::timestamptz AS at
  FROM longops_operations
 GROUP BY company, queue, status
UNION ALL
SELECT 'oldest_ready', NULL, queue, NULL, COUNT(*), MIN(earliest_start_at)
  FROM longops_operations
 WHERE status = 'ready' AND earliest_start_at <= %(now)s
 GROUP BY queue
UNION ALL
SELECT 'stalled', company, NULL, NULL, COUNT(*), NULL::timestamptz
  FROM longops_operations
 WHERE status = 'in_process' AND stalled_at IS NOT NULL
 GROUP BY company
UNION ALL
SELECT 'sessions', NULL, NULL, NULL, COUNT(*), NULL::timestamptz
  FROM longops_sessions
 WHERE state IN ('active', 'draining');

-- name: set_user_contact
UPDATE longops_users SET email = %(email)s, notify_by_email = %(notify_by_email)s, updated_at = %(at)s
 WHERE name = %(name)s RETURNING name;

-- name: get_user_contact
SELECT email, notify_by_email FROM longops_users WHERE name = %(name)s;

-- name: email_recipients
SELECT name, email FROM longops_users
 WHERE notify_by_email = true AND email IS NOT NULL AND state = 'active' ORDER BY name;

-- name: clear_personal_email_channel
UPDATE longops_notify_channels SET personal_email = false
 WHERE company = %(company)s AND personal_email = true;

-- name: mark_personal_email_channel
UPDATE longops_notify_channels SET personal_email = true
 WHERE company = %(company)s AND name = %(name)s RETURNING name;

-- name: personal_email_channel
SELECT name FROM longops_notify_channels WHERE company = %(company)s AND personal_email = true;

-- ---------------------------------------------------------------------------------------
-- Apps (issue 15): the schema guard, the app registry, uninstall and export.

-- name: set_session_tasks
UPDATE longops_sessions SET tasks = %(tasks)s WHERE id = %(id)s;

-- name: list_migrations_flags
SELECT * FROM longops_migrations ORDER BY version;

-- name: upsert_app
INSERT INTO longops_apps (name, version, seen_at) VALUES (%(app)s, %(version)s, %(at)s)
ON CONFLICT (name) DO UPDATE
   SET version = excluded.version, seen_at = excluded.seen_at,
       uninstalled_at = NULL, purge_at = NULL;

-- name: insert_app_task
INSERT INTO longops_app_tasks (app, task, worker_wait_seconds) VALUES (%(app)s, %(task)s, %(wait)s)
ON CONFLICT (app, task) DO UPDATE SET worker_wait_seconds = excluded.worker_wait_seconds;

-- name: list_apps
SELECT * FROM longops_apps ORDER BY name;

-- name: get_app
SELECT * FROM longops_apps WHERE name = %(app)s;

-- name: list_app_tasks
SELECT * FROM longops_app_tasks ORDER BY app, task;

-- name: mark_app_uninstalled
UPDATE longops_apps SET uninstalled_at = coalesce(%(at)s, uninstalled_at),
       purge_at = coalesce(%(purge_at)s, purge_at)
 WHERE name = %(app)s;

-- name: mark_app_exported
UPDATE longops_apps SET exported_at = %(at)s WHERE name = %(app)s;

-- name: operations_of_tasks
SELECT * FROM longops_operations
 WHERE task = ANY(%(tasks)s::text[])
   AND (%(companies)s::text[] IS NULL OR company = ANY(%(companies)s::text[]))
   AND entry_no > %(after)s
 ORDER BY entry_no
 LIMIT 1000;

-- name: delete_unused_categories
-- Operations keep their category (a foreign key): one any operation still names stays.
DELETE FROM longops_categories c
 WHERE c.company = %(company)s AND c.code = ANY(%(codes)s::text[])
   AND NOT EXISTS (SELECT 1 FROM longops_operations o
                    WHERE o.company = c.company AND o.category = c.code)
RETURNING c.code;

-- name: fail_unserved
-- Ready operations whose task no live session has, waiting (since they were due) longer
-- than their task's worker_wait, as the apps that have the task recorded it.
UPDATE longops_operations o SET status = 'error', status_reason = 'no_worker_for_task',
       ended_at = %(now)s, updated_at = %(now)s,
       last_error = 'no live worker session had task ' || o.task || ' within '
                    || w.seconds || ' s (its worker_wait)'
  FROM (SELECT task, min(worker_wait_seconds) AS seconds FROM longops_app_tasks
         WHERE worker_wait_seconds IS NOT NULL GROUP BY task) w
 WHERE o.status = 'ready' AND o.task = w.task
   AND o.earliest_start_at + make_interval(secs => w.seconds) < %(now)s
   AND NOT EXISTS (SELECT 1 FROM longops_sessions s
                    WHERE s.state = 'active' AND (s.tasks IS NULL OR o.task = ANY(s.tasks)))
RETURNING o.id;

-- name: purge_uninstalled
WITH gone AS (
    SELECT o.id FROM longops_operations o
     WHERE o.status IN ('finished', 'error', 'cancelled')
       AND o.task IN (SELECT t.task FROM longops_app_tasks t
                        JOIN longops_apps a ON a.name = t.app
                       WHERE a.purge_at <= %(now)s)
),
events AS (
    DELETE FROM longops_operation_events WHERE operation_id IN (SELECT id FROM gone)
),
attempts AS (
    DELETE FROM longops_attempts WHERE operation_id IN (SELECT id FROM gone)
)
DELETE FROM longops_operations WHERE id IN (SELECT id FROM gone)
RETURNING id;


-- Maintenance mode (domain/maintenance.py, store/maintenance.py) -----------------------------

-- name: get_maintenance
SELECT * FROM longops_maintenance WHERE id = 1;

-- name: lock_maintenance
-- Every claim reads longops_maintenance (claim_operations) and holds its share lock until
-- it commits: this waits for claims in flight, and claims that start meanwhile wait for
-- the switch and then see it. So once maintenance mode is on, no claim lands after.
LOCK TABLE longops_maintenance IN ACCESS EXCLUSIVE MODE;

-- name: start_maintenance
UPDATE longops_maintenance
   SET active = true, reason = %(reason)s, drain_timeout = %(drain_timeout)s,
       started_at = %(at)s, stopped_at = NULL
 WHERE id = 1 AND NOT active
RETURNING *;

-- name: stop_maintenance
UPDATE longops_maintenance SET active = false, stopped_at = %(at)s
 WHERE id = 1 AND active
RETURNING *;
