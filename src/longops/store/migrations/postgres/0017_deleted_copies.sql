-- longops: compatible, online
-- longops schema (PostgreSQL): Undo after a Delete on the pages (issue 17). Only adds a
-- table, so code of the version before runs on it unchanged and it may be applied while
-- workers run.
--
-- A Delete that offers Undo keeps a copy of the operation's row (to_jsonb of the row, as it
-- was) until keep_until; Undo puts the row back as it was (same id, entry number, status,
-- arguments, result) when its deleter asks before then. The timeline stays in
-- longops_operation_events until the copy goes. Copies past keep_until are removed by the
-- next Delete or Undo (store: purge_deleted_copies) and by the pruner; nothing reads them.
CREATE TABLE longops_deleted_operations (
    id          uuid PRIMARY KEY,
    company     text NOT NULL,
    entry_no    bigint NOT NULL,
    deleted_at  timestamptz NOT NULL,
    keep_until  timestamptz NOT NULL,
    deleted_by  text,
    operation   jsonb NOT NULL
);
CREATE INDEX longops_deleted_operations_keep ON longops_deleted_operations (keep_until);

-- Row-level security (when enabled: store query enable_row_level_security), per company.
CREATE POLICY longops_scope ON longops_deleted_operations
    USING (longops_in_scope(company)) WITH CHECK (longops_in_scope(company));
