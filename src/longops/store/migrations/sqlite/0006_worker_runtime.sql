-- longops schema, version 6 (SQLite): what a worker checks and records at run time.
--
-- The peak resident memory of an attempt's child process, in bytes (process isolation
-- only; NULL for thread tasks and for runs whose child died before it could report).
ALTER TABLE longops_attempts ADD COLUMN peak_rss INTEGER
    CONSTRAINT attempt_peak_rss CHECK (peak_rss >= 0);

-- Who may still run what, for the claim's run-time check (claim_operations): one row per
-- active user and each permission set a task may require that one of their sets satisfies
-- in a company (VIEW < USER < ADMIN); a user without sets has one row of NULLs, and a SUPER
-- user satisfies every requirement everywhere (is_super).
CREATE VIEW longops_may_run AS
WITH satisfies (held, required) AS (
    VALUES ('JOBQUEUE-VIEW', 'JOBQUEUE-VIEW'),
           ('JOBQUEUE-USER', 'JOBQUEUE-VIEW'), ('JOBQUEUE-USER', 'JOBQUEUE-USER'),
           ('JOBQUEUE-ADMIN', 'JOBQUEUE-VIEW'), ('JOBQUEUE-ADMIN', 'JOBQUEUE-USER'),
           ('JOBQUEUE-ADMIN', 'JOBQUEUE-ADMIN')
)
SELECT u.name AS user_name, u.is_super, m.company, s.required
  FROM longops_users u
  LEFT JOIN longops_memberships m ON m.user_name = u.name
  LEFT JOIN satisfies s ON s.held = m.permission_set
 WHERE u.state = 'active';
