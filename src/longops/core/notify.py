"""The notification setup of a company: rules, notified admins, channels, the delivery log.

Business Central's *Job Queue Notification Setup* and *Job Queue Notified Admin*, for the
company's JOBQUEUE-ADMINs (``list_notification_setup``, ``set_notification_setup``). Every
change is audited in the same transaction. A channel's URL is encrypted before it reaches
the store and is never returned, logged or repeated in an error: people see its masked form.

Example::

    setup = NotificationSetupService(store, clock, actor=Actor.local(), secret_key=key)
    setup.add_channel("CRONUS", "ops", "json://127.0.0.1:8080/hook")
    setup.add_rule("CRONUS", "failures", on="failed", to=["channel:ops", "admins"])
    setup.add_admin("CRONUS", "ann")
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from longops.core.access import ActorBound, acting, require, require_in
from longops.domain.clock import Clock
from longops.domain.errors import NotFound, ValidationError
from longops.domain.notify import (
    Channel,
    Delivery,
    DeliveryStatus,
    Event,
    Message,
    Rule,
    check_name,
    mask_url,
    parse_recipient,
    url_schema,
)
from longops.domain.read_models import Notification
from longops.domain.security import Action, Actor
from longops.notify import channels
from longops.notify.secrets import SecretBox
from longops.store.base import Store


class NotificationSetupService(ActorBound):
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        actor: Actor,
        secret_key: str | None = None,
        previous_keys: Sequence[str] = (),
    ) -> None:
        self.store = store
        self.clock = clock
        self.actor = actor
        self.secret_key = secret_key
        self.previous_keys = tuple(previous_keys)

    def _box(self) -> SecretBox:
        return SecretBox(self.secret_key, self.previous_keys)

    def _company(self, actor: Actor, action: Action, company: str) -> None:
        check_name("company", company)
        require(
            actor,
            action,
            target=f"company {company}",
            company=company,
            hidden=lambda: ValidationError("company", "must be an existing company", company),
        )
        if self.store.get_company(company) is None:
            raise ValidationError("company", "must be an existing company", company)

    # -- rules ----------------------------------------------------------------------------
    @acting
    def add_rule(
        self,
        company: str,
        name: str,
        *,
        on: str,
        to: Sequence[str],
        task: str | None = None,
        category: str | None = None,
        queue: str | None = None,
        user: str | None = None,
        enabled: bool = True,
        threshold: float | None = None,
    ) -> Rule:
        """Add a rule, or replace the one of that name: on ``on`` (succeeded, failed,
        attempt_failed, cancelled, stalled, running_long, waiting_long, milestone), for
        operations matching the filters, notify ``to`` (owner, admins, owner_or_admins,
        user:NAME, channel:NAME). ``threshold``: minutes for running_long (none: longer than
        the task's usual) and waiting_long, a percentage for milestone.

        Example::

            setup.add_rule("CRONUS", "ops", on="failed", to=["channel:ops"], task="post")
        """
        who = self.actor
        self._company(who, Action.SET_NOTIFICATION_SETUP, company)
        check_name("name", name)
        event = Event.parse(on)
        if isinstance(to, str) or not to:
            raise ValidationError("to", "must name at least one recipient")
        recipients = tuple(dict.fromkeys(parse_recipient(r) for r in to))
        known = {c.name for c in self.store.list_notify_channels(company)}
        for r in recipients:
            if r.startswith("channel:") and r.removeprefix("channel:") not in known:
                raise ValidationError("to", f"must name an existing channel of {company}", r)
        for field, value in (("task", task), ("category", category), ("queue", queue)):
            if value is not None:
                check_name(field, value)
        if user is not None:
            check_name("user", user)
        threshold = _threshold(event, threshold)
        rule = Rule(
            company,
            name,
            event,
            recipients,
            task,
            category,
            queue,
            user,
            enabled,
            self.clock.now(),
            threshold,
        )
        details = {"on": event.value, "to": list(recipients), "enabled": enabled}
        audit = self._audit_entry(who, "set_notification_rule", f"rule {name}", company, details)
        return self.store.upsert_notify_rule(rule, audit=audit)

    @acting
    def remove_rule(self, company: str, name: str) -> None:
        """Remove a rule (the default one too: then failures notify nobody outside the
        operation's own user's inbox)."""
        who = self.actor
        self._company(who, Action.SET_NOTIFICATION_SETUP, company)
        audit = self._audit_entry(who, "remove_notification_rule", f"rule {name}", company)
        if not self.store.delete_notify_rule(company, name, audit=audit):
            raise NotFound("notification rule", name)

    @acting
    def list_rules(self, company: str) -> list[Rule]:
        self._company(self.actor, Action.LIST_NOTIFICATION_SETUP, company)
        return self.store.list_notify_rules(company)

    # -- a person's preferences ----------------------------------------------------------
    @acting
    def mute_rule(self, company: str, rule: str, *, muted: bool = True) -> None:
        """Stop (or, ``muted=False``, start again) in-app notifications from ``rule`` for
        the actor (Business Central's "Don't show again", per rule). Notifications of the
        actor's own operations' endings still arrive.

        Example::

            app.as_user("ann").notification_setup.mute_rule("CRONUS", "default")
        """
        who = self.actor
        self._company(who, Action.SET_NOTIFICATION_PREFERENCES, company)
        if who.user is None:
            raise ValidationError("user", "a preference is a person's: act as a user")
        if rule not in {r.name for r in self.store.list_notify_rules(company)}:
            raise NotFound("notification rule", rule)
        action = "mute_notification_rule" if muted else "unmute_notification_rule"
        audit = self._audit_entry(who, action, f"rule {rule}", company)
        self.store.set_notify_mute(company, who.user, rule, muted, audit=audit)

    @acting
    def muted_rules(self, company: str) -> list[str]:
        """The rules the actor muted in ``company``."""
        who = self.actor
        self._company(who, Action.LIST_NOTIFICATIONS, company)
        mutes = self.store.list_notify_mutes(company)
        return sorted(rule for user, rule in mutes if user == who.user)

    @acting
    def my_rules(self, company: str) -> list[tuple[Rule, bool]]:
        """The company's rules as a person sees them to choose what to hear: each with
        whether the actor muted it (the preferences page; no admin permission needed).

        Example::

            [(r.name, muted) for r, muted in setup.my_rules("CRONUS")]   # [('default', False)]
        """
        who = self.actor
        self._company(who, Action.LIST_NOTIFICATIONS, company)
        mutes = self.store.list_notify_mutes(company)
        return [(r, (who.user, r.name) in mutes) for r in self.store.list_notify_rules(company)]

    @acting
    def has_email_channel(self, company: str) -> bool:
        """True when the company has a channel for people's own email (any member may ask:
        the preferences page says whether "also email" can work)."""
        self._company(self.actor, Action.LIST_NOTIFICATIONS, company)
        return self.store.personal_email_channel(company) is not None

    # -- notified admins ------------------------------------------------------------------
    @acting
    def add_admin(self, company: str, user: str) -> None:
        """Make ``user`` one of the company's notified admins (Business Central: Job Queue
        Notified Admin)."""
        who = self.actor
        self._company(who, Action.SET_NOTIFICATION_SETUP, company)
        check_name("user", user)
        if self.store.get_user(user) is None:
            raise ValidationError("user", "must be an existing user", user)
        audit = self._audit_entry(who, "add_notified_admin", f"user {user}", company)
        self.store.add_notified_admin(company, user, audit=audit)

    @acting
    def remove_admin(self, company: str, user: str) -> None:
        who = self.actor
        self._company(who, Action.SET_NOTIFICATION_SETUP, company)
        audit = self._audit_entry(who, "remove_notified_admin", f"user {user}", company)
        if not self.store.remove_notified_admin(company, user, audit=audit):
            raise NotFound("notified admin", user)

    @acting
    def list_admins(self, company: str) -> list[str]:
        self._company(self.actor, Action.LIST_NOTIFICATION_SETUP, company)
        return self.store.list_notified_admins(company)

    # -- channels -------------------------------------------------------------------------
    @acting
    def add_channel(
        self,
        company: str,
        name: str,
        url: str,
        *,
        rate_limit: int | None = None,
        rate_window: int = 60,
    ) -> Channel:
        """Add a channel, or replace the one of that name: an Apprise URL (``mailtos://``,
        ``json://``, ``slack://``, ``msteams://``, ``ntfy://``…), stored encrypted. With
        ``rate_limit``, at most that many messages per ``rate_window`` seconds; the rest
        goes as one digest.

        Example::

            setup.add_channel("CRONUS", "mail", "mailtos://u:pw@smtp.example.com?to=ops@x.com")
        """
        who = self.actor
        self._company(who, Action.SET_NOTIFICATION_SETUP, company)
        check_name("name", name)
        if not isinstance(url, str):
            raise ValidationError("url", "must be an Apprise URL such as json://host/path")
        schema = url_schema(url)
        try:
            channels.check_url(url)
        except ValueError as exc:
            raise ValidationError("url", str(exc)) from None
        if rate_limit is not None and (
            isinstance(rate_limit, bool) or not 1 <= rate_limit <= 100_000
        ):
            raise ValidationError("rate_limit", "must be between 1 and 100000", rate_limit)
        if isinstance(rate_window, bool) or not 1 <= rate_window <= 86_400:
            raise ValidationError("rate_window", "must be between 1 and 86400 seconds", rate_window)
        box = self._box()
        channel = Channel(
            company, name, mask_url(url), schema, self.clock.now(), rate_limit, rate_window
        )
        details = {"url": channel.url_masked, "rate_limit": rate_limit}
        audit = self._audit_entry(
            who, "set_notification_channel", f"channel {name}", company, details
        )
        return self.store.upsert_notify_channel(channel, box.encrypt(url), audit=audit)

    @acting
    def set_email_channel(self, company: str, name: str | None) -> None:
        """Make the email channel ``name`` (``mailto://``, ``mailtos://``) the one that
        carries people's own email: those who chose "also email" get their notifications
        through it, addressed to them (its own ``to`` is replaced). ``None``: no channel,
        people get the in-app inbox only.

        Example::

            setup.set_email_channel("CRONUS", "mail")
        """
        who = self.actor
        self._company(who, Action.SET_NOTIFICATION_SETUP, company)
        if name is not None:
            check_name("name", name)
            found = {c.name: c for c in self.store.list_notify_channels(company)}
            if name not in found:
                raise NotFound("channel", name)
            if found[name].url_schema not in channels.EMAIL_SCHEMAS:
                raise ValidationError(
                    "name", "must name an email channel (mailto:// or mailtos://)", name
                )
        audit = self._audit_entry(
            who, "set_personal_email_channel", f"channel {name or '-'}", company
        )
        if not self.store.set_personal_email_channel(company, name, audit=audit):
            raise NotFound("channel", str(name))

    @acting
    def email_channel(self, company: str) -> str | None:
        """The company's channel for people's own email, if any."""
        self._company(self.actor, Action.LIST_NOTIFICATION_SETUP, company)
        return self.store.personal_email_channel(company)

    @acting
    def remove_channel(self, company: str, name: str) -> None:
        who = self.actor
        self._company(who, Action.SET_NOTIFICATION_SETUP, company)
        audit = self._audit_entry(who, "remove_notification_channel", f"channel {name}", company)
        if not self.store.delete_notify_channel(company, name, audit=audit):
            raise NotFound("channel", name)

    @acting
    def list_channels(self, company: str) -> list[Channel]:
        """The company's channels, masked."""
        self._company(self.actor, Action.LIST_NOTIFICATION_SETUP, company)
        return self.store.list_notify_channels(company)

    @acting
    def test_channel(self, company: str, name: str) -> str | None:
        """Send a test message to a channel now; None when it went, else why not.

        Example::

            setup.test_channel("CRONUS", "ops")   # None
        """
        who = self.actor
        self._company(who, Action.SET_NOTIFICATION_SETUP, company)
        found = self.store.get_notify_channel_secret(company, name)
        if found is None:
            raise NotFound("channel", name)
        url = self._box().decrypt(found[0])
        msg = Message(
            f"Test notification from longops ({company})",
            f"Channel {name} of company {company} works; sent by {who.name}.",
            None,
        )
        error = channels.send(url, msg, idem_key=uuid.uuid4())
        details = {"sent": error is None, "error": error}
        self.store.record_audit(
            self._audit_entry(who, "test_notification_channel", f"channel {name}", company, details)
        )
        return error

    # -- the delivery log -----------------------------------------------------------------
    @acting
    def list_deliveries(
        self,
        company: str,
        *,
        status: str | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """The company's deliveries, newest first (``status``: pending, sent, dead,
        digested)."""
        self._company(self.actor, Action.LIST_NOTIFICATION_SETUP, company)
        wanted = None
        if status is not None:
            try:
                wanted = DeliveryStatus(status)
            except ValueError:
                raise ValidationError(
                    "status", "must be one of pending, sent, dead, digested", status
                ) from None
        if isinstance(limit, bool) or not 1 <= limit <= 1000:
            raise ValidationError("limit", "must be between 1 and 1000", limit)
        return self.store.list_deliveries(company, status=wanted, limit=limit)

    @acting
    def retry_delivery(self, company: str, delivery_id: int) -> None:
        """Send a dead-lettered delivery again (its tries start over)."""
        who = self.actor
        self._company(who, Action.SET_NOTIFICATION_SETUP, company)
        audit = self._audit_entry(who, "retry_delivery", f"delivery {delivery_id}", company)
        if not self.store.retry_delivery(company, delivery_id, self.clock.now(), audit=audit):
            raise NotFound("dead delivery", delivery_id)


def _threshold(event: Event, value: float | None) -> float | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ValidationError("threshold", "must be a number", value)
    if event is Event.MILESTONE:
        if value is None or not 0 < value <= 100:
            raise ValidationError("threshold", "must be a percentage above 0, at most 100", value)
    elif event is Event.WAITING_LONG:
        if value is None or not 0 < value <= 525_600:
            raise ValidationError("threshold", "must be between 0 and 525600 minutes", value)
    elif event is Event.RUNNING_LONG:
        if value is not None and not 0 < value <= 525_600:
            raise ValidationError("threshold", "must be between 0 and 525600 minutes", value)
    elif value is not None:
        raise ValidationError("threshold", f"means nothing for {event.value}", value)
    return None if value is None else float(value)


class InboxService(ActorBound):
    """A person's own notifications (the pages' inbox and toasts), for the bound actor.

    Example::

        inbox = InboxService(store, clock, actor=alice)
        inbox.unread_notifications("CRONUS")
    """

    def __init__(self, store: Store, clock: Clock, *, actor: Actor) -> None:
        self.store = store
        self.clock = clock
        self.actor = actor

    @acting
    def notifications(
        self,
        company: str,
        *,
        unread_only: bool = False,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[Notification]:
        """The actor's own notifications in the company, newest first (page on with
        ``before_id``); none for an actor without a user name.

        Example::

            for n in inbox.as_actor(alice).notifications("CRONUS", unread_only=True):
                print(n.kind.caption, n.title)
        """
        who = self.actor
        require_in(who, Action.LIST_NOTIFICATIONS, company)
        if isinstance(limit, bool) or not 1 <= limit <= 1000:
            raise ValidationError("limit", "must be between 1 and 1000", limit)
        if who.user is None:
            return []
        return self.store.list_notifications(
            company, who.user, unread_only=unread_only, limit=limit, before_id=before_id
        )

    @acting
    def unread_notifications(self, company: str) -> int:
        """How many of the actor's notifications in the company are unread."""
        who = self.actor
        require_in(who, Action.LIST_NOTIFICATIONS, company)
        if who.user is None:
            return 0
        return self.store.count_unread_notifications(company, who.user)

    @acting
    def mark_notifications_read(
        self,
        company: str,
        ids: Sequence[int] | None = None,
    ) -> int:
        """Mark the actor's unread notifications read: those of ``ids``, or all (None).
        Returns how many changed; ids of other users' notifications change nothing.

        Example::

            inbox.as_actor(alice).mark_notifications_read("CRONUS", None)   # all
        """
        who = self.actor
        require_in(who, Action.MARK_NOTIFICATIONS_READ, company)
        if ids is not None:
            ids = list(ids)
            if len(ids) > 1000 or any(isinstance(i, bool) or not isinstance(i, int) for i in ids):
                raise ValidationError("ids", "must be at most 1000 notification ids", ids[:5])
        if who.user is None:
            return 0
        return self.store.mark_notifications_read(company, who.user, ids, self.clock.now())
