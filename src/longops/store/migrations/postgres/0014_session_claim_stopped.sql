-- longops: compatible, online
-- longops schema (PostgreSQL): a worker session says when and why it stopped claiming (the
-- schema guard on an incompatible newer schema), so `longops sessions`, the Sessions page
-- and the wait reason of the operations it would run show it, not only the worker's log.
-- NULL: it claims. Older code never reads it: compatible, and online (a nullable column).
ALTER TABLE longops_sessions ADD COLUMN claim_stopped text;
