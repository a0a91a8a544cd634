-- longops: compatible
-- longops schema (PostgreSQL): the Job Queue Entries list's search and sorts at scale
-- (issue 17). Only adds indexes (and the trusted extension pg_trgm), so code of the version
-- before runs on it unchanged: compatible. Not online: building them on a large table
-- holds writes to longops_operations for the while (CREATE INDEX CONCURRENTLY cannot run
-- in a migration's transaction).
--
-- The search (fragment like_text): a substring of description, task and last error, as one
-- lower-cased text, through a trigram index (any substring of three characters or more).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX longops_operations_search ON longops_operations USING gin
    ((lower(coalesce(description, '') || ' ' || task || ' ' || coalesce(last_error, ''))) gin_trgm_ops);
-- The list's sorts (domain.filters.SortKey; the expressions are PostgresStore.SORT_SQL's),
-- per company, ties by entry number: a sorted page and the next one are index scans.
CREATE INDEX longops_operations_sort_description ON longops_operations
    (company, (coalesce(nullif(description, ''), task)), entry_no);
CREATE INDEX longops_operations_sort_priority ON longops_operations (company, priority, entry_no);
CREATE INDEX longops_operations_sort_user ON longops_operations
    (company, (coalesce(user_name, '')), entry_no);
CREATE INDEX longops_operations_sort_start ON longops_operations (company, earliest_start_at, entry_no);
CREATE INDEX longops_operations_sort_ended ON longops_operations
    (company, (coalesce(ended_at, 'infinity'::timestamptz)), entry_no);
CREATE INDEX longops_operations_sort_duration ON longops_operations
    (company, (coalesce((extract(epoch FROM ended_at - started_at) * 1000000)::bigint, 9223372036854775807)), entry_no);
