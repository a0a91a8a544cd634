"""Notifications: the inbox, rules, mutes, notified admins, channels, the outbox, deliveries."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from longops.domain.notify import Channel as NotifyChannel
from longops.domain.notify import (
    Delivery,
    DeliveryStatus,
    OutboxEntry,
    PlannedDelivery,
    Watched,
)
from longops.domain.notify import Event as NotifyEvent
from longops.domain.notify import Rule as NotifyRule
from longops.domain.notify import idem_key as notify_idem_key
from longops.domain.read_models import Notification
from longops.domain.users import (
    AuditEntry,
)
from longops.store._sql.core import Row, SqlCore

_DELIVERED = (DeliveryStatus.SENT, DeliveryStatus.DIGESTED)


class _NoSuchChannel(Exception):
    """Raised inside a transaction to undo it: the channel to mark does not exist."""


class NotificationsSql(SqlCore):
    def list_notifications(
        self,
        company: str,
        user: str,
        *,
        unread_only: bool = False,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[Notification]:
        rows = self._all(
            "list_notifications",
            {
                "company": company,
                "user_name": user,
                "unread_only": self.enc_bool(unread_only),
                "before_id": before_id,
                "limit": limit,
            },
        )
        return [self.notification(r) for r in rows]

    def count_unread_notifications(self, company: str, user: str) -> int:
        r = self._one("count_unread_notifications", {"company": company, "user_name": user})
        return 0 if r is None else int(r["n"])

    def mark_notifications_read(
        self, company: str, user: str, ids: Sequence[int] | None, at: datetime
    ) -> int:
        with self._tx() as cur:
            cur.execute(
                self.q["mark_notifications_read"],
                {
                    "company": company,
                    "user_name": user,
                    "ids": None if ids is None else self.enc_ids(ids),
                    "at": self.enc_ts(at),
                },
            )
            return int(cur.rowcount)

    def notifications_since(self, after_id: int, limit: int = 1000) -> list[Notification]:
        rows = self._all("notifications_since", {"after_id": after_id, "limit": limit})
        return [self.notification(r) for r in rows]

    def last_notification_id(self) -> int:
        r = self._one("last_notification_id")
        return 0 if r is None else int(r["id"])

    # -- notifications: rules, admins, channels, outbox, deliveries (migration 8) -----------
    def notify_rule(self, r: Row) -> NotifyRule:
        recipients = r["recipients"]
        if isinstance(recipients, str):
            recipients = json.loads(recipients)
        return NotifyRule(
            company=r["company"],
            name=r["name"],
            on=NotifyEvent(r["on_event"]),
            recipients=tuple(recipients),
            task=r["task"],
            category=r["category"],
            queue=r["queue"],
            user=r["user_name"],
            enabled=bool(r["enabled"]),
            created_at=self.dec_ts(r["created_at"]),
            threshold=None if r["threshold"] is None else float(r["threshold"]),
        )

    def upsert_notify_rule(
        self, rule: NotifyRule, *, audit: AuditEntry | None = None
    ) -> NotifyRule:
        r = self._write_audited(
            "upsert_notify_rule",
            {
                "company": rule.company,
                "name": rule.name,
                "on_event": rule.on.value,
                "task": rule.task,
                "category": rule.category,
                "queue": rule.queue,
                "user_name": rule.user,
                "recipients": json.dumps(list(rule.recipients)),
                "enabled": self.enc_bool(rule.enabled),
                "created_at": self.enc_ts(rule.created_at),
                "threshold": rule.threshold,
            },
            audit,
        )
        assert r is not None  # an upsert always returns its row
        return self.notify_rule(r)

    def set_notify_mute(
        self,
        company: str,
        user: str,
        rule: str,
        muted: bool,
        *,
        audit: AuditEntry | None = None,
    ) -> None:
        params = {"company": company, "user_name": user, "rule_name": rule}
        with self._tx() as cur:
            cur.execute(self.q["mute_rule" if muted else "unmute_rule"], params)
            self._audit(cur, audit)

    def set_user_contact(
        self,
        name: str,
        email: str | None,
        notify_by_email: bool,
        at: datetime,
        *,
        audit: AuditEntry | None = None,
    ) -> bool:
        params = {
            "name": name,
            "email": email,
            "notify_by_email": self.enc_bool(notify_by_email),
            "at": self.enc_ts(at),
        }
        return self._write_audited("set_user_contact", params, audit) is not None

    def get_user_contact(self, name: str) -> tuple[str | None, bool] | None:
        r = self._one("get_user_contact", {"name": name})
        return None if r is None else (r["email"], bool(r["notify_by_email"]))

    def email_recipients(self) -> dict[str, str]:
        return {str(r["name"]): str(r["email"]) for r in self._all("email_recipients")}

    def set_personal_email_channel(
        self, company: str, name: str | None, *, audit: AuditEntry | None = None
    ) -> bool:
        try:
            with self._tx() as cur:
                cur.execute(self.q["clear_personal_email_channel"], {"company": company})
                if name is not None:
                    cur.execute(
                        self.q["mark_personal_email_channel"], {"company": company, "name": name}
                    )
                    if cur.fetchone() is None:
                        raise _NoSuchChannel  # rolls the clearing back
                self._audit(cur, audit)
        except _NoSuchChannel:
            return False
        return True

    def personal_email_channel(self, company: str) -> str | None:
        r = self._one("personal_email_channel", {"company": company})
        return None if r is None else str(r["name"])

    def list_notify_mutes(self, company: str) -> set[tuple[str, str]]:
        rows = self._all("list_mutes", {"company": company})
        return {(str(r["user_name"]), str(r["rule_name"])) for r in rows}

    def list_watch_rules(self) -> list[NotifyRule]:
        return [self.notify_rule(r) for r in self._all("list_watch_rules")]

    def insert_watched(self, found: Sequence[Watched], at: datetime) -> int:
        """Write watched conditions to the outbox; one already told adds nothing."""
        added = 0
        with self._tx() as cur:
            for w in found:
                cur.execute(
                    self.q["insert_watched"],
                    {
                        "company": w.company,
                        "operation_id": self.enc_uuid(w.operation_id),
                        "event": w.event.value,
                        "at": self.enc_ts(at),
                        "rule_name": w.rule_name,
                        "dedup": w.dedup,
                    },
                )
                added += max(0, int(cur.rowcount))
        return added

    def delete_notify_rule(
        self, company: str, name: str, *, audit: AuditEntry | None = None
    ) -> bool:
        params = {"company": company, "name": name}
        return self._write_audited("delete_notify_rule", params, audit) is not None

    def list_notify_rules(self, company: str) -> list[NotifyRule]:
        return [self.notify_rule(r) for r in self._all("list_notify_rules", {"company": company})]

    def add_notified_admin(
        self, company: str, user: str, *, audit: AuditEntry | None = None
    ) -> bool:
        params = {"company": company, "user_name": user}
        return self._write_audited("add_notified_admin", params, audit) is not None

    def remove_notified_admin(
        self, company: str, user: str, *, audit: AuditEntry | None = None
    ) -> bool:
        params = {"company": company, "user_name": user}
        return self._write_audited("remove_notified_admin", params, audit) is not None

    def list_notified_admins(self, company: str) -> list[str]:
        rows = self._all("list_notified_admins", {"company": company})
        return [str(r["user_name"]) for r in rows]

    def notify_channel(self, r: Row) -> NotifyChannel:
        return NotifyChannel(
            company=r["company"],
            name=r["name"],
            url_masked=r["url_masked"],
            url_schema=r["url_schema"],
            created_at=self.dec_ts(r["created_at"]),
            rate_limit=r["rate_limit"],
            rate_window=int(r["rate_window"]),
        )

    def upsert_notify_channel(
        self, channel: NotifyChannel, url_secret: str, *, audit: AuditEntry | None = None
    ) -> NotifyChannel:
        r = self._write_audited(
            "upsert_notify_channel",
            {
                "company": channel.company,
                "name": channel.name,
                "url_secret": url_secret,
                "url_masked": channel.url_masked,
                "url_schema": channel.url_schema,
                "rate_limit": channel.rate_limit,
                "rate_window": channel.rate_window,
                "created_at": self.enc_ts(channel.created_at),
            },
            audit,
        )
        assert r is not None  # an upsert always returns its row
        return self.notify_channel(r)

    def delete_notify_channel(
        self, company: str, name: str, *, audit: AuditEntry | None = None
    ) -> bool:
        params = {"company": company, "name": name}
        return self._write_audited("delete_notify_channel", params, audit) is not None

    def list_notify_channels(self, company: str) -> list[NotifyChannel]:
        rows = self._all("list_notify_channels", {"company": company})
        return [self.notify_channel(r) for r in rows]

    def get_notify_channel_secret(
        self, company: str, name: str
    ) -> tuple[str, int | None, int] | None:
        r = self._one("get_notify_channel_secret", {"company": company, "name": name})
        if r is None:
            return None
        return str(r["url_secret"]), r["rate_limit"], int(r["rate_window"])

    def pending_outbox(self, limit: int = 100) -> list[OutboxEntry]:
        rows = self._all("pending_outbox", {"limit": limit})
        return [
            OutboxEntry(
                id=int(r["id"]),
                company=r["company"],
                operation_id=self.dec_uuid(r["operation_id"]),
                event=NotifyEvent(r["event"]),
                at=self.dec_ts(r["at"]),
                rule_name=r["rule_name"],
            )
            for r in rows
        ]

    def expand_outbox(
        self, entry: OutboxEntry, planned: Sequence[PlannedDelivery], at: datetime
    ) -> int:
        """Write one delivery per planned recipient and mark ``entry`` expanded: one
        transaction, and a second expansion of the same entry adds nothing (unique key)."""
        with self._tx() as cur:
            for p in planned:
                cur.execute(
                    self.q["insert_delivery"],
                    {
                        "outbox_id": entry.id,
                        "company": entry.company,
                        "operation_id": self.enc_uuid(entry.operation_id),
                        "event": entry.event.value,
                        "rule_name": p.rule_name,
                        "recipient": p.recipient,
                        "idem_key": self.enc_uuid(
                            notify_idem_key(entry.id, entry.operation_id, p.recipient)
                        ),
                        "at": self.enc_ts(at),
                    },
                )
            cur.execute(self.q["mark_outbox_expanded"], {"id": entry.id, "at": self.enc_ts(at)})
            return len(planned)

    def delivery(self, r: Row) -> Delivery:
        return Delivery(
            id=int(r["id"]),
            outbox_id=int(r["outbox_id"]),
            company=r["company"],
            operation_id=self.dec_uuid(r["operation_id"]),
            event=NotifyEvent(r["event"]),
            rule_name=r["rule_name"],
            recipient=r["recipient"],
            idem_key=self.dec_uuid(r["idem_key"]),
            status=DeliveryStatus(r["status"]),
            attempts=int(r["attempts"]),
            next_at=self.dec_ts(r["next_at"]),
            created_at=self.dec_ts(r["created_at"]),
            last_error=r["last_error"],
            sent_at=self.dec_ts_opt(r["sent_at"]),
            claim_token=self.dec_uuid_opt(r["claim_token"]),
        )

    def claim_deliveries(self, now: datetime, lease: timedelta, limit: int) -> list[Delivery]:
        """Take up to ``limit`` due deliveries for ``lease``; a sender that dies holds them
        no longer than that."""
        if self._one("deliveries_due", {"now": self.enc_ts(now)}) is None:
            return []  # idle: no write transaction
        with self._tx() as cur:
            cur.execute(
                self.q["claim_deliveries"],
                {
                    "claim_token": self.enc_uuid(uuid.uuid4()),
                    "until": self.enc_ts(now + lease),
                    "now": self.enc_ts(now),
                    "limit": limit,
                },
            )
            rows = list(cur.fetchall())
        return sorted((self.delivery(r) for r in rows), key=lambda d: d.id)

    def finish_delivery(
        self,
        delivery: Delivery,
        status: DeliveryStatus,
        at: datetime,
        *,
        next_at: datetime | None = None,
        error: str | None = None,
        inbox_title: str | None = None,
        uncharge: bool = False,
    ) -> bool:
        """Record how a claimed delivery went, under its claim token (a sender whose claim
        lapsed changes nothing). With ``inbox_title``, the in-app notification is written in
        the same transaction: an inbox delivery happens exactly once."""
        with self._tx() as cur:
            cur.execute(
                self.q["finish_delivery"],
                {
                    "id": delivery.id,
                    "claim_token": self.enc_uuid(delivery.claim_token),
                    "status": status.value,
                    "next_at": self.enc_ts(next_at or delivery.next_at),
                    "error": error,
                    "sent_at": self.enc_ts(at if status in _DELIVERED else None),
                    "uncharge": 1 if uncharge else 0,
                },
            )
            if cur.fetchone() is None:
                return False
            if inbox_title is not None:
                cur.execute(
                    self.q["insert_inbox_notification"],
                    {
                        "company": delivery.company,
                        "user_name": delivery.recipient.removeprefix("inbox:"),
                        "operation_id": self.enc_uuid(delivery.operation_id),
                        "kind": delivery.event.value,
                        "title": inbox_title,
                        "at": self.enc_ts(at),
                    },
                )
            return True

    def list_deliveries(
        self, company: str, *, status: DeliveryStatus | None = None, limit: int = 100
    ) -> list[Delivery]:
        rows = self._all(
            "list_deliveries",
            {
                "company": company,
                "status": None if status is None else status.value,
                "limit": limit,
            },
        )
        return [self.delivery(r) for r in rows]

    def count_recent_sends(self, company: str, recipient: str, since: datetime) -> int:
        r = self._one(
            "count_recent_sends",
            {"company": company, "recipient": recipient, "since": self.enc_ts(since)},
        )
        return 0 if r is None else int(r["n"])

    def retry_delivery(
        self, company: str, delivery_id: int, at: datetime, *, audit: AuditEntry | None = None
    ) -> bool:
        params = {"company": company, "id": delivery_id, "at": self.enc_ts(at)}
        return self._write_audited("retry_delivery", params, audit) is not None
