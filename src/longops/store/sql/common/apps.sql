-- Apps (issue 15): the app registry, its tasks, uninstall and export.
-- Queries both dialects run alike, written once (see longops.store.queries and
-- store/README.md): psycopg's %(name)s placeholders; SQLite gets :name, a ::type cast right
-- after a placeholder is PostgreSQL's and is dropped there. {{fragment}} splices a
-- fragment (sql/common/fragments.sql or the dialect's queries.sql).

-- name: upsert_app
INSERT INTO longops_apps (name, version, seen_at) VALUES (%(app)s, %(version)s, %(at)s)
ON CONFLICT (name) DO UPDATE
   SET version = excluded.version, seen_at = excluded.seen_at,
       uninstalled_at = NULL, purge_at = NULL;

-- name: insert_app_task
INSERT INTO longops_app_tasks (app, task, worker_wait_seconds) VALUES (%(app)s, %(task)s, %(wait)s)
ON CONFLICT (app, task) DO UPDATE SET worker_wait_seconds = excluded.worker_wait_seconds;

-- name: list_apps
SELECT * FROM longops_apps ORDER BY name;

-- name: get_app
SELECT * FROM longops_apps WHERE name = %(app)s;

-- name: list_app_tasks
SELECT * FROM longops_app_tasks ORDER BY app, task;

-- name: mark_app_uninstalled
UPDATE longops_apps SET uninstalled_at = coalesce(%(at)s, uninstalled_at),
       purge_at = coalesce(%(purge_at)s, purge_at)
 WHERE name = %(app)s;

-- name: mark_app_exported
UPDATE longops_apps SET exported_at = %(at)s WHERE name = %(app)s;
