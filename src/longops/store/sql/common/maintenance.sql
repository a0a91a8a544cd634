-- Maintenance mode (domain/maintenance.py, store/_sql/maintenance.py): one row, id 1.
-- Queries both dialects run alike, written once (see longops.store.queries and
-- store/README.md): psycopg's %(name)s placeholders; SQLite gets :name, a ::type cast right
-- after a placeholder is PostgreSQL's and is dropped there.

-- name: get_maintenance
SELECT * FROM longops_maintenance WHERE id = 1;

-- name: start_maintenance
UPDATE longops_maintenance
   SET active = true, reason = %(reason)s, drain_timeout = %(drain_timeout)s,
       started_at = %(at)s, stopped_at = NULL
 WHERE id = 1 AND NOT active
RETURNING *;

-- name: stop_maintenance
UPDATE longops_maintenance SET active = false, stopped_at = %(at)s
 WHERE id = 1 AND active
RETURNING *;
