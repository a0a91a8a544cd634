-- The pages' read models: capped counts, running operations, log entries.
-- Queries both dialects run alike, written once (see longops.store.queries and
-- store/README.md): psycopg's %(name)s placeholders; SQLite gets :name, a ::type cast right
-- after a placeholder is PostgreSQL's and is dropped there. {{fragment}} splices a
-- fragment (sql/common/fragments.sql or the dialect's queries.sql).

-- name: count_operations_capped
-- The list's filter, counted no further than %(cap)s (facets and cues stop at "10,000+").
SELECT count(*) AS n FROM (
  SELECT 1 FROM {{listed_operations}} o
 WHERE {{operation_filter}}
 LIMIT %(cap)s
) capped;

-- name: count_operations_by_status_capped
-- The list's filter (no status) counted per status in one read of at most %(cap)s
-- operations: the facets of a narrow filter (a search) without one scan per status. The
-- caller counts per status with the queries here when the cap is reached.
SELECT status, count(*) AS n FROM (
  SELECT status FROM {{listed_operations}} o
 WHERE {{operation_filter}}
 LIMIT %(cap)s
) capped
 GROUP BY status;

-- name: count_operations_capped_status
-- The same, for one company and one status: plain equalities, so that SQLite, which does
-- not fold bound parameters, walks the (company, status, entry_no) index (PostgreSQL plans
-- either form alike).
SELECT count(*) AS n FROM (
  SELECT 1 FROM {{listed_operations}} o
 WHERE company = %(company)s AND status = %(status)s
   AND {{in_companies}}
   AND {{operation_details}}
 LIMIT %(cap)s
) capped;

-- name: list_running
-- Operations in process, the one that started first first (Overview's longest running, the
-- header's running operations, the Sessions page's current operations).
SELECT * FROM longops_operations
 WHERE status = 'in_process'
   AND (%(company)s::text IS NULL OR company = %(company)s)
   AND {{in_companies}}
   AND (%(user_name)s::text IS NULL OR user_name = %(user_name)s)
 ORDER BY started_at, entry_no
 LIMIT %(limit)s;

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
