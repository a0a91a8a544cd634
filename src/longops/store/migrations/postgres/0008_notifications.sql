-- longops schema, version 6 (PostgreSQL): notification rules, notified admins, outbound
-- channels, and the durable outbox with its deliveries.

-- A rule: on which event, for which operations (NULL filters match all), to whom. The
-- recipients are a JSON list of 'owner', 'admins', 'owner_or_admins', 'user:NAME' and
-- 'channel:NAME' (longops.domain.notify.Recipient).
CREATE TABLE longops_notify_rules (
    company       text NOT NULL REFERENCES longops_companies (name),
    name          text NOT NULL,
    on_event      text NOT NULL CONSTRAINT notify_rule_event CHECK (on_event IN ('succeeded', 'failed', 'attempt_failed', 'cancelled', 'stalled', 'running_long', 'waiting_long', 'milestone')),
    task          text,
    category      text,
    queue         text,
    user_name     text,
    recipients    json NOT NULL,
    -- running_long and waiting_long: minutes (running_long without it: longer than the
    -- task's usual, the p95 of its recent runs); milestone: a progress percentage.
    threshold     double precision CONSTRAINT notify_rule_threshold CHECK (threshold > 0),
    enabled       boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (company, name)
);

-- Business Central's Job Queue Notification Setup as a rule each company starts with:
-- a failure notifies the user who scheduled the operation, or the notified admins when
-- no user did.
INSERT INTO longops_notify_rules (company, name, on_event, recipients, created_at)
SELECT name, 'default', 'failed', '["owner_or_admins"]', now() FROM longops_companies;

CREATE FUNCTION longops_notify_default_rule() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO longops_notify_rules (company, name, on_event, recipients, created_at)
    VALUES (NEW.name, 'default', 'failed', '["owner_or_admins"]', NEW.created_at)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER longops_notify_default_rule
    AFTER INSERT ON longops_companies
    FOR EACH ROW EXECUTE FUNCTION longops_notify_default_rule();

-- Business Central's Job Queue Notified Admin: the users who count as the company's
-- job-queue admins for notifications.
CREATE TABLE longops_notified_admins (
    company       text NOT NULL REFERENCES longops_companies (name),
    user_name     text NOT NULL,
    PRIMARY KEY (company, user_name)
);

-- A person's preference: no in-app notification from this rule (Business Central's "Don't
-- show again" on a notification, per rule). Their own operations' endings still reach them.
CREATE TABLE longops_notify_mutes (
    company       text NOT NULL REFERENCES longops_companies (name),
    user_name     text NOT NULL,
    rule_name     text NOT NULL,
    PRIMARY KEY (company, user_name, rule_name)
);

-- An outbound channel: an Apprise URL, encrypted (Fernet, key from LONGOPS_SECRET_KEY);
-- the schema and the masked form are kept apart so that lists never decrypt.
CREATE TABLE longops_notify_channels (
    company       text NOT NULL REFERENCES longops_companies (name),
    name          text NOT NULL,
    url_secret    text NOT NULL,
    url_masked    text NOT NULL,
    url_schema    text NOT NULL,
    -- At most rate_limit sends per rate_window seconds; past it, one digest (NULL: no limit).
    rate_limit    integer CONSTRAINT notify_channel_rate CHECK (rate_limit BETWEEN 1 AND 100000),
    rate_window   integer NOT NULL DEFAULT 60 CONSTRAINT notify_channel_window CHECK (rate_window BETWEEN 1 AND 86400),
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (company, name)
);

-- The outbox: one row per event some rule of its company listens to, written by the
-- triggers below in the transaction of the change that caused it. The delivery service
-- expands each into one delivery per recipient (expanded_at).
CREATE TABLE longops_notify_outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company       text NOT NULL,
    operation_id  uuid NOT NULL,
    event         text NOT NULL,
    -- Written by the watch service for one rule's condition (running long, waiting long,
    -- a milestone): that rule only, once per dedup key (rule, operation, attempt).
    rule_name     text,
    dedup         text UNIQUE,
    at            timestamptz NOT NULL,
    expanded_at   timestamptz
);
CREATE INDEX longops_notify_outbox_pending ON longops_notify_outbox (id) WHERE expanded_at IS NULL;

-- One row per notification and recipient; (outbox_id, recipient) is unique, so expanding
-- twice (two services, a crash between) cannot make a second delivery, and idem_key (the
-- idempotency key webhooks receive) is derived from the same pair.
CREATE TABLE longops_notify_deliveries (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    outbox_id     bigint NOT NULL REFERENCES longops_notify_outbox (id) ON DELETE CASCADE,
    company       text NOT NULL,
    operation_id  uuid NOT NULL,
    event         text NOT NULL,
    rule_name     text NOT NULL,
    recipient     text NOT NULL,
    idem_key      uuid NOT NULL UNIQUE,
    status        text NOT NULL DEFAULT 'pending' CONSTRAINT notify_delivery_status CHECK (status IN ('pending', 'sent', 'dead', 'digested')),
    attempts      integer NOT NULL DEFAULT 0,
    next_at       timestamptz NOT NULL,
    claim_token   uuid,
    locked_until  timestamptz,
    last_error    text,
    created_at    timestamptz NOT NULL,
    sent_at       timestamptz,
    UNIQUE (outbox_id, recipient)
);
CREATE INDEX longops_notify_deliveries_due ON longops_notify_deliveries (next_at) WHERE status = 'pending';
CREATE INDEX longops_notify_deliveries_company ON longops_notify_deliveries (company, id);
-- The rate limit counts a channel's recent sends.
CREATE INDEX longops_notify_deliveries_sent ON longops_notify_deliveries (recipient, sent_at) WHERE status = 'sent';

-- An operation's ending (the same UPDATE of status the in-app inbox's trigger watches).
-- The EXISTS keeps the hot path free of rows no rule would read.
CREATE FUNCTION longops_notify_outbox_status() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    kind text := CASE NEW.status WHEN 'finished' THEN 'succeeded' WHEN 'error' THEN 'failed' ELSE 'cancelled' END;
BEGIN
    INSERT INTO longops_notify_outbox (company, operation_id, event, at)
    SELECT NEW.company, NEW.id, kind, coalesce(NEW.ended_at, NEW.updated_at)
     WHERE EXISTS (SELECT 1 FROM longops_notify_rules r
                    WHERE r.company = NEW.company AND r.on_event = kind AND r.enabled);
    RETURN NULL;
END
$$;

CREATE TRIGGER longops_notify_outbox_status
    AFTER UPDATE OF status ON longops_operations
    FOR EACH ROW
    WHEN (NEW.status IN ('finished', 'error', 'cancelled') AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION longops_notify_outbox_status();

-- A failed attempt that will be retried, and a stall: entries of the operation's timeline,
-- written in the transaction that ended the attempt or flagged the stall.
CREATE FUNCTION longops_notify_outbox_event() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    kind text := CASE NEW.type WHEN 'stalled' THEN 'stalled' ELSE 'attempt_failed' END;
BEGIN
    INSERT INTO longops_notify_outbox (company, operation_id, event, at)
    SELECT NEW.company, NEW.operation_id, kind, NEW.at
     WHERE EXISTS (SELECT 1 FROM longops_notify_rules r
                    WHERE r.company = NEW.company AND r.on_event = kind AND r.enabled);
    RETURN NULL;
END
$$;

CREATE TRIGGER longops_notify_outbox_event
    AFTER INSERT ON longops_operation_events
    FOR EACH ROW
    WHEN (NEW.type = 'stalled'
          OR (NEW.type = 'attempt_ended' AND NEW.data->>'status' = 'ready'
              AND NEW.data->>'outcome' IN ('error', 'timeout', 'lost')))
    EXECUTE FUNCTION longops_notify_outbox_event();

CREATE POLICY longops_scope ON longops_notify_rules
    USING (longops_in_scope(company)) WITH CHECK (longops_in_scope(company));
CREATE POLICY longops_scope ON longops_notified_admins
    USING (longops_in_scope(company)) WITH CHECK (longops_in_scope(company));
CREATE POLICY longops_scope ON longops_notify_channels
    USING (longops_in_scope(company)) WITH CHECK (longops_in_scope(company));
CREATE POLICY longops_scope ON longops_notify_outbox
    USING (longops_in_scope(company)) WITH CHECK (longops_in_scope(company));
CREATE POLICY longops_scope ON longops_notify_mutes
    USING (longops_in_scope(company)) WITH CHECK (longops_in_scope(company));
CREATE POLICY longops_scope ON longops_notify_deliveries
    USING (longops_in_scope(company)) WITH CHECK (longops_in_scope(company));
