-- longops schema, version 6 (SQLite): notification rules, notified admins, outbound
-- channels, and the durable outbox with its deliveries.

-- A rule: on which event, for which operations (NULL filters match all), to whom. The
-- recipients are a JSON list of 'owner', 'admins', 'owner_or_admins', 'user:NAME' and
-- 'channel:NAME' (longops.domain.notify.Recipient).
CREATE TABLE longops_notify_rules (
    company       TEXT NOT NULL REFERENCES longops_companies (name),
    name          TEXT NOT NULL,
    on_event      TEXT NOT NULL CONSTRAINT notify_rule_event CHECK (on_event IN ('succeeded', 'failed', 'attempt_failed', 'cancelled', 'stalled', 'running_long', 'waiting_long', 'milestone')),
    task          TEXT,
    category      TEXT,
    queue         TEXT,
    user_name     TEXT,
    recipients    TEXT NOT NULL,
    -- running_long and waiting_long: minutes (running_long without it: longer than the
    -- task's usual, the p95 of its recent runs); milestone: a progress percentage.
    threshold     REAL CONSTRAINT notify_rule_threshold CHECK (threshold > 0),
    enabled       INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (company, name)
);

-- Business Central's Job Queue Notification Setup as a rule each company starts with:
-- a failure notifies the user who scheduled the operation, or the notified admins when
-- no user did.
INSERT INTO longops_notify_rules (company, name, on_event, recipients, created_at)
SELECT name, 'default', 'failed', '["owner_or_admins"]', strftime('%Y-%m-%d %H:%M:%f000', 'now') FROM longops_companies;

CREATE TRIGGER longops_notify_default_rule
AFTER INSERT ON longops_companies
BEGIN
    INSERT OR IGNORE INTO longops_notify_rules (company, name, on_event, recipients, created_at)
    VALUES (NEW.name, 'default', 'failed', '["owner_or_admins"]', NEW.created_at);
END;

-- Business Central's Job Queue Notified Admin: the users who count as the company's
-- job-queue admins for notifications.
CREATE TABLE longops_notified_admins (
    company       TEXT NOT NULL REFERENCES longops_companies (name),
    user_name     TEXT NOT NULL,
    PRIMARY KEY (company, user_name)
);

-- A person's preference: no in-app notification from this rule (Business Central's "Don't
-- show again" on a notification, per rule). Their own operations' endings still reach them.
CREATE TABLE longops_notify_mutes (
    company       TEXT NOT NULL REFERENCES longops_companies (name),
    user_name     TEXT NOT NULL,
    rule_name     TEXT NOT NULL,
    PRIMARY KEY (company, user_name, rule_name)
);

-- An outbound channel: an Apprise URL, encrypted (Fernet, key from LONGOPS_SECRET_KEY);
-- the schema and the masked form are kept apart so that lists never decrypt.
CREATE TABLE longops_notify_channels (
    company       TEXT NOT NULL REFERENCES longops_companies (name),
    name          TEXT NOT NULL,
    url_secret    TEXT NOT NULL,
    url_masked    TEXT NOT NULL,
    url_schema    TEXT NOT NULL,
    -- At most rate_limit sends per rate_window seconds; past it, one digest (NULL: no limit).
    rate_limit    INTEGER CONSTRAINT notify_channel_rate CHECK (rate_limit BETWEEN 1 AND 100000),
    rate_window   INTEGER NOT NULL DEFAULT 60 CONSTRAINT notify_channel_window CHECK (rate_window BETWEEN 1 AND 86400),
    created_at    TEXT NOT NULL,
    PRIMARY KEY (company, name)
);

-- The outbox: one row per event some rule of its company listens to, written by the
-- triggers below in the transaction of the change that caused it. The delivery service
-- expands each into one delivery per recipient (expanded_at).
CREATE TABLE longops_notify_outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    company       TEXT NOT NULL,
    operation_id  TEXT NOT NULL,
    event         TEXT NOT NULL,
    -- Written by the watch service for one rule's condition (running long, waiting long,
    -- a milestone): that rule only, once per dedup key (rule, operation, attempt).
    rule_name     TEXT,
    dedup         TEXT UNIQUE,
    at            TEXT NOT NULL,
    expanded_at   TEXT
);
CREATE INDEX longops_notify_outbox_pending ON longops_notify_outbox (id) WHERE expanded_at IS NULL;

-- One row per notification and recipient; (outbox_id, recipient) is unique, so expanding
-- twice (two services, a crash between) cannot make a second delivery, and idem_key (the
-- idempotency key webhooks receive) is derived from the same pair.
CREATE TABLE longops_notify_deliveries (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    outbox_id     INTEGER NOT NULL REFERENCES longops_notify_outbox (id) ON DELETE CASCADE,
    company       TEXT NOT NULL,
    operation_id  TEXT NOT NULL,
    event         TEXT NOT NULL,
    rule_name     TEXT NOT NULL,
    recipient     TEXT NOT NULL,
    idem_key      TEXT NOT NULL UNIQUE,
    status        TEXT NOT NULL DEFAULT 'pending' CONSTRAINT notify_delivery_status CHECK (status IN ('pending', 'sent', 'dead', 'digested')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at       TEXT NOT NULL,
    claim_token   TEXT,
    locked_until  TEXT,
    last_error    TEXT,
    created_at    TEXT NOT NULL,
    sent_at       TEXT,
    UNIQUE (outbox_id, recipient)
);
CREATE INDEX longops_notify_deliveries_due ON longops_notify_deliveries (next_at) WHERE status = 'pending';
CREATE INDEX longops_notify_deliveries_company ON longops_notify_deliveries (company, id);
-- The rate limit counts a channel's recent sends.
CREATE INDEX longops_notify_deliveries_sent ON longops_notify_deliveries (recipient, sent_at) WHERE status = 'sent';

-- An operation's ending (the same UPDATE of status the in-app inbox's trigger watches).
-- The EXISTS keeps the hot path free of rows no rule would read.
CREATE TRIGGER longops_notify_outbox_status
AFTER UPDATE OF status ON longops_operations
WHEN NEW.status IN ('finished', 'error', 'cancelled') AND OLD.status <> NEW.status
BEGIN
    INSERT INTO longops_notify_outbox (company, operation_id, event, at)
    SELECT NEW.company, NEW.id, k.kind, coalesce(NEW.ended_at, NEW.updated_at)
      FROM (SELECT CASE NEW.status WHEN 'finished' THEN 'succeeded' WHEN 'error' THEN 'failed' ELSE 'cancelled' END AS kind) k
     WHERE EXISTS (SELECT 1 FROM longops_notify_rules r
                    WHERE r.company = NEW.company AND r.on_event = k.kind AND r.enabled);
END;

-- A failed attempt that will be retried, and a stall: entries of the operation's timeline,
-- written in the transaction that ended the attempt or flagged the stall.
CREATE TRIGGER longops_notify_outbox_event
AFTER INSERT ON longops_operation_events
WHEN NEW.type = 'stalled'
     OR (NEW.type = 'attempt_ended' AND json_extract(NEW.data, '$.status') = 'ready'
         AND json_extract(NEW.data, '$.outcome') IN ('error', 'timeout', 'lost'))
BEGIN
    INSERT INTO longops_notify_outbox (company, operation_id, event, at)
    SELECT NEW.company, NEW.operation_id, k.kind, NEW.at
      FROM (SELECT CASE NEW.type WHEN 'stalled' THEN 'stalled' ELSE 'attempt_failed' END AS kind) k
     WHERE EXISTS (SELECT 1 FROM longops_notify_rules r
                    WHERE r.company = NEW.company AND r.on_event = k.kind AND r.enabled);
END;
