-- Notifications: the inbox, rules, mutes, admins, channels, the outbox, deliveries.
-- Queries both dialects run alike, written once (see longops.store.queries and
-- store/README.md): psycopg's %(name)s placeholders; SQLite gets :name, a ::type cast right
-- after a placeholder is PostgreSQL's and is dropped there. {{fragment}} splices a
-- fragment (sql/common/fragments.sql or the dialect's queries.sql).

-- name: list_notifications
SELECT * FROM longops_notifications
 WHERE company = %(company)s AND user_name = %(user_name)s
   AND (NOT %(unread_only)s OR read_at IS NULL)
   AND (%(before_id)s::bigint IS NULL OR id < %(before_id)s)
 ORDER BY id DESC
 LIMIT %(limit)s;

-- name: count_unread_notifications
SELECT count(*) AS n FROM longops_notifications
 WHERE company = %(company)s AND user_name = %(user_name)s AND read_at IS NULL;

-- name: notifications_since
SELECT * FROM longops_notifications WHERE id > %(after_id)s ORDER BY id LIMIT %(limit)s;

-- name: last_notification_id
SELECT coalesce(max(id), 0) AS id FROM longops_notifications;

-- name: upsert_notify_rule
INSERT INTO longops_notify_rules (company, name, on_event, task, category, queue, user_name, recipients, enabled, created_at, threshold)
VALUES (%(company)s, %(name)s, %(on_event)s, %(task)s, %(category)s, %(queue)s, %(user_name)s, %(recipients)s::json, %(enabled)s, %(created_at)s, %(threshold)s)
ON CONFLICT (company, name) DO UPDATE
   SET on_event = excluded.on_event, task = excluded.task, category = excluded.category,
       queue = excluded.queue, user_name = excluded.user_name,
       recipients = excluded.recipients, enabled = excluded.enabled,
       threshold = excluded.threshold
RETURNING *;

-- name: delete_notify_rule
DELETE FROM longops_notify_rules WHERE company = %(company)s AND name = %(name)s RETURNING name;

-- name: list_notify_rules
SELECT * FROM longops_notify_rules WHERE company = %(company)s ORDER BY name;

-- name: add_notified_admin
INSERT INTO longops_notified_admins (company, user_name) VALUES (%(company)s, %(user_name)s)
ON CONFLICT DO NOTHING RETURNING user_name;

-- name: remove_notified_admin
DELETE FROM longops_notified_admins WHERE company = %(company)s AND user_name = %(user_name)s
RETURNING user_name;

-- name: list_notified_admins
SELECT user_name FROM longops_notified_admins WHERE company = %(company)s ORDER BY user_name;

-- name: upsert_notify_channel
INSERT INTO longops_notify_channels (company, name, url_secret, url_masked, url_schema, rate_limit, rate_window, created_at)
VALUES (%(company)s, %(name)s, %(url_secret)s, %(url_masked)s, %(url_schema)s, %(rate_limit)s, %(rate_window)s, %(created_at)s)
ON CONFLICT (company, name) DO UPDATE
   SET url_secret = excluded.url_secret, url_masked = excluded.url_masked,
       url_schema = excluded.url_schema, rate_limit = excluded.rate_limit,
       rate_window = excluded.rate_window
RETURNING company, name, url_masked, url_schema, rate_limit, rate_window, created_at;

-- name: delete_notify_channel
DELETE FROM longops_notify_channels WHERE company = %(company)s AND name = %(name)s RETURNING name;

-- name: list_notify_channels
SELECT company, name, url_masked, url_schema, rate_limit, rate_window, created_at
  FROM longops_notify_channels WHERE company = %(company)s ORDER BY name;

-- name: get_notify_channel_secret
SELECT url_secret, rate_limit, rate_window FROM longops_notify_channels
 WHERE company = %(company)s AND name = %(name)s;

-- name: pending_outbox
SELECT id, company, operation_id, event, at, rule_name FROM longops_notify_outbox
 WHERE expanded_at IS NULL ORDER BY id LIMIT %(limit)s;

-- name: mark_outbox_expanded
UPDATE longops_notify_outbox SET expanded_at = %(at)s WHERE id = %(id)s AND expanded_at IS NULL;

-- name: insert_delivery
INSERT INTO longops_notify_deliveries (outbox_id, company, operation_id, event, rule_name, recipient, idem_key, next_at, created_at)
VALUES (%(outbox_id)s, %(company)s, %(operation_id)s, %(event)s, %(rule_name)s, %(recipient)s, %(idem_key)s, %(at)s, %(at)s)
ON CONFLICT DO NOTHING;

-- name: finish_delivery
UPDATE longops_notify_deliveries
   SET status = %(status)s, next_at = %(next_at)s, last_error = %(error)s,
       attempts = attempts - %(uncharge)s,
       sent_at = %(sent_at)s, claim_token = NULL, locked_until = NULL
 WHERE id = %(id)s AND claim_token = %(claim_token)s AND status = 'pending'
RETURNING id;

-- name: insert_inbox_notification
INSERT INTO longops_notifications (company, user_name, operation_id, kind, title, created_at)
VALUES (%(company)s, %(user_name)s, %(operation_id)s, %(kind)s, %(title)s, %(at)s);

-- name: list_deliveries
SELECT * FROM longops_notify_deliveries
 WHERE company = %(company)s AND (%(status)s::text IS NULL OR status = %(status)s::text)
 ORDER BY id DESC LIMIT %(limit)s;

-- name: count_recent_sends
-- What a channel's rate limit counts: each send, a digest (its items share one sent_at) once.
SELECT (SELECT count(*) FROM longops_notify_deliveries
         WHERE company = %(company)s AND recipient = %(recipient)s
           AND status = 'sent' AND sent_at > %(since)s)
     + (SELECT count(DISTINCT sent_at) FROM longops_notify_deliveries
         WHERE company = %(company)s AND recipient = %(recipient)s
           AND status = 'digested' AND sent_at > %(since)s) AS n;

-- name: retry_delivery
UPDATE longops_notify_deliveries
   SET status = 'pending', attempts = 0, next_at = %(at)s, claim_token = NULL, locked_until = NULL
 WHERE company = %(company)s AND id = %(id)s AND status = 'dead'
RETURNING id;

-- name: list_watch_rules
-- The enabled rules whose conditions need a clock (the watch service).
SELECT * FROM longops_notify_rules
 WHERE enabled AND on_event IN ('running_long', 'waiting_long', 'milestone')
 ORDER BY company, name;

-- name: insert_watched
-- Once per dedup key: a condition still met at the next look is not told again.
INSERT INTO longops_notify_outbox (company, operation_id, event, at, rule_name, dedup)
VALUES (%(company)s, %(operation_id)s, %(event)s, %(at)s, %(rule_name)s, %(dedup)s)
ON CONFLICT DO NOTHING;

-- name: mute_rule
INSERT INTO longops_notify_mutes (company, user_name, rule_name)
VALUES (%(company)s, %(user_name)s, %(rule_name)s) ON CONFLICT DO NOTHING;

-- name: unmute_rule
DELETE FROM longops_notify_mutes
 WHERE company = %(company)s AND user_name = %(user_name)s AND rule_name = %(rule_name)s;

-- name: list_mutes
SELECT user_name, rule_name FROM longops_notify_mutes WHERE company = %(company)s
 ORDER BY user_name, rule_name;

-- name: deliveries_due
-- Whether a claim would find anything: a read, so an idle sender takes no write lock.
SELECT 1 AS due FROM longops_notify_deliveries
 WHERE status = 'pending' AND next_at <= %(now)s
   AND (locked_until IS NULL OR locked_until <= %(now)s)
 LIMIT 1;

-- name: set_user_contact
UPDATE longops_users SET email = %(email)s, notify_by_email = %(notify_by_email)s, updated_at = %(at)s
 WHERE name = %(name)s RETURNING name;

-- name: get_user_contact
SELECT email, notify_by_email FROM longops_users WHERE name = %(name)s;

-- name: email_recipients
SELECT name, email FROM longops_users
 WHERE notify_by_email = true AND email IS NOT NULL AND state = 'active' ORDER BY name;

-- name: clear_personal_email_channel
UPDATE longops_notify_channels SET personal_email = false
 WHERE company = %(company)s AND personal_email = true;

-- name: mark_personal_email_channel
UPDATE longops_notify_channels SET personal_email = true
 WHERE company = %(company)s AND name = %(name)s RETURNING name;

-- name: personal_email_channel
SELECT name FROM longops_notify_channels WHERE company = %(company)s AND personal_email = true;
