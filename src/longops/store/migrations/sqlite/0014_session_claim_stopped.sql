-- longops: compatible, online
-- longops schema (SQLite): a worker session says why it stopped claiming (see the
-- PostgreSQL migration); NULL: it claims.
ALTER TABLE longops_sessions ADD COLUMN claim_stopped TEXT;
