"""What a store keeps for notifications: the inbox, rules and mutes, contacts, notified
admins, channels, the outbox and its deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from longops.domain.notify import Channel as NotifyChannel
from longops.domain.notify import (
    Delivery,
    DeliveryStatus,
    OutboxEntry,
    PlannedDelivery,
    Watched,
)
from longops.domain.notify import Rule as NotifyRule
from longops.domain.read_models import Notification
from longops.domain.users import AuditEntry


class NotificationStore(Protocol):
    """Notifications from the rule to the delivery, and each user's inbox."""

    def list_notifications(
        self,
        company: str,
        user: str,
        *,
        unread_only: bool = False,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[Notification]:
        """A user's inbox in a company, newest first."""
        ...

    def count_unread_notifications(self, company: str, user: str) -> int: ...
    def mark_notifications_read(
        self, company: str, user: str, ids: Sequence[int] | None, at: datetime
    ) -> int:
        """Mark the user's unread notifications (those of ``ids``; None: all) read."""
        ...

    def notifications_since(self, after_id: int, limit: int = 1000) -> list[Notification]:
        """Every notification after ``after_id``, in id order (the pages' toasts)."""
        ...

    def last_notification_id(self) -> int: ...
    def upsert_notify_rule(
        self, rule: NotifyRule, *, audit: AuditEntry | None = None
    ) -> NotifyRule: ...
    def delete_notify_rule(
        self, company: str, name: str, *, audit: AuditEntry | None = None
    ) -> bool: ...
    def list_notify_rules(self, company: str) -> list[NotifyRule]: ...
    def set_notify_mute(
        self,
        company: str,
        user: str,
        rule: str,
        muted: bool,
        *,
        audit: AuditEntry | None = None,
    ) -> None: ...
    def set_user_contact(
        self,
        name: str,
        email: str | None,
        notify_by_email: bool,
        at: datetime,
        *,
        audit: AuditEntry | None = None,
    ) -> bool:
        """A user's email address and choice (in-app only, or also email); False: no user."""
        ...

    def get_user_contact(self, name: str) -> tuple[str | None, bool] | None:
        """(email, notify_by_email) of a user, None when there is no such user."""
        ...

    def email_recipients(self) -> dict[str, str]:
        """Active users who chose "also email" and have an address: name -> address."""
        ...

    def set_personal_email_channel(
        self, company: str, name: str | None, *, audit: AuditEntry | None = None
    ) -> bool:
        """Make ``name`` the company's channel for people's own email (None: no channel);
        False when there is no such channel."""
        ...

    def personal_email_channel(self, company: str) -> str | None: ...
    def list_notify_mutes(self, company: str) -> set[tuple[str, str]]:
        """(user, rule) pairs: who muted which rule in ``company``."""
        ...

    def list_watch_rules(self) -> list[NotifyRule]:
        """Every company's enabled rules that watch a condition (running long...)."""
        ...

    def insert_watched(self, found: Sequence[Watched], at: datetime) -> int: ...
    def add_notified_admin(
        self, company: str, user: str, *, audit: AuditEntry | None = None
    ) -> bool: ...
    def remove_notified_admin(
        self, company: str, user: str, *, audit: AuditEntry | None = None
    ) -> bool: ...
    def list_notified_admins(self, company: str) -> list[str]: ...
    def upsert_notify_channel(
        self, channel: NotifyChannel, url_secret: str, *, audit: AuditEntry | None = None
    ) -> NotifyChannel: ...
    def delete_notify_channel(
        self, company: str, name: str, *, audit: AuditEntry | None = None
    ) -> bool: ...
    def list_notify_channels(self, company: str) -> list[NotifyChannel]: ...
    def get_notify_channel_secret(
        self, company: str, name: str
    ) -> tuple[str, int | None, int] | None:
        """The encrypted URL, rate limit and window of a channel (None: no such channel)."""
        ...

    def pending_outbox(self, limit: int = 100) -> list[OutboxEntry]: ...
    def expand_outbox(
        self, entry: OutboxEntry, planned: Sequence[PlannedDelivery], at: datetime
    ) -> int: ...
    def claim_deliveries(self, now: datetime, lease: timedelta, limit: int) -> list[Delivery]: ...
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
    ) -> bool: ...
    def list_deliveries(
        self, company: str, *, status: DeliveryStatus | None = None, limit: int = 100
    ) -> list[Delivery]: ...
    def count_recent_sends(self, company: str, recipient: str, since: datetime) -> int: ...
    def retry_delivery(
        self, company: str, delivery_id: int, at: datetime, *, audit: AuditEntry | None = None
    ) -> bool: ...
