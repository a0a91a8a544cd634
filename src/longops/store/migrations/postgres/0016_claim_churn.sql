-- longops: compatible
-- longops schema (PostgreSQL): cheap row churn for the claim (issue 12, point 3). Only
-- rebuilds indexes with a narrower predicate, so code of the version before runs on it
-- unchanged (its list reads cannot use these indexes for running operations: slower pages,
-- same rows): compatible. Not online: building them on a large table holds writes to
-- longops_operations and longops_attempts for the while.
--
-- A claim (ready -> in_process) changes status, an indexed column, so its new row version
-- is never HOT: it enters every index whose predicate it meets. The lists' and counts'
-- indexes (filters, sorts, search) had no predicate on status, so each claim wrote a new
-- entry into nine of them (eleven with a category and a user; migration 0015's seven alone
-- cost +35 % server CPU per operation, benchmarks/results/drain-ab.list-indexes.md), and
-- the finish into them again. Here they leave running operations out (status <>
-- 'in_process'): a claim's row version enters only the primary key, the entry number's
-- key and longops_operations_running (longops_operations_busy too when it has a
-- category): 3 entries, not 12. The lists and counts read the running operations, few by
-- nature (at most the workers' slots), in a second branch on status = 'in_process' (the
-- list queries and the fragment listed_operations, sql/postgres/queries.sql): each
-- branch's own predicate lets it use its indexes, under generic plans too. An index added
-- later for the lists (a filter, a sort) should carry the same predicate.
DROP INDEX longops_operations_company_status;
CREATE INDEX longops_operations_company_status ON longops_operations (company, status, entry_no)
    WHERE status <> 'in_process';
DROP INDEX longops_operations_task_status;
CREATE INDEX longops_operations_task_status ON longops_operations (company, task, status, entry_no)
    WHERE status <> 'in_process';
DROP INDEX longops_operations_category_status;
CREATE INDEX longops_operations_category_status ON longops_operations (company, category, status, entry_no)
    WHERE category IS NOT NULL AND status <> 'in_process';
DROP INDEX longops_operations_user_status;
CREATE INDEX longops_operations_user_status ON longops_operations (company, user_name, status, entry_no)
    WHERE user_name IS NOT NULL AND status <> 'in_process';
DROP INDEX longops_operations_search;
CREATE INDEX longops_operations_search ON longops_operations USING gin
    ((lower(coalesce(description, '') || ' ' || task || ' ' || coalesce(last_error, ''))) gin_trgm_ops)
    WHERE status <> 'in_process';
DROP INDEX longops_operations_sort_description;
CREATE INDEX longops_operations_sort_description ON longops_operations
    (company, (coalesce(nullif(description, ''), task)), entry_no)
    WHERE status <> 'in_process';
DROP INDEX longops_operations_sort_priority;
CREATE INDEX longops_operations_sort_priority ON longops_operations (company, priority, entry_no)
    WHERE status <> 'in_process';
DROP INDEX longops_operations_sort_user;
CREATE INDEX longops_operations_sort_user ON longops_operations
    (company, (coalesce(user_name, '')), entry_no)
    WHERE status <> 'in_process';
DROP INDEX longops_operations_sort_start;
CREATE INDEX longops_operations_sort_start ON longops_operations (company, earliest_start_at, entry_no)
    WHERE status <> 'in_process';
DROP INDEX longops_operations_sort_ended;
CREATE INDEX longops_operations_sort_ended ON longops_operations
    (company, (coalesce(ended_at, 'infinity'::timestamptz)), entry_no)
    WHERE status <> 'in_process';
DROP INDEX longops_operations_sort_duration;
CREATE INDEX longops_operations_sort_duration ON longops_operations
    (company, (coalesce((extract(epoch FROM ended_at - started_at) * 1000000)::bigint, 9223372036854775807)), entry_no)
    WHERE status <> 'in_process';
--
-- The claim also inserts the run's attempt (ended_at NULL until the finish sets it): the
-- indexes on its end only serve reads of ended attempts (prune_attempts, delete_attempts,
-- recent_durations, runs_per_hour: each compares ended_at or says IS NOT NULL), so an
-- attempt in process stays out of them.
DROP INDEX longops_attempts_ended;
CREATE INDEX longops_attempts_ended ON longops_attempts (ended_at) WHERE ended_at IS NOT NULL;
DROP INDEX longops_attempts_company_ended;
CREATE INDEX longops_attempts_company_ended ON longops_attempts (company, ended_at)
    WHERE ended_at IS NOT NULL;
