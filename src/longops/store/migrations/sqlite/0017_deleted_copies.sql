-- longops: compatible, online
-- longops schema (SQLite): Undo after a Delete on the pages (issue 17). Only adds a table,
-- so code of the version before runs on it unchanged and it may be applied while workers
-- run.
--
-- A Delete that offers Undo keeps a copy of the operation's row (a JSON object of its
-- columns, as it was) until keep_until; Undo puts the row back as it was (same id, entry
-- number, status, arguments, result) when its deleter asks before then. The timeline stays
-- in longops_operation_events until the copy goes. Copies past keep_until are removed by
-- the next Delete or Undo (store: purge_deleted_copies) and by the pruner.
CREATE TABLE longops_deleted_operations (
    id          TEXT PRIMARY KEY,
    company     TEXT NOT NULL,
    entry_no    INTEGER NOT NULL,
    deleted_at  TEXT NOT NULL,
    keep_until  TEXT NOT NULL,
    deleted_by  TEXT,
    operation   TEXT NOT NULL
);
CREATE INDEX longops_deleted_operations_keep ON longops_deleted_operations (keep_until);
