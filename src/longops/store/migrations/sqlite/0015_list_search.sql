-- longops: compatible
-- longops schema (SQLite): the Job Queue Entries list's sorts (issue 17). Only adds
-- indexes: compatible. The search has no index on SQLite (LIKE over the text: a scan, correct
-- but slower than PostgreSQL's trigram index); the sorts have the same indexes as there
-- (the expressions are SqliteStore.SORT_SQL's).
CREATE INDEX longops_operations_sort_description ON longops_operations
    (company, coalesce(nullif(description, ''), task), entry_no);
CREATE INDEX longops_operations_sort_priority ON longops_operations (company, priority, entry_no);
CREATE INDEX longops_operations_sort_user ON longops_operations
    (company, coalesce(user_name, ''), entry_no);
CREATE INDEX longops_operations_sort_start ON longops_operations (company, earliest_start_at, entry_no);
CREATE INDEX longops_operations_sort_ended ON longops_operations
    (company, coalesce(ended_at, '9999-12-31 23:59:59.999999'), entry_no);
