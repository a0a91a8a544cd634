-- Fragments both dialects splice alike, written once like the common queries. A fragment
-- is spliced inside a statement as {{name}}; its own comment lines are dropped there.

-- fragment: operation_filter
-- The list filter (domain.filters.OperationFilter as core narrowed it): every query that
-- lists operations or counts a list splices it, so a new filter field is added here once.
(%(company)s::text IS NULL OR company = %(company)s)
   AND {{in_companies}}
   AND {{in_statuses}}
   AND {{operation_details}}

-- fragment: operation_details
-- The filter's fields past company and status (count_operations_capped_status states
-- those as plain equalities).
(%(task)s::text IS NULL OR task = %(task)s)
   AND (%(category)s::text IS NULL OR category = %(category)s)
   AND (%(queue)s::text IS NULL OR queue = %(queue)s)
   AND (%(user_name)s::text IS NULL OR user_name = %(user_name)s)
   AND (%(created_after)s::timestamptz IS NULL OR created_at >= %(created_after)s)
   AND (%(created_before)s::timestamptz IS NULL OR created_at < %(created_before)s)
   AND (%(started_after)s::timestamptz IS NULL OR started_at >= %(started_after)s)
   AND (%(started_before)s::timestamptz IS NULL OR started_at < %(started_before)s)
   AND {{like_text}}
   AND (%(stalled)s::boolean IS NULL OR (status = 'in_process' AND stalled_at IS NOT NULL) = %(stalled)s)

-- fragment: entry_no_window
-- A list page's keyset window on the entry number (list_operations, list_operations_desc).
(%(after_entry_no)s::bigint IS NULL OR entry_no > %(after_entry_no)s)
   AND (%(before_entry_no)s::bigint IS NULL OR entry_no < %(before_entry_no)s)

-- fragment: insert_new_operation
-- One new operation's row (store._sql.core.new_operation_params): insert_operation, and
-- PostgreSQL's one-statement enqueue (insert_operation_notify).
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
