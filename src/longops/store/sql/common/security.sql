-- Users, grants, API tokens, the pages' sign-ins, the audit log, personal data.
-- Queries both dialects run alike, written once (see longops.store.queries and
-- store/README.md): psycopg's %(name)s placeholders; SQLite gets :name, a ::type cast right
-- after a placeholder is PostgreSQL's and is dropped there. {{fragment}} splices a
-- fragment (sql/common/fragments.sql or the dialect's queries.sql).

-- name: insert_audit
INSERT INTO longops_audit_log (company, at, actor, front_end, action, target, details)
VALUES (%(company)s, %(at)s, %(actor)s, %(front_end)s, %(action)s, %(target)s, %(details)s);

-- name: insert_user
INSERT INTO longops_users (name, display_name, password_hash, state, is_super, created_at, updated_at)
VALUES (%(name)s, %(display_name)s, %(password_hash)s, %(state)s, %(is_super)s, %(created_at)s, %(created_at)s)
ON CONFLICT (name) DO NOTHING
RETURNING name;

-- name: get_user
SELECT name, display_name, state, is_super, created_at, disabled_at,
       password_hash IS NOT NULL AS has_password
  FROM longops_users WHERE name = %(name)s;

-- name: list_users
SELECT name, display_name, state, is_super, created_at, disabled_at,
       password_hash IS NOT NULL AS has_password
  FROM longops_users ORDER BY name;

-- name: list_memberships
SELECT user_name, company, permission_set FROM longops_memberships
 WHERE %(name)s::text IS NULL OR user_name = %(name)s
 ORDER BY user_name, company, permission_set;

-- name: get_password_hash
SELECT password_hash FROM longops_users WHERE name = %(name)s;

-- name: set_password_hash
UPDATE longops_users SET password_hash = %(password_hash)s, updated_at = %(at)s
 WHERE name = %(name)s
RETURNING name;

-- name: set_user_state
UPDATE longops_users SET state = %(state)s, updated_at = %(at)s,
       disabled_at = CASE WHEN %(state)s = 'disabled' THEN %(at)s ELSE NULL END
 WHERE name = %(name)s
RETURNING name;

-- name: set_user_super
UPDATE longops_users SET is_super = %(is_super)s, updated_at = %(at)s
 WHERE name = %(name)s
RETURNING name;

-- name: delete_user
DELETE FROM longops_users WHERE name = %(name)s RETURNING name;

-- name: insert_membership
INSERT INTO longops_memberships (user_name, company, permission_set, granted_at)
VALUES (%(name)s, %(company)s, %(permission_set)s, %(at)s)
ON CONFLICT DO NOTHING
RETURNING user_name;

-- name: delete_membership
DELETE FROM longops_memberships
 WHERE user_name = %(name)s AND company = %(company)s AND permission_set = %(permission_set)s
RETURNING user_name;

-- name: insert_token
INSERT INTO longops_api_tokens (id, user_name, name, token_hash, created_at, expires_at)
VALUES (%(id)s, %(user_name)s, %(name)s, %(token_hash)s, %(created_at)s, %(expires_at)s)
ON CONFLICT (user_name, name) WHERE revoked_at IS NULL DO NOTHING
RETURNING id;

-- name: get_token
SELECT t.*, u.state AS user_state
  FROM longops_api_tokens t JOIN longops_users u ON u.name = t.user_name
 WHERE t.id = %(id)s;

-- name: get_token_user
-- The user a token belongs to (as get_user reads it), keyed by the token.
SELECT u.name, u.display_name, u.state, u.is_super, u.created_at, u.disabled_at,
       u.password_hash IS NOT NULL AS has_password
  FROM longops_api_tokens t JOIN longops_users u ON u.name = t.user_name
 WHERE t.id = %(id)s;

-- name: list_token_memberships
SELECT m.user_name, m.company, m.permission_set
  FROM longops_api_tokens t JOIN longops_memberships m ON m.user_name = t.user_name
 WHERE t.id = %(id)s
 ORDER BY m.user_name, m.company, m.permission_set;

-- name: touch_token
-- At most one write per token per interval, however often it is used.
UPDATE longops_api_tokens SET last_used_at = %(at)s
 WHERE id = %(id)s AND (last_used_at IS NULL OR last_used_at < %(not_since)s);

-- name: list_tokens
SELECT * FROM longops_api_tokens WHERE user_name = %(user_name)s ORDER BY created_at, name;

-- name: revoke_token
UPDATE longops_api_tokens SET revoked_at = %(at)s
 WHERE id = %(id)s AND revoked_at IS NULL
RETURNING id;

-- name: personal_operations
SELECT * FROM longops_operations
 WHERE user_name = %(name)s OR cancel_requested_by = %(name)s
 ORDER BY entry_no;

-- name: personal_attempts
SELECT * FROM longops_attempts WHERE user_name = %(name)s ORDER BY entry_no;

-- name: personal_audit
SELECT * FROM longops_audit_log WHERE actor = %(name)s OR target = %(target)s ORDER BY id;

-- name: forget_operations
UPDATE longops_operations SET
    user_name = CASE WHEN user_name = %(name)s THEN %(pseudonym)s ELSE user_name END,
    cancel_requested_by = CASE WHEN cancel_requested_by = %(name)s THEN %(pseudonym)s ELSE cancel_requested_by END
 WHERE user_name = %(name)s OR cancel_requested_by = %(name)s;

-- name: forget_attempts
UPDATE longops_attempts SET user_name = %(pseudonym)s WHERE user_name = %(name)s;

-- name: forget_audit
UPDATE longops_audit_log SET
    actor = CASE WHEN actor = %(name)s THEN %(pseudonym)s ELSE actor END,
    target = CASE WHEN target = %(target)s THEN %(pseudonym_target)s ELSE target END
 WHERE actor = %(name)s OR target = %(target)s;

-- name: personal_notifications
SELECT * FROM longops_notifications WHERE user_name = %(name)s ORDER BY id;

-- name: forget_notifications
UPDATE longops_notifications SET user_name = %(pseudonym)s WHERE user_name = %(name)s;

-- name: insert_web_session
INSERT INTO longops_web_sessions (id, user_name, secret_hash, created_at, last_seen_at, expires_at, client)
VALUES (%(id)s, %(user_name)s, %(secret_hash)s, %(created_at)s, %(created_at)s, %(expires_at)s, %(client)s)
RETURNING id;

-- name: get_web_session
SELECT s.*, u.state AS user_state
  FROM longops_web_sessions s JOIN longops_users u ON u.name = s.user_name
 WHERE s.id = %(id)s;

-- name: get_web_session_user
-- The user a web session belongs to (as get_user reads it), keyed by the session.
SELECT u.name, u.display_name, u.state, u.is_super, u.created_at, u.disabled_at,
       u.password_hash IS NOT NULL AS has_password
  FROM longops_web_sessions s JOIN longops_users u ON u.name = s.user_name
 WHERE s.id = %(id)s;

-- name: list_web_session_memberships
SELECT m.user_name, m.company, m.permission_set
  FROM longops_web_sessions s JOIN longops_memberships m ON m.user_name = s.user_name
 WHERE s.id = %(id)s
 ORDER BY m.user_name, m.company, m.permission_set;

-- name: touch_web_session
-- At most one write per session per interval, however many pages it reads.
UPDATE longops_web_sessions SET last_seen_at = %(at)s
 WHERE id = %(id)s AND last_seen_at < %(not_since)s AND revoked_at IS NULL;

-- name: list_web_sessions
SELECT * FROM longops_web_sessions WHERE user_name = %(user_name)s ORDER BY created_at DESC, id;

-- name: revoke_web_sessions
-- One session (id given) or every live one of the user (not yet past its absolute end).
UPDATE longops_web_sessions SET revoked_at = %(at)s
 WHERE user_name = %(user_name)s AND revoked_at IS NULL AND expires_at > %(at)s
   AND (%(id)s::uuid IS NULL OR id = %(id)s::uuid)
RETURNING id;
