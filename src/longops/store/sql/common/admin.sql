-- Schema bookkeeping, companies, categories and paused queues.
-- Queries both dialects run alike, written once (see longops.store.queries and
-- store/README.md): psycopg's %(name)s placeholders; SQLite gets :name, a ::type cast right
-- after a placeholder is PostgreSQL's and is dropped there. {{fragment}} splices a
-- fragment (sql/common/fragments.sql or the dialect's queries.sql).

-- name: get_company
SELECT * FROM longops_companies WHERE name = %(name)s;

-- name: get_operation_by_entry_no
SELECT * FROM longops_operations
 WHERE entry_no = %(entry_no)s AND (%(company)s::text IS NULL OR company = %(company)s)
   AND {{in_companies}};

-- name: upsert_company
INSERT INTO longops_companies (name, display_name, time_zone, active, max_in_process)
VALUES (%(name)s, %(display_name)s, %(time_zone)s, %(active)s, %(max_in_process)s)
ON CONFLICT (name) DO UPDATE
   SET display_name = excluded.display_name, time_zone = excluded.time_zone,
       active = excluded.active, max_in_process = excluded.max_in_process
RETURNING *;

-- name: upsert_category
INSERT INTO longops_categories (company, code, description, max_concurrent, paused)
VALUES (%(company)s, %(code)s, %(description)s, %(max_concurrent)s, %(paused)s)
ON CONFLICT (company, code) DO UPDATE
   SET description = excluded.description,
       max_concurrent = excluded.max_concurrent,
       paused = excluded.paused
RETURNING *;

-- name: get_category
SELECT * FROM longops_categories WHERE company = %(company)s AND code = %(code)s;

-- name: list_categories
SELECT * FROM longops_categories WHERE company = %(company)s ORDER BY code;

-- name: pause_queue
INSERT INTO longops_paused_queues (name, paused_at) VALUES (%(name)s, %(at)s)
ON CONFLICT (name) DO NOTHING;

-- name: resume_queue
DELETE FROM longops_paused_queues WHERE name = %(name)s;

-- name: list_paused_queues
SELECT name FROM longops_paused_queues;

-- name: list_migrations
SELECT version, name, checksum FROM longops_migrations ORDER BY version;

-- name: record_migration
INSERT INTO longops_migrations (version, name, checksum) VALUES (%(version)s, %(name)s, %(checksum)s);

-- name: record_migration_flags
UPDATE longops_migrations SET flags = %(flags)s WHERE version = %(version)s;

-- name: list_migrations_flags
-- The schema guard's input: each applied migration with its declared flags (0012 on).
SELECT * FROM longops_migrations ORDER BY version;
