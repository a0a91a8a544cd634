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
