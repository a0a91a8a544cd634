"""What the pages need from core, on both databases: notifications (written with every
terminal status change, read, marked read, streamed, exported and forgotten), editing on
hold, log entries and their clean-up, the overview, capped facets, the stalled filter,
the header's running operations, category activity and sessions' current operations."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from longops import EnqueueRequest, FrozenClock, Longops, NotFound, ValidationError
from longops.app import ActorView
from longops.core.streams import EventHub, PageItem, Subscription
from longops.domain.errors import PermissionDenied
from longops.domain.operation import CancelMode, Operation, Outcome, Priority
from longops.domain.read_models import COUNT_CAP, Notification, NotificationKind, format_count
from longops.domain.recurrence import Recurrence
from longops.domain.security import PermissionSet
from longops.domain.status import Status
from longops.store.base import ClaimedRun, ClaimParams, OperationQuery, RunResult
from longops.testing import Runner, active_session


@dataclass
class World:
    app: Longops
    clock: FrozenClock
    alice: ActorView
    """JOBQUEUE-USER in A."""
    bob: ActorView
    """JOBQUEUE-USER in A."""
    admin: ActorView
    """JOBQUEUE-ADMIN in A."""
    viewer: ActorView
    """JOBQUEUE-VIEW in A."""

    def op(self, user: str | None = "alice", *, task: str = "ok", **options: Any) -> Operation:
        return self.app.service.enqueue(
            EnqueueRequest(task=task, company="A", user=user, **options)
        )

    def claim(self, limit: int = 10) -> list[ClaimedRun]:
        session = active_session(self.clock.now())
        self.app.store.register_session(session)
        return self.app.store.claim(ClaimParams(session.id, ("default",), limit, self.clock.now()))


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    clock = FrozenClock()
    app = Longops(db_url, clock=clock)
    app.task(name="ok")(lambda: None)

    @app.task(name="fails")
    def fails() -> None:
        raise ValueError("no")

    app.add_company("A")
    app.add_company("B")
    app.set_category("CAT", company="A", max_concurrent=2)
    security = app.security
    security.add_user("alice", grants=[("A", PermissionSet.USER)])
    security.add_user("bob", grants=[("A", PermissionSet.USER)])
    security.add_user("ada", grants=[("A", PermissionSet.ADMIN)])
    security.add_user("vic", grants=[("A", PermissionSet.VIEW)])
    yield World(
        app,
        clock,
        app.as_user("alice"),
        app.as_user("bob"),
        app.as_user("ada"),
        app.as_user("vic"),
    )
    app.close()


def _kinds(view: ActorView) -> list[tuple[NotificationKind, str]]:
    return [(n.kind, n.title) for n in reversed(view.inbox.notifications("A"))]


# -- notifications ------------------------------------------------------------------------------


def test_each_way_an_operation_ends_notifies_its_user_once(world: World) -> None:
    ok = world.op(description="Post January")
    failing = world.op(task="fails")
    Runner(world.app).run_until_idle()
    held = world.op(on_hold=True)
    world.app.service.cancel(held.id)  # before start
    expiring = world.op(expires_at=world.clock.now() + timedelta(minutes=1), delay=30)
    world.clock.advance(timedelta(minutes=2))
    assert world.app.store.expire_operations(world.clock.now()) == [expiring.id]
    assert _kinds(world.alice) == [
        (NotificationKind.SUCCEEDED, "Post January"),
        (NotificationKind.FAILED, "fails"),
        (NotificationKind.CANCELLED, "ok"),
        (NotificationKind.CANCELLED, "ok"),
    ]
    notes = {n.operation_id: n for n in world.alice.inbox.notifications("A")}
    for op in (ok, failing, held, expiring):
        ended = world.app.service.get(op.id)
        assert notes[op.id].created_at == ended.ended_at
        assert (notes[op.id].user, notes[op.id].company) == ("alice", "A")
        assert notes[op.id].read_at is None


def test_a_running_operation_cancelled_notifies_and_a_recurring_success_does_not(
    world: World,
) -> None:
    running = world.op()
    [claimed] = world.claim()
    world.app.service.cancel(running.id, reason="wrong month")
    at = world.clock.now()
    assert world.app.store.finish_runs(
        [
            RunResult(
                operation_id=running.id,
                lease_token=claimed.lease_token,
                run_no=claimed.run_no,
                at=at,
                outcome=Outcome.CANCELLED,
                status=Status.CANCELLED,
                cancel_mode=CancelMode.COOPERATIVE,
            )
        ]
    ) == [True]
    recurring = world.op(recurrence="every 1h")
    world.clock.advance(timedelta(hours=2))
    Runner(world.app).run_until_idle()
    assert world.app.service.get(recurring.id).status is Status.READY  # ran, scheduled again
    assert len(world.app.service.attempts(recurring.id)) == 1
    assert _kinds(world.alice) == [(NotificationKind.CANCELLED, "ok")]


def test_operations_of_no_user_notify_nobody_and_users_see_only_their_own(world: World) -> None:
    world.app.service.cancel(world.op(user=None, on_hold=True).id)  # the local super actor's
    world.app.service.cancel(world.op(user="bob", on_hold=True).id)
    assert world.alice.inbox.notifications("A") == []
    assert world.alice.inbox.unread_notifications("A") == 0
    assert [n.user for n in world.bob.inbox.notifications("A")] == ["bob"]
    # An admin's inbox is the admin's: no one else's notifications.
    assert world.admin.inbox.notifications("A") == []
    assert world.app.inbox.notifications("A") == []  # the local actor has no inbox


def test_notifications_are_read_marked_and_paged(world: World) -> None:
    ops = [world.op(on_hold=True, description=f"op {i}") for i in range(5)]
    for op in ops:
        world.app.service.cancel(op.id)
    world.app.service.cancel(world.op(user="bob", on_hold=True).id)
    inbox = world.alice.inbox.notifications("A")
    assert [n.title for n in inbox] == [f"op {i}" for i in reversed(range(5))]
    assert world.alice.inbox.unread_notifications("A") == 5
    first_two = [inbox[0].id, inbox[1].id]
    bobs = world.bob.inbox.notifications("A")[0].id
    # Another user's id among them changes nothing of theirs.
    assert world.alice.inbox.mark_notifications_read("A", [*first_two, bobs]) == 2
    assert world.alice.inbox.mark_notifications_read("A", first_two) == 0  # already read
    assert world.alice.inbox.mark_notifications_read("A", []) == 0  # none named: none marked
    assert world.bob.inbox.unread_notifications("A") == 1
    assert world.alice.inbox.unread_notifications("A") == 3
    unread = world.alice.inbox.notifications("A", unread_only=True)
    assert [n.id for n in unread] == [n.id for n in inbox[2:]]
    assert all(n.read for n in world.alice.inbox.notifications("A")[:2])
    page = world.alice.inbox.notifications("A", limit=2)
    rest = world.alice.inbox.notifications("A", before_id=page[-1].id)
    assert [n.id for n in page + rest] == [n.id for n in inbox]
    assert world.alice.inbox.mark_notifications_read("A") == 3
    assert world.alice.inbox.unread_notifications("A") == 0
    # A viewer reads (and marks) their own inbox too.
    assert world.viewer.inbox.mark_notifications_read("A") == 0


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda v: v.inbox.notifications("A", limit=0), "limit"),
        (lambda v: v.inbox.notifications("A", limit=1001), "limit"),
        (lambda v: v.inbox.mark_notifications_read("A", ["1"]), "ids"),
        (lambda v: v.inbox.mark_notifications_read("A", list(range(1001))), "ids"),
        (lambda v: v.inbox.notifications("bad company!"), "company"),
    ],
)
def test_bad_notification_input_names_the_field(world: World, call: object, field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        call(world.alice)  # type: ignore[operator]
    assert raised.value.field == field


def test_the_hub_fans_a_users_notifications_out_to_that_user_only(world: World) -> None:
    hub = EventHub(world.app.store, poll_interval=0.01)
    # Before anyone listens: a notification no later listener should be toasted with.
    world.app.service.cancel(world.op(on_hold=True, description="Old news").id)

    async def first_notification(feed: Subscription[PageItem]) -> Notification:
        async for item in feed:
            if isinstance(item, Notification):
                return item
        raise AssertionError("the feed ended without a notification")

    async def scenario() -> tuple[Notification, Notification, list[object], list[object]]:
        await hub.start()
        try:
            async with (
                hub.subscribe_with_notifications("alice", companies=["A"]) as alices,
                hub.subscribe_with_notifications("bob", companies=["B"]) as bob_in_b,
                hub.subscribe_with_notifications("bob", companies=["A"]) as bobs,
                hub.subscribe(companies=["A"]) as plain,
            ):
                mine = await asyncio.to_thread(world.op, on_hold=True, description="Export")
                await asyncio.to_thread(world.app.service.cancel, mine.id)
                got = await asyncio.wait_for(first_notification(alices), timeout=30)
                theirs = await asyncio.to_thread(world.op, user="bob", on_hold=True)
                await asyncio.to_thread(world.app.service.cancel, theirs.id)
                bob_got = await asyncio.wait_for(first_notification(bobs), timeout=30)
                # One read dispatches to every subscriber at once: whatever the others
                # were handed is in their queues now.
                return got, bob_got, _take(plain) + _take(bob_in_b), _take(alices)
        finally:
            await hub.stop()

    got, bob_got, others, alice_rest = asyncio.run(scenario())
    assert (got.user, got.kind, got.title) == ("alice", NotificationKind.CANCELLED, "Export")
    assert (bob_got.user, bob_got.kind) == ("bob", NotificationKind.CANCELLED)
    assert not any(isinstance(i, Notification) for i in others + alice_rest)


def _take(feed: Subscription[Any]) -> list[object]:
    items = []
    while not feed.queue.empty():
        items.append(feed.queue.get_nowait())
    return items


def test_notifications_are_exported_and_forgotten_with_the_user(world: World) -> None:
    world.app.service.cancel(world.op(on_hold=True).id)
    exported = world.app.security.export_user("alice")
    assert [n["user"] for n in exported["notifications"]] == ["alice"]
    pseudonym = world.app.security.forget_user("alice")
    notes = world.app.store.notifications_since(0)
    assert [n.user for n in notes] == [pseudonym]
    with pytest.raises(NotFound):
        world.app.security.export_user("alice")


def test_notifications_past_the_retention_period_are_pruned(world: World) -> None:
    world.app.service.cancel(world.op(on_hold=True).id)
    world.clock.advance(timedelta(days=8))
    world.app.service.cancel(world.op(on_hold=True, description="recent").id)
    world.app.store.prune(world.clock.now() - timedelta(days=7))
    assert [n.title for n in world.alice.inbox.notifications("A")] == ["recent"]


def test_the_notification_commits_with_the_status_change(db_url: str) -> None:
    # Raw SQL beside the store: while the status change is not committed no notification
    # is visible, a rolled-back change leaves none, a committed one exactly one.
    app = Longops(db_url, clock=FrozenClock())
    app.task(name="ok")(lambda: None)
    app.add_company("A")
    op = app.service.enqueue(EnqueueRequest(task="ok", company="A", user="u", on_hold=True))
    app.close()
    count = "SELECT count(*) FROM longops_notifications"
    writer: Any
    reader: Any
    if db_url.startswith("sqlite"):
        path = db_url.removeprefix("sqlite:///")
        writer = sqlite3.connect(path, isolation_level="DEFERRED")
        reader = sqlite3.connect(path)
        update = (
            "UPDATE longops_operations SET status = 'cancelled', "
            "ended_at = '2026-01-05 10:00:00.000000' WHERE id = ?"
        )
        key: object = op.id.hex
    else:
        writer = psycopg.connect(db_url)
        reader = psycopg.connect(db_url, autocommit=True)
        update = (
            "UPDATE longops_operations SET status = 'cancelled', ended_at = now() WHERE id = %s"
        )
        key = op.id
    try:
        writer.execute(update, [key])
        assert reader.execute(count).fetchone() == (0,)
        writer.rollback()
        assert reader.execute(count).fetchone() == (0,)
        writer.execute(update, [key])
        writer.commit()
        assert reader.execute(count).fetchone() == (1,)
    finally:
        writer.close()
        reader.close()


# -- editing while on hold -----------------------------------------------------------------------


def test_an_operation_on_hold_is_edited_and_the_edit_audited(world: World) -> None:
    op = world.op(on_hold=True, description="Old")
    start = world.clock.now() + timedelta(hours=3)
    edited = world.alice.service.update_operation(
        op.id,
        description="New",
        priority="high",
        category="CAT",
        earliest_start=start,
        recurrence="every 2h",
        max_attempts=4,
        timeout=90,
    )
    again = world.app.service.get(op.id)
    for seen in (edited, again):
        assert seen.description == "New"
        assert seen.priority is Priority.HIGH
        assert seen.category == "CAT"
        assert seen.earliest_start_at == start
        assert seen.recurrence == Recurrence.parse("every 2h")
        assert seen.max_attempts == 4
        assert seen.timeout == timedelta(seconds=90)
        assert seen.status is Status.ON_HOLD
    # None clears; what is not given stays.
    cleared = world.alice.service.update_operation(
        op.id, description=None, category=None, recurrence=None
    )
    assert (cleared.description, cleared.category, cleared.recurrence) == (None, None, None)
    assert (cleared.max_attempts, cleared.priority) == (4, Priority.HIGH)
    [entry, *_] = world.admin.security.list_audit(company="A")
    assert (entry.action, entry.actor) == ("update_operation", "alice")
    assert entry.details["changed"] == ["category", "description", "recurrence"]
    # A form sends every field again: the audit names only what changed.
    world.alice.service.update_operation(
        op.id, description="Again", priority="high", max_attempts=4
    )
    [entry, *_] = world.admin.security.list_audit(company="A")
    assert entry.details["changed"] == ["description"]


@pytest.mark.parametrize("status", [Status.READY, Status.FINISHED, Status.CANCELLED])
def test_editing_is_refused_unless_on_hold(world: World, status: Status) -> None:
    op = world.op(on_hold=status is not Status.READY)
    if status is Status.FINISHED:
        world.app.service.set_ready(op.id, user="alice")
        Runner(world.app).run_until_idle()
    elif status is Status.CANCELLED:
        world.app.service.cancel(op.id)
    assert world.app.service.get(op.id).status is status
    with pytest.raises(ValidationError) as raised:
        world.alice.service.update_operation(op.id, description="x")
    assert (raised.value.field, raised.value.rule) == ("status", "must be on hold to edit")


def test_editing_follows_the_permission_table(world: World) -> None:
    alices = world.op(on_hold=True)
    with pytest.raises(PermissionDenied):
        world.bob.service.update_operation(alices.id, description="x")
    with pytest.raises(PermissionDenied):
        world.viewer.service.update_operation(alices.id, description="x")
    assert world.admin.service.update_operation(alices.id, description="by admin").description == (
        "by admin"
    )
    theirs = world.app.service.enqueue(EnqueueRequest(task="ok", company="B", on_hold=True))
    with pytest.raises(NotFound):
        world.admin.service.update_operation(theirs.id, description="x")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"priority": "urgent"}, "priority"),
        ({"category": "NOPE"}, "category"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"description": "x" * 251}, "description"),
        ({"timeout": -1}, "timeout"),
        ({"recurrence": "sometimes"}, "recurrence"),
    ],
)
def test_bad_edits_name_the_field_and_change_nothing(
    world: World, changes: dict[str, object], field: str
) -> None:
    op = world.op(on_hold=True, description="Kept")
    with pytest.raises(ValidationError) as raised:
        world.alice.service.update_operation(op.id, **changes)
    assert raised.value.field == field
    assert world.app.service.get(op.id) == op


# -- log entries ------------------------------------------------------------------------------


def test_log_entries_are_listed_filtered_and_paged(world: World) -> None:
    first = world.op(description="First")
    Runner(world.app).run_until_idle()
    world.clock.advance(timedelta(hours=1))
    failing = world.op(task="fails")
    Runner(world.app).run_until_idle()
    world.app.service.enqueue(EnqueueRequest(task="ok", company="B"))
    Runner(world.app).run_until_idle()
    everything = world.viewer.read_models.list_attempts("A")
    assert [(e.attempt.task, e.attempt.outcome) for e in everything] == [
        ("fails", Outcome.ERROR),
        ("ok", Outcome.SUCCESS),
    ]
    assert everything[-1].description == "First"
    assert everything[0].description is None
    assert [e.attempt.task for e in world.viewer.read_models.list_attempts("A", task="ok")] == [
        "ok"
    ]
    assert len(world.viewer.read_models.list_attempts("A", outcome="error")) == 1
    assert len(world.viewer.read_models.list_attempts("A", outcome=["error", Outcome.SUCCESS])) == 2
    assert world.viewer.read_models.list_attempts("A", outcome="timeout") == []
    later = world.viewer.read_models.list_attempts("A", started_from=world.clock.now())
    assert {e.attempt.operation_id for e in later} == {failing.id}
    earlier = world.viewer.read_models.list_attempts("A", started_to=world.clock.now())
    assert {e.attempt.operation_id for e in earlier} == {first.id}
    world.app.service.restart(failing.id, user="alice")
    Runner(world.app).run_until_idle()
    by_op = world.viewer.read_models.list_attempts("A", operation_id=failing.entry_no)
    assert [e.attempt.number for e in by_op] == [2, 1]
    everything = world.viewer.read_models.list_attempts("A")
    page = world.viewer.read_models.list_attempts("A", limit=2)
    rest = world.viewer.read_models.list_attempts("A", before_entry_no=page[-1].attempt.id)
    assert [e.attempt.id for e in page + rest] == [e.attempt.id for e in everything]


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"outcome": "exploded"}, "outcome"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
    ],
)
def test_bad_log_entry_filters_name_the_field(
    world: World, filters: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        world.viewer.read_models.list_attempts("A", **filters)
    assert raised.value.field == field


def test_admins_delete_log_entries_older_than_n_days(world: World) -> None:
    world.op()
    Runner(world.app).run_until_idle()
    world.clock.advance(timedelta(days=10))
    recent = world.op()
    Runner(world.app).run_until_idle()
    running = world.op()
    world.clock.advance(timedelta(days=30))
    world.claim()  # a run in process is never deleted, however old its start
    with pytest.raises(PermissionDenied):
        world.alice.service.delete_log_entries("A", older_than_days=0)
    world.clock.advance(timedelta(days=-25))  # now: 15 days after the first run
    assert world.admin.service.delete_log_entries("A", older_than_days=12) == 1
    left = world.admin.read_models.list_attempts("A")
    assert {e.attempt.operation_id for e in left} == {recent.id, running.id}
    [entry, *_] = world.admin.security.list_audit(company="A")
    assert (entry.action, entry.details) == (
        "delete_log_entries",
        {"older_than_days": 12, "removed": 1},
    )
    world.clock.advance(timedelta(days=100))
    assert world.admin.service.delete_log_entries("A", older_than_days=0) == 1
    assert [e.attempt.operation_id for e in world.admin.read_models.list_attempts("A")] == [
        running.id
    ]


@pytest.mark.parametrize("days", [-1, 36_501, True, 1.5, "3"])
def test_bad_ages_are_refused(world: World, days: object) -> None:
    with pytest.raises(ValidationError) as raised:
        world.admin.service.delete_log_entries("A", older_than_days=days)  # type: ignore[arg-type]
    assert raised.value.field == "older_than_days"


# -- overview, facets, running, categories, sessions -----------------------------------------------


def test_the_overview_counts_cues_charts_hours_and_ranks_the_longest_running(
    world: World,
) -> None:
    start = world.clock.now()
    world.op(task="fails", user="alice")
    world.op(task="fails", user="bob")
    Runner(world.app).run_until_idle()
    world.clock.advance(timedelta(hours=5))
    for _ in range(3):
        world.op()
    Runner(world.app).run_until_idle()
    world.clock.advance(timedelta(minutes=30))
    oldest = world.op(description="oldest")
    [claimed_oldest] = world.claim(1)
    world.clock.advance(timedelta(minutes=5))
    newer = [world.op(description=f"newer {i}") for i in range(5)]
    world.claim(10)
    world.op(delay=3600)  # ready, not due
    world.clock.advance(timedelta(minutes=20))  # the stall period (10 min) has passed
    assert world.app.store.flag_stalled(world.clock.now()) != []
    view = world.alice.read_models.overview("A")
    assert (view.ready, view.in_process, view.failed, view.my_failures, view.stalled) == (
        1,
        6,
        2,
        1,
        6,
    )
    assert view.company == "A"
    assert len(view.per_hour) == 24
    assert (
        view.per_hour[-1].start <= world.clock.now() < view.per_hour[-1].start + timedelta(hours=1)
    )
    assert all(
        b.start + timedelta(hours=1) == n.start
        for b, n in zip(view.per_hour, view.per_hour[1:], strict=False)
    )
    counted = {b.start: (b.finished, b.failed) for b in view.per_hour if b.finished or b.failed}
    hour = start.replace(minute=0, second=0, microsecond=0)
    assert counted == {hour: (0, 2), hour + timedelta(hours=5): (3, 0)}
    assert [op.id for op in view.longest_running] == [
        claimed_oldest.operation.id,
        *[op.id for op in newer[:4]],
    ]
    assert oldest.id == claimed_oldest.operation.id
    assert world.app.read_models.overview("A").my_failures == 0  # the local actor owns nothing
    assert world.bob.read_models.overview("A").my_failures == 1


def test_the_chart_leaves_out_runs_older_than_24_hours(world: World) -> None:
    world.op()
    Runner(world.app).run_until_idle()
    world.clock.advance(timedelta(hours=24))
    assert sum(b.finished for b in world.alice.read_models.overview("A").per_hour) == 0
    world.clock.advance(timedelta(hours=-1))
    assert sum(b.finished for b in world.alice.read_models.overview("A").per_hour) == 1


def test_status_counts_are_the_filter_minus_its_status(world: World) -> None:
    world.op(on_hold=True)
    world.op(task="fails")
    world.op()
    world.op(user="bob")
    Runner(world.app).run_until_idle()
    world.op()
    counts = world.viewer.read_models.status_counts("A")
    assert counts == {
        Status.ON_HOLD: 1,
        Status.READY: 1,
        Status.IN_PROCESS: 0,
        Status.FINISHED: 2,
        Status.ERROR: 1,
        Status.CANCELLED: 0,
    }
    query = OperationQuery(task="ok", statuses=(Status.FINISHED,), after_entry_no=10**6)
    assert (
        world.viewer.read_models.status_counts("A", query=query)[Status.READY] == 1
    )  # status, paging ignored
    mine = world.viewer.read_models.status_counts("A", query=OperationQuery(user="bob"))
    assert mine == {**dict.fromkeys(Status, 0), Status.FINISHED: 1}
    text = world.viewer.read_models.status_counts("A", query=OperationQuery(text="FAIL"))
    assert sum(text.values()) == 1


def test_status_counts_stop_at_the_cap(world: World) -> None:
    world.app.enqueue_many([EnqueueRequest(task="ok", company="A")] * (COUNT_CAP + 5))
    counts = world.viewer.read_models.status_counts("A")
    assert counts[Status.READY] == COUNT_CAP + 1
    assert format_count(counts[Status.READY]) == "10,000+"
    assert format_count(COUNT_CAP) == "10,000"
    assert world.viewer.read_models.overview("A").ready == COUNT_CAP + 1


def test_a_broad_search_is_counted_in_its_first_matches_only(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import longops.core.read_models as core_read_models

    for _ in range(4):
        world.op(description="broad search")
    world.op(on_hold=True, description="broad search")
    world.op(on_hold=True, description="narrow search")
    monkeypatch.setattr(core_read_models, "COUNT_CAP", 3)
    views = world.viewer.read_models
    broad = views.status_counts("A", query=OperationQuery(text="broad"))
    # At most COUNT_CAP + 1 matches read: their statuses, each a lower bound.
    assert broad.lower_bounds
    assert sum(broad.values()) == 4
    assert broad[Status.READY] <= 4
    assert broad[Status.ON_HOLD] <= 1
    assert broad[Status.FINISHED] == 0
    narrow = views.status_counts("A", query=OperationQuery(text="narrow"))
    assert not narrow.lower_bounds
    assert narrow == {**dict.fromkeys(Status, 0), Status.ON_HOLD: 1}
    # Without a search every status is counted (capped), exactly.
    plain = views.status_counts("A")
    assert not plain.lower_bounds
    assert plain[Status.READY] == 4  # COUNT_CAP + 1: "more than COUNT_CAP"
    assert plain[Status.ON_HOLD] == 2


def test_the_stalled_filter(world: World) -> None:
    world.op()
    world.op()
    world.claim()
    world.op()
    world.clock.advance(timedelta(minutes=11))
    stalled = world.app.store.flag_stalled(world.clock.now())
    assert len(stalled) == 2
    found = world.viewer.service.list_operations(OperationQuery(company="A", stalled=True))
    assert {op.id for op in found} == set(stalled)
    others = world.viewer.service.list_operations(OperationQuery(company="A", stalled=False))
    assert [op.status for op in others] == [Status.READY]
    counts = world.viewer.read_models.status_counts("A", query=OperationQuery(stalled=True))
    assert counts == {**dict.fromkeys(Status, 0), Status.IN_PROCESS: 2}


def test_running_for_user_is_the_users_own_running_operations(world: World) -> None:
    mine = [world.op(), world.op()]
    world.op(user="bob")
    world.claim()
    world.op()  # ready
    assert [op.id for op in world.alice.read_models.running_for_user("A")] == [op.id for op in mine]
    assert len(world.bob.read_models.running_for_user("A")) == 1
    assert world.viewer.read_models.running_for_user("A") == []
    assert world.app.read_models.running_for_user("A") == []


def test_category_activity_counts_running_and_waiting(world: World) -> None:
    world.app.set_category("IDLE", company="A")
    for _ in range(5):
        world.op(category="CAT")
    world.claim()  # two slots
    activity = world.viewer.read_models.category_activity("A")
    assert {code: (a.running, a.waiting) for code, a in activity.items()} == {
        "CAT": (2, 3),
        "IDLE": (0, 0),
    }


def test_session_operations_group_what_each_session_runs(world: World) -> None:
    world.op()
    world.op(user="bob")
    first = world.claim(1)
    second = world.claim(5)
    grouped = world.app.sessions.session_operations()
    assert {sid: [op.id for op in ops] for sid, ops in grouped.items()} == {
        first[0].operation.session_id: [first[0].operation.id],
        second[0].operation.session_id: [second[0].operation.id],
    }
    with pytest.raises(PermissionDenied):
        world.admin.sessions.session_operations()


def test_unknown_operations_are_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.alice.service.update_operation(uuid.uuid4(), description="x")
    with pytest.raises(NotFound):
        world.alice.read_models.list_attempts("A", operation_id=uuid.uuid4())
