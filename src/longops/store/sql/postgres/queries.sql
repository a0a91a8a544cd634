-- PostgreSQL's own queries: only those that really differ from SQLite's, each saying why
-- (-- why:, not sent to the server). Every other query is written once in sql/common/.
-- Parameters in psycopg's %(name)s style. Loaded once by longops.store.queries.

-- Fragments the common queries splice in as {{name}}.

-- fragment: in_companies
-- The companies a read is narrowed to (NULL: every company).
(%(companies)s::text[] IS NULL OR company = ANY(%(companies)s::text[]))

-- fragment: in_statuses
-- The statuses a list asks for (none: every status).
(cardinality(%(statuses)s::text[]) = 0 OR status = ANY(%(statuses)s::text[]))

-- fragment: like_text
-- A search (domain.filters.search_terms): a substring of the description, task or last error
-- (PostgreSQL's LIKE escapes with a backslash by default; the trigram index
-- longops_operations_search, migration 0015, serves it), an entry number, an id prefix (a
-- range of the primary key). The user filter is a name prefix.
(%(text)s::text IS NULL
    OR (%(text_like)s::text IS NOT NULL
        AND lower(coalesce(description, '') || ' ' || task || ' ' || coalesce(last_error, '')) LIKE %(text_like)s)
    OR (%(text_entry_no)s::bigint IS NOT NULL AND entry_no = %(text_entry_no)s::bigint)
    OR (%(id_low)s::uuid IS NOT NULL AND id BETWEEN %(id_low)s::uuid AND %(id_high)s::uuid))
   AND (%(user_prefix)s::text IS NULL OR lower(user_name) LIKE %(user_prefix)s)

-- fragment: listed_operations
-- longops_operations as the lists and their counts read it: the operations not running,
-- then the running ones, as two branches of one UNION ALL that the planner flattens (the
-- caller's conditions reach each branch; an ORDER BY ... LIMIT merges two ordered scans).
-- The lists' indexes leave running operations out (migration 0016: a claim then enters
-- three indexes, not twelve), and only a branch that says `status <> 'in_process'` may
-- use them, under custom and generic plans alike; the running ones, few by nature, are
-- read through longops_operations_running. SQLite's is the table itself. Used as
-- `FROM {{listed_operations}} o`.
(SELECT * FROM longops_operations WHERE status <> 'in_process'
 UNION ALL
 SELECT * FROM longops_operations WHERE status = 'in_process')

-- name: list_operations
-- why: the running operations are read apart, each branch ordered and cut on its own
--      (migration 0016: the lists' indexes leave them out; see listed_operations, whose
--      flattened UNION ALL cannot carry an order into a branch with its own WHERE);
--      SQLite reads the table.
-- Oldest first; a page goes on after the last entry number it showed (keyset paging).
SELECT * FROM (
    (SELECT * FROM longops_operations
      WHERE status <> 'in_process' AND {{operation_filter}} AND {{entry_no_window}}
      ORDER BY entry_no
      LIMIT %(limit)s)
    UNION ALL
    (SELECT * FROM longops_operations
      WHERE status = 'in_process' AND {{operation_filter}} AND {{entry_no_window}}
      ORDER BY entry_no
      LIMIT %(limit)s)
) o
 ORDER BY entry_no
 LIMIT %(limit)s;

-- name: list_operations_desc
-- why: the running operations are read apart (see list_operations).
-- Newest first (dashboards); a page goes on before the last entry number it showed.
SELECT * FROM (
    (SELECT * FROM longops_operations
      WHERE status <> 'in_process' AND {{operation_filter}} AND {{entry_no_window}}
      ORDER BY entry_no DESC
      LIMIT %(limit)s)
    UNION ALL
    (SELECT * FROM longops_operations
      WHERE status = 'in_process' AND {{operation_filter}} AND {{entry_no_window}}
      ORDER BY entry_no DESC
      LIMIT %(limit)s)
) o
 ORDER BY entry_no DESC
 LIMIT %(limit)s;

-- name: list_operations_sorted
-- why: the running operations are read apart (see list_operations).
-- Sorted by a column (domain.filters.SortKey), ties by entry number, both in one direction;
-- a page goes on after the cursor's (value, entry number), keyset paging as above. The store
-- puts the dialect's expression of the column for SORT_KEY (each has an index, migrations
-- 0015 and 0016), ASC or DESC for SORT_DIR, and for SORT_AFTER the comparison with the
-- cursor (or TRUE on a first page), in each branch and in the merge of the two.
SELECT * FROM (
    (SELECT * FROM longops_operations
      WHERE status <> 'in_process' AND {{operation_filter}} AND SORT_AFTER
      ORDER BY SORT_KEY SORT_DIR, entry_no SORT_DIR
      LIMIT %(limit)s)
    UNION ALL
    (SELECT * FROM longops_operations
      WHERE status = 'in_process' AND {{operation_filter}} AND SORT_AFTER
      ORDER BY SORT_KEY SORT_DIR, entry_no SORT_DIR
      LIMIT %(limit)s)
) o
 ORDER BY SORT_KEY SORT_DIR, entry_no SORT_DIR
 LIMIT %(limit)s;

-- name: list_companies
-- why: a list parameter: a text[] bound once here (= ANY), a JSON array on SQLite (json_each).
SELECT * FROM longops_companies
 WHERE %(companies)s::text[] IS NULL OR name = ANY(%(companies)s::text[])
 ORDER BY name;

-- name: copy_operations
-- why: COPY FROM STDIN (bulk enqueue); SQLite inserts with executemany.
-- Binary: no text to parse per value on the server (timestamps, uuids, numbers).
COPY longops_operations (
    id, company, task, args, description, queue, category, priority, status,
    earliest_start_at, expires_at, max_attempts, rerun_delay, retry_policy, timeout_seconds,
    recurrence, user_name, created_at, updated_at, ready_at, dedup_key, labels,
    stall_after_seconds, required_permission, trace_context)
FROM STDIN (FORMAT BINARY);

-- name: insert_operation_notify
-- why: LISTEN/NOTIFY wake-ups (SQLite wakes in-process), and one statement instead of
--      INSERT, NOTIFY and COMMIT: sent in autocommit, its own implicit transaction.
-- One plain enqueue (no dedup key, no client Operation-Id): the row, and its wake-up sent
-- when the statement commits, in one round trip. Only the entry number comes back: the
-- caller has every other value (store._sql.core.inserted). No row: the id was taken.
WITH ins AS (
{{insert_new_operation}}
ON CONFLICT DO NOTHING
RETURNING entry_no, queue),
woken AS (SELECT pg_notify('longops_ready', queue) FROM ins)
SELECT ins.entry_no FROM ins, woken;

-- name: keep_deleted_copy
-- why: a whole row as JSON (to_jsonb) in SQL; SQLite reads the row and writes its columns'
--      JSON itself (SqliteStore._keep_copy).
-- A Delete that can be undone (migration 0017) keeps the row as it is, as one JSON value:
-- whatever columns the table has then, so a later migration's column comes back too.
INSERT INTO longops_deleted_operations
    (id, company, entry_no, deleted_at, keep_until, deleted_by, operation)
SELECT o.id, o.company, o.entry_no, %(at)s, %(until)s, %(by)s::text, to_jsonb(o)
  FROM longops_operations o
 WHERE o.id = %(id)s
   AND (%(company)s::text IS NULL OR o.company = %(company)s)
   AND o.status <> 'in_process'
ON CONFLICT (id) DO UPDATE SET
    company = EXCLUDED.company, entry_no = EXCLUDED.entry_no, deleted_at = EXCLUDED.deleted_at,
    keep_until = EXCLUDED.keep_until, deleted_by = EXCLUDED.deleted_by,
    operation = EXCLUDED.operation;

-- name: restore_deleted_copy
-- why: a row back from JSON (jsonb_populate_record) and its identity entry number kept
--      (OVERRIDING SYSTEM VALUE); SQLite inserts the copy's columns (SqliteStore._restore_copy).
-- Undo: the row as it was (same id and entry number), by whoever deleted it, in time; none
-- when its dedup key is taken meanwhile (ON CONFLICT: the copy stays until its time).
INSERT INTO longops_operations OVERRIDING SYSTEM VALUE
SELECT r.*
  FROM longops_deleted_operations d,
       jsonb_populate_record(NULL::longops_operations, d.operation) AS r
 WHERE d.id = %(id)s
   AND (%(company)s::text IS NULL OR d.company = %(company)s)
   AND d.keep_until >= %(at)s
   AND d.deleted_by IS NOT DISTINCT FROM %(by)s::text
ON CONFLICT DO NOTHING
RETURNING id;

-- name: notify_ready
-- why: LISTEN/NOTIFY wake-ups; SQLite wakes in-process and polls.
SELECT pg_notify('longops_ready', %(queue)s);

-- name: apply_action
-- why: a list parameter: a text[] bound once here (= ANY), a JSON array on SQLite (json_each).
--      (Its booleans are SQLite's 0/1 there.)
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

-- name: notify_cancel
-- why: LISTEN/NOTIFY cancel requests; SQLite's workers poll.
SELECT pg_notify('longops_cancel', %(id)s::text);

-- name: claim_plan
-- why: the claim's prepared plan (PostgreSQL only: SQLite claims in steps).
-- The claim is one large statement: planning it costs more than running it. Its plan does
-- not depend on the parameters' values (every scan is an index walk bounded by LIMIT), so
-- the claim always uses the generic plan of its prepared statement instead of re-planning
-- (as PostgreSQL's default, plan_cache_mode = auto, would for this query on every claim).
-- JIT off for the claim's transaction: the generic plan does not know the batch size, so
-- once autovacuum has analysed a large backlog its estimated cost passes jit_above_cost
-- and PostgreSQL compiled it on every claim (0.2 s at 25,000 ready, 2 s at 1,000,000, for
-- a plan that runs in 2-6 ms; benchmarks/results/scale-notes.md).
SELECT set_config('plan_cache_mode', 'force_generic_plan', true), set_config('jit', 'off', true);

-- name: claim_guard
-- why: per-company advisory guard keys for category-limited claims (no advisory locks on
--      SQLite, whose single writer serialises claims).
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
-- why: the hot path: one statement that picks (FOR UPDATE SKIP LOCKED, the per-company
--      guard keys of claim_guard), leases and records the attempts; SQLite claims in steps.
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
-- why: the hot path: a batch of results in one statement (JSON rows, data-modifying CTEs);
--      SQLite finishes run by run (finish_operation, finish_attempt) under its single writer.
-- One statement for a whole batch of results. Fenced by the lease token: a session
-- declared lost, or a run already handed back, matches no row and so changes nothing.
-- A cancel request pending on the row wins over a retry, the next run of a recurrence, a
-- drain's hand-back, a rescue and a failure: the operation ends cancelled. It is read in
-- SET, from the row as locked, so a request that commits while this statement runs counts.
WITH input AS (
    -- The batch as one JSON array of objects, one per result: the client writes it with
    -- orjson in one C call, where 18 typed arrays cost psycopg's array dumpers a Python
    -- loop per element (about a tenth of a worker's interpreter time in a no-op drain).
    SELECT * FROM json_to_recordset(%(rows)s::json) AS t(
        id uuid, lease_token uuid, run_no integer, at timestamptz, outcome text, status text,
        status_reason text, earliest_start_at timestamptz, attempt_count integer,
        error_message text, traceback text, result text, run_started_at timestamptz,
        progress text, stop_mode text, cancel_mode text, clear_checkpoint boolean,
        peak_rss bigint)
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
       -- The ids once more as an array: the planner takes a function's rows for 100, so
       -- without it the generic plan hashed the input and scanned the whole table for it.
       AND o.id = ANY(%(ids)s::uuid[])
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
-- why: LISTEN/NOTIFY when a finish freed a slot or put a run back in ready; SQLite wakes
--      in-process.
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
-- why: a list parameter: a text[] bound once here (= ANY), a JSON array on SQLite (json_each).
SELECT min(earliest_start_at) AS due FROM longops_operations
 WHERE status = 'ready' AND queue = ANY(%(queues)s::text[])
   AND queue NOT IN (SELECT name FROM longops_paused_queues)
   AND (%(companies)s::text[] IS NULL OR company = ANY(%(companies)s::text[]));

-- name: create_migrations_table
-- why: column types: timestamptz and now() here.
CREATE TABLE IF NOT EXISTS longops_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- name: migration_lock
-- why: an advisory lock serialises concurrent upgrades; SQLite's write lock already does.
-- Two processes upgrading at once take turns; the second finds nothing left to apply.
SELECT pg_advisory_xact_lock(7243015000);

-- name: cancel_requested
-- why: a list parameter: a text[] bound once here (= ANY), a JSON array on SQLite (json_each).
SELECT id, cancel_force, cancel_reason, cancel_requested_by FROM longops_operations
 WHERE id = ANY(%(ids)s::uuid[]) AND status = 'in_process' AND cancel_requested_at IS NOT NULL;

-- name: flush_progress
-- why: a batch of readings in one statement (arrays); SQLite writes one by one
--      (flush_progress_one).
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

-- name: flag_stalled
-- why: time arithmetic: intervals (make_interval).
-- Running operations whose progress has not moved for their stall_after.
UPDATE longops_operations SET stalled_at = %(now)s
 WHERE status = 'in_process' AND stalled_at IS NULL
   AND progress_moved_at <= %(now)s - make_interval(secs => stall_after_seconds)
RETURNING id, company, run_count, progress_moved_at;

-- name: list_events
-- why: a list parameter: a text[] bound once here (= ANY), a JSON array on SQLite (json_each).
SELECT * FROM longops_operation_events
 WHERE operation_id = %(id)s
   AND (%(after_id)s::bigint IS NULL OR id > %(after_id)s)
   AND (cardinality(%(types)s::text[]) = 0 OR type = ANY(%(types)s::text[]))
   AND (%(run_no)s::integer IS NULL OR run_no = %(run_no)s)
 ORDER BY CASE WHEN %(newest_first)s THEN -id ELSE id END
 LIMIT %(limit)s;

-- name: served_queues
-- why: sessions.queues is a text[] column here (unnest), JSON text on SQLite.
-- Which queues live sessions serve, and for which companies (NULL: every company).
-- And the tasks each has (NULL: any task), for `no_worker_for_task`.
SELECT DISTINCT q.name, s.companies, s.tasks, s.claim_stopped
  FROM longops_sessions s CROSS JOIN LATERAL unnest(s.queues) AS q(name)
 WHERE s.state = 'active';

-- name: wait_context
-- why: the nine reads of a wait context in one statement and one snapshot; SQLite runs them
--      one after the other in one read.
-- What wait reasons are derived from, in one statement (one snapshot, one result): the
-- rows of running_in_categories, list_all_categories, served_queues, running_per_company,
-- list_paused_queues, list_companies, list_users and list_memberships, as JSON arrays, and
-- get_maintenance's row (maintenance mode holds back every due operation).
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
                                              'tasks', tasks,
                                              'claim_stopped', claim_stopped)), '[]')
     FROM (SELECT DISTINCT q.name, s.companies, s.tasks, s.claim_stopped
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
     FROM longops_memberships) AS members,
  (SELECT coalesce(json_agg(json_build_object('active', active, 'reason', reason,
                                              'drain_timeout', drain_timeout,
                                              'started_at', started_at,
                                              'stopped_at', stopped_at)), '[]')
     FROM longops_maintenance WHERE id = 1) AS maintenance;

-- name: recent_durations
-- why: time arithmetic: extract(epoch FROM interval).
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
-- why: a row lock (FOR UPDATE) held to the commit.
-- A running operation's row while its run holds the lease, locked: the writes that follow in the transaction see no change in between.
SELECT company, run_count, stalled_at FROM longops_operations
 WHERE id = %(id)s AND status = 'in_process' AND lease_token = %(lease_token)s
   FOR UPDATE;

-- name: set_scope
-- why: row-level security (PostgreSQL only).
-- Row-level security: which companies this transaction may see ('*' for all).
SELECT set_config('longops.companies', %(companies)s, true);

-- name: rls_enabled
-- why: row-level security (PostgreSQL only).
SELECT coalesce((SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass('longops_operations')), false) AS enabled;

-- name: enable_row_level_security
-- why: row-level security (PostgreSQL only).
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
ALTER TABLE longops_deleted_operations ENABLE ROW LEVEL SECURITY;
ALTER TABLE longops_deleted_operations FORCE ROW LEVEL SECURITY;

-- name: list_audit
-- why: a list parameter: a text[] bound once here (= ANY), a JSON array on SQLite (json_each).
SELECT * FROM longops_audit_log
 WHERE ((%(companies)s::text[] IS NULL AND company IS NOT NULL) OR company = ANY(%(companies)s::text[])
        OR (%(include_global)s AND company IS NULL))
   AND (%(before_id)s::bigint IS NULL OR id < %(before_id)s)
 ORDER BY id DESC
 LIMIT %(limit)s;

-- name: active_users
-- why: a list parameter: a text[] bound once here (= ANY), a JSON array on SQLite (json_each).
SELECT name FROM longops_users WHERE state = 'active' AND name = ANY(%(names)s::text[]);

-- name: personal_events
-- why: JSON operators (->>).
SELECT * FROM longops_operation_events WHERE data->>'by' = %(name)s ORDER BY id;

-- name: forget_events
-- why: JSON operators (jsonb ||, jsonb_build_object).
-- Only the timeline's "by" names a user; jsonb merges the pseudonym in.
UPDATE longops_operation_events
   SET data = (data::jsonb || jsonb_build_object('by', %(pseudonym)s::text))::json
 WHERE data->>'by' = %(name)s;

-- name: writers_snapshot
-- why: transaction ids in flight (pg_current_snapshot); SQLite has one writer at a time.
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
-- why: transaction ids in flight (pg_snapshot_xmin); SQLite has one writer at a time.
-- None of those transactions runs any more.
SELECT NOT EXISTS (
    SELECT 1 FROM pg_locks
     WHERE locktype = 'transactionid' AND mode = 'ExclusiveLock'
       AND transactionid::text = ANY(string_to_array(%(snapshot)s, ','))
) AS done;

-- name: runs_per_hour
-- why: time arithmetic (extract epoch) and count(*) FILTER.
-- Runs that ended since %(since)s, per bucket of %(bucket)s seconds after it (bucket 0 is the oldest).
SELECT floor(extract(epoch FROM ended_at - %(since)s::timestamptz) / %(bucket)s::int)::int AS bucket,
       count(*) FILTER (WHERE outcome = 'success') AS finished,
       count(*) FILTER (WHERE outcome IN ('error', 'timeout', 'lost')) AS failed
  FROM longops_attempts
 WHERE company = %(company)s AND ended_at >= %(since)s AND ended_at < %(until)s
 GROUP BY bucket;

-- name: list_company_attempts
-- why: a list parameter: a text[] bound once here (= ANY), a JSON array on SQLite (json_each).
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

-- name: mark_notifications_read
-- why: a list parameter: a text[] bound once here (= ANY), a JSON array on SQLite (json_each).
UPDATE longops_notifications SET read_at = %(at)s
 WHERE company = %(company)s AND user_name = %(user_name)s AND read_at IS NULL
   AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]));

-- name: claim_deliveries
-- why: FOR UPDATE SKIP LOCKED: senders in several processes take disjoint rows.
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

-- name: fleet_metrics
-- why: a UNION's NULL columns need a type here (NULL::timestamptz).
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

-- Apps (issue 15) and maintenance mode: the queries that differ.

-- name: operations_of_tasks
-- why: a list parameter: a text[] bound once here (= ANY), a JSON array on SQLite (json_each).
SELECT * FROM longops_operations
 WHERE task = ANY(%(tasks)s::text[])
   AND (%(companies)s::text[] IS NULL OR company = ANY(%(companies)s::text[]))
   AND entry_no > %(after)s
 ORDER BY entry_no
 LIMIT 1000;

-- name: delete_unused_categories
-- why: a list parameter: a text[] bound once here (= ANY), a JSON array on SQLite (json_each).
-- Operations keep their category (a foreign key): one any operation still names stays.
-- Running operations apart: longops_operations_category_status leaves them out (migration
-- 0016), longops_operations_busy holds them.
DELETE FROM longops_categories c
 WHERE c.company = %(company)s AND c.code = ANY(%(codes)s::text[])
   AND NOT EXISTS (SELECT 1 FROM longops_operations o
                    WHERE o.company = c.company AND o.category = c.code
                      AND o.status <> 'in_process')
   AND NOT EXISTS (SELECT 1 FROM longops_operations o
                    WHERE o.company = c.company AND o.category = c.code
                      AND o.status = 'in_process')
RETURNING c.code;

-- name: fail_unserved
-- why: time arithmetic (make_interval), UPDATE ... FROM and sessions.tasks a text[] here.
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
-- why: data-modifying CTEs delete the history in the same statement; SQLite has none and
--      runs purge_uninstalled_events and purge_uninstalled_attempts first.
WITH gone AS (
    SELECT o.id FROM longops_operations o
     WHERE o.status IN ('finished', 'error', 'cancelled')
       -- only what an export covered: created at or before the app's last export began
       AND EXISTS (SELECT 1 FROM longops_app_tasks t JOIN longops_apps a ON a.name = t.app
                    WHERE t.task = o.task AND a.purge_at <= %(now)s
                      AND o.created_at <= a.exported_at)
),
events AS (
    DELETE FROM longops_operation_events WHERE operation_id IN (SELECT id FROM gone)
),
attempts AS (
    DELETE FROM longops_attempts WHERE operation_id IN (SELECT id FROM gone)
)
DELETE FROM longops_operations WHERE id IN (SELECT id FROM gone)
RETURNING id;

-- name: lock_maintenance
-- why: a table lock; SQLite's BEGIN IMMEDIATE already orders the switch after any claim.
-- Every claim reads longops_maintenance (claim_operations) and holds its share lock until
-- it commits: this waits for claims in flight, and claims that start meanwhile wait for
-- the switch and then see it. So once maintenance mode is on, no claim lands after.
LOCK TABLE longops_maintenance IN ACCESS EXCLUSIVE MODE;

-- name: forget_deleted_copies
-- why: JSON operators (->>); SQLite reads the copy with json_extract.
-- Copies kept for a Delete's Undo (migration 0017) that name the user go at once.
DELETE FROM longops_deleted_operations
 WHERE deleted_by = %(name)s
    OR operation->>'user_name' = %(name)s
    OR operation->>'cancel_requested_by' = %(name)s;
