"""Store contract, notifications: the inbox, rules and mutes, contacts, notified admins,
channels, watched conditions, the outbox and its deliveries.

Every test takes the ``store`` fixture and so runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

from contract_support import claim, finish, insert, make_error, register

from longops.domain.clock import FrozenClock
from longops.domain.notify import Channel, DeliveryStatus, Event, PlannedDelivery, Rule, Watched
from longops.domain.read_models import NotificationKind
from longops.domain.users import User, UserState
from longops.store.base import Store


def _user(store: Store, clock: FrozenClock, name: str) -> None:
    store.insert_user(
        User(name, name.title(), UserState.ACTIVE, False, clock.now(), None, False, ()), None
    )


def test_inbox_holds_a_users_ended_operations_until_read(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    last = store.last_notification_id()
    op = insert(store, clock, user="alice", description="Post invoices")
    [run] = claim(store, sid, clock.now())
    assert finish(store, run, clock.advance(seconds=1))
    [note] = store.list_notifications("default", "alice")
    assert (note.operation_id, note.kind, note.title, note.read_at) == (
        op.id, NotificationKind.SUCCEEDED, "Post invoices", None
    )  # fmt: skip
    assert store.list_notifications("default", "bob") == []
    assert store.count_unread_notifications("default", "alice") == 1
    assert store.notifications_since(last) == [note]
    assert store.notifications_since(note.id) == []
    assert store.last_notification_id() == note.id
    read_at = clock.advance(seconds=1)
    assert store.mark_notifications_read("default", "alice", [note.id], read_at) == 1
    assert store.mark_notifications_read("default", "alice", None, read_at) == 0  # none unread
    assert store.count_unread_notifications("default", "alice") == 0
    assert store.list_notifications("default", "alice", unread_only=True) == []
    assert store.list_notifications("default", "alice")[0].read_at == read_at


def test_rules_mutes_and_watch_rules(store: Store, clock: FrozenClock) -> None:
    rule = Rule("default", "ops", Event.FAILED, ("channel:ops",), created_at=clock.now())
    assert store.upsert_notify_rule(rule) == rule
    assert rule in store.list_notify_rules("default")
    assert store.list_watch_rules() == []  # a rule on a change needs no clock
    long = Rule(
        "default", "long", Event.RUNNING_LONG, ("admins",), threshold=5.0, created_at=clock.now()
    )
    store.upsert_notify_rule(long)
    assert store.list_watch_rules() == [long]
    store.upsert_notify_rule(
        Rule(
            "default",
            "long",
            Event.RUNNING_LONG,
            ("admins",),
            enabled=False,
            created_at=clock.now(),
        )
    )
    assert store.list_watch_rules() == []  # a disabled rule is not watched
    store.set_notify_mute("default", "alice", "ops", True)
    store.set_notify_mute("default", "alice", "ops", True)  # muting twice is one mute
    assert store.list_notify_mutes("default") == {("alice", "ops")}
    store.set_notify_mute("default", "alice", "ops", False)
    assert store.list_notify_mutes("default") == set()
    assert store.delete_notify_rule("default", "ops") is True
    assert store.delete_notify_rule("default", "ops") is False
    assert rule.name not in {r.name for r in store.list_notify_rules("default")}


def test_notified_admins_and_contacts(store: Store, clock: FrozenClock) -> None:
    assert store.add_notified_admin("default", "alice") is True
    assert store.add_notified_admin("default", "alice") is False
    assert store.list_notified_admins("default") == ["alice"]
    assert store.remove_notified_admin("default", "alice") is True
    assert store.remove_notified_admin("default", "alice") is False
    assert store.list_notified_admins("default") == []
    _user(store, clock, "alice")
    _user(store, clock, "bob")
    assert store.get_user_contact("alice") == (None, False)
    assert store.set_user_contact("alice", "alice@example.com", True, clock.now()) is True
    assert store.set_user_contact("bob", "bob@example.com", False, clock.now()) is True
    assert store.set_user_contact("ghost", "g@example.com", True, clock.now()) is False
    assert store.get_user_contact("alice") == ("alice@example.com", True)
    assert store.get_user_contact("ghost") is None
    assert store.email_recipients() == {"alice": "alice@example.com"}  # bob: in-app only
    store.set_user_state("alice", UserState.DISABLED, clock.now())
    assert store.email_recipients() == {}


def test_channels_and_the_personal_email_channel(store: Store, clock: FrozenClock) -> None:
    ops = Channel("default", "ops", "json://***", "json", clock.now(), rate_limit=5)
    assert store.upsert_notify_channel(ops, "secret-1") == ops
    mail = Channel("default", "mail", "mailto://***", "mailto", clock.now())
    store.upsert_notify_channel(mail, "secret-2")
    assert [c.name for c in store.list_notify_channels("default")] == ["mail", "ops"]
    assert store.get_notify_channel_secret("default", "ops") == ("secret-1", 5, 60)
    assert store.get_notify_channel_secret("default", "nope") is None
    assert store.personal_email_channel("default") is None
    assert store.set_personal_email_channel("default", "mail") is True
    assert store.personal_email_channel("default") == "mail"
    # No such channel: nothing changes (the clearing is rolled back).
    assert store.set_personal_email_channel("default", "nope") is False
    assert store.personal_email_channel("default") == "mail"
    assert store.set_personal_email_channel("default", None) is True
    assert store.personal_email_channel("default") is None
    assert store.delete_notify_channel("default", "ops") is True
    assert store.delete_notify_channel("default", "ops") is False
    assert store.get_notify_channel_secret("default", "ops") is None


def test_outbox_expands_into_deliveries_claimed_and_finished_once(
    store: Store, clock: FrozenClock
) -> None:
    store.upsert_notify_rule(
        Rule("default", "ops", Event.FAILED, ("channel:ops",), created_at=clock.now())
    )
    sid = register(store, clock.now())
    op = make_error(store, clock, sid, clock.advance(seconds=1), user="alice")
    [entry] = [e for e in store.pending_outbox() if e.operation_id == op.id]
    assert entry.event is Event.FAILED
    now = clock.advance(seconds=1)
    planned = [PlannedDelivery("ops", "channel:ops"), PlannedDelivery("ops", "inbox:bob")]
    assert store.expand_outbox(entry, planned, now) == 2
    assert entry not in store.pending_outbox()
    deliveries = store.claim_deliveries(now, timedelta(seconds=30), 10)
    assert [(d.recipient, d.status, d.attempts) for d in deliveries] == [
        ("channel:ops", DeliveryStatus.PENDING, 1), ("inbox:bob", DeliveryStatus.PENDING, 1)
    ]  # fmt: skip
    assert store.claim_deliveries(now, timedelta(seconds=30), 10) == []  # leased
    channel, inbox = deliveries
    assert store.finish_delivery(channel, DeliveryStatus.SENT, now) is True
    assert store.count_recent_sends("default", "channel:ops", now - timedelta(minutes=1)) == 1
    assert store.count_recent_sends("default", "channel:ops", now + timedelta(seconds=1)) == 0
    assert store.finish_delivery(inbox, DeliveryStatus.DEAD, now, error="boom") is True
    [dead] = store.list_deliveries("default", status=DeliveryStatus.DEAD)
    assert (dead.id, dead.last_error) == (inbox.id, "boom")
    assert len(store.list_deliveries("default")) == 2
    assert store.retry_delivery("default", inbox.id, now) is True
    assert store.list_deliveries("default", status=DeliveryStatus.DEAD) == []
    [again] = store.claim_deliveries(clock.advance(seconds=1), timedelta(seconds=30), 10)
    assert again.id == inbox.id
    # Under its own claim an inbox delivery writes the inbox entry in the same transaction;
    # the stale claim (the first one) changes nothing.
    assert store.finish_delivery(inbox, DeliveryStatus.SENT, now, inbox_title="x") is False
    assert store.finish_delivery(again, DeliveryStatus.SENT, now, inbox_title="Failed") is True
    assert [n.title for n in store.list_notifications("default", "bob")] == ["Failed"]


def test_watched_conditions_reach_the_outbox_once(store: Store, clock: FrozenClock) -> None:
    op = insert(store, clock)
    found = [Watched("default", op.id, Event.RUNNING_LONG, "long", f"{op.id}:1")]
    assert store.insert_watched(found, clock.now()) == 1
    assert store.insert_watched(found, clock.advance(seconds=60)) == 0
    [entry] = [e for e in store.pending_outbox() if e.operation_id == op.id]
    assert (entry.event, entry.rule_name) == (Event.RUNNING_LONG, "long")
