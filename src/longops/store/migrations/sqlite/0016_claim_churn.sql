-- longops: compatible
-- longops schema (SQLite): cheap row churn for the claim (issue 12, point 3). Only rebuilds
-- two indexes with a predicate: compatible.
--
-- The claim inserts the run's attempt with ended_at NULL (the finish sets it): the
-- indexes on its end only serve reads of ended attempts (prune_attempts, delete_attempts,
-- recent_durations, runs_per_hour: each compares ended_at or says IS NOT NULL, which is
-- how SQLite knows a partial index on `ended_at IS NOT NULL` serves them), so an attempt
-- in process stays out of them. PostgreSQL's 0016 also leaves running operations out of
-- the lists' indexes; SQLite does not need that: its UPDATE rewrites only the indexes
-- whose columns it sets, and the sort indexes (0015) hold no status, whereas a predicate
-- on status would make every claim and finish rewrite them.
DROP INDEX longops_attempts_ended;
CREATE INDEX longops_attempts_ended ON longops_attempts (ended_at) WHERE ended_at IS NOT NULL;
DROP INDEX longops_attempts_company_ended;
CREATE INDEX longops_attempts_company_ended ON longops_attempts (company, ended_at)
    WHERE ended_at IS NOT NULL;
