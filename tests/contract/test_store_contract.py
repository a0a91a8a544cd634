"""Store contract, part 1: operations (insert, read, list, dedup, actions, cancel, delete).

Every test takes the ``store`` fixture and so runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from contract_support import (
    add_company,
    attempts,
    build,
    category,
    claim,
    finish,
    get,
    insert,
    make_error,
    register,
)

from longops.domain.clock import FrozenClock
from longops.domain.operation import CancelRequest, Outcome, Priority
from longops.domain.recurrence import Recurrence
from longops.domain.retry import ExponentialBackoff
from longops.domain.status import Status, allowed_from, target_of
from longops.store.base import ActionParams, DeletedCopy, OperationQuery, Store

# -- insert / get / list ----------------------------------------------------------------------


def test_insert_get_list_round_trip_every_field(store: Store, clock: FrozenClock) -> None:
    category(store, "POSTING")
    now = clock.now()
    policy = ExponentialBackoff(base=2.0, factor=3.0, maximum=60.0, jitter=0.25)
    new = build(
        clock,
        task="post_invoices",
        args=[2026, "jan", {"nested": [1, 2.5, None, True]}],
        kwargs={"dry_run": False, "limit": 10, "tags": ["a", "b"]},
        description="Post January invoices",
        queue="finance",
        category="POSTING",
        priority="high",
        earliest_start_at=now + timedelta(minutes=1),
        expires_at=now + timedelta(hours=1),
        max_attempts=3,
        rerun_delay=30,
        retry_policy=policy,
        timeout=timedelta(minutes=5, seconds=30),
        recurrence=Recurrence.every(5),
        user="alice",
        dedup_key="invoices-2026-01",
        labels={"team": "finance", "env": "test"},
    )
    [op] = store.insert_operations([new])

    assert op.id == new.id
    assert op.entry_no >= 1
    assert op.company == "default"
    assert op.task == "post_invoices"
    assert op.args == (2026, "jan", {"nested": [1, 2.5, None, True]})
    assert op.kwargs == {"dry_run": False, "limit": 10, "tags": ["a", "b"]}
    assert op.description == "Post January invoices"
    assert op.queue == "finance"
    assert op.category == "POSTING"
    assert op.priority is Priority.HIGH
    assert op.status is Status.READY
    assert op.status_reason is None
    assert op.earliest_start_at == now + timedelta(minutes=1)
    assert op.expires_at == now + timedelta(hours=1)
    assert op.max_attempts == 3
    assert op.attempt_count == 0
    assert op.rerun_delay == 30
    assert op.retry_policy == {
        "kind": "exponential",
        "base": 2.0,
        "factor": 3.0,
        "maximum": 60.0,
        "jitter": 0.25,
    }
    assert op.timeout == timedelta(seconds=330)
    assert op.recurrence == Recurrence(minutes_between_runs=5)
    assert op.user == "alice"
    assert op.created_at == now
    assert op.updated_at == now
    assert op.ready_at == now
    assert (op.started_at, op.ended_at, op.last_error, op.result) == (None, None, None, None)
    assert (op.lease_token, op.session_id, op.cancel_request) == (None, None, None)
    assert op.dedup_key == "invoices-2026-01"
    assert op.labels == {"team": "finance", "env": "test"}

    assert store.get_operation(op.id) == op
    assert store.get_operation(op.id, "default") == op
    assert store.list_operations(OperationQuery()) == [op]


def test_defaults_and_on_hold_round_trip(store: Store, clock: FrozenClock) -> None:
    op = insert(store, clock, on_hold=True)
    assert op.status is Status.ON_HOLD
    assert op.ready_at is None
    assert op.priority is Priority.NORMAL
    assert (op.args, op.kwargs, op.labels) == ((), {}, {})
    assert (op.description, op.category, op.user, op.dedup_key) == (None, None, None, None)
    assert (op.recurrence, op.retry_policy, op.expires_at) == (None, None, None)
    assert op.timeout == timedelta(hours=12)
    assert (op.max_attempts, op.rerun_delay) == (1, 0)
    assert get(store, op) == op


def test_get_operation_unknown_or_other_company_is_none(store: Store, clock: FrozenClock) -> None:
    add_company(store, "acme")
    op = insert(store, clock)
    assert store.get_operation(op.id, "acme") is None
    assert store.get_operation(op.id, "nonexistent") is None
    assert store.get_operation(uuid.uuid4()) is None
    assert get(store, op).company == "default"


def test_entry_no_increases_in_insertion_order(store: Store, clock: FrozenClock) -> None:
    first = insert(store, clock, task="a")
    batch = store.insert_operations([build(clock, task=f"b{i}") for i in range(3)])
    last = insert(store, clock, task="c")
    entry_nos = [op.entry_no for op in [first, *batch, last]]
    assert entry_nos == sorted(entry_nos)
    assert len(set(entry_nos)) == 5
    assert [op.task for op in batch] == ["b0", "b1", "b2"]
    listed = store.list_operations(OperationQuery())
    assert [op.task for op in listed] == ["a", "b0", "b1", "b2", "c"]


def test_list_operations_filters(store: Store, clock: FrozenClock) -> None:
    add_company(store, "acme")
    category(store, "POSTING")
    category(store, "POSTING", company="acme")
    a = insert(store, clock, task="a", queue="q1", category="POSTING")
    b = insert(store, clock, task="b", queue="q2")
    c = insert(store, clock, task="a", company="acme", queue="q1", category="POSTING")
    d = insert(store, clock, task="a", on_hold=True)
    sid = register(store, clock.now())
    [run] = claim(store, sid, clock.now(), queues=("q2",))
    assert run.operation.id == b.id

    def ids(**kw: object) -> list[uuid.UUID]:
        return [op.id for op in store.list_operations(OperationQuery(**kw))]  # type: ignore[arg-type]

    assert ids() == [a.id, b.id, c.id, d.id]
    assert ids(statuses=(Status.READY,)) == [a.id, c.id]
    assert ids(statuses=(Status.ON_HOLD, Status.IN_PROCESS)) == [b.id, d.id]
    assert ids(statuses=(Status.FINISHED,)) == []
    assert ids(task="a") == [a.id, c.id, d.id]
    assert ids(category="POSTING") == [a.id, c.id]
    assert ids(queue="q1") == [a.id, c.id]
    assert ids(company="acme") == [c.id]
    assert ids(company="default") == [a.id, b.id, d.id]
    assert ids(company="default", task="a", category="POSTING", queue="q1") == [a.id]
    assert ids(company="default", statuses=(Status.READY,)) == [a.id]
    assert ids(limit=2) == [a.id, b.id]
    assert ids(after_entry_no=b.entry_no) == [c.id, d.id]
    assert ids(after_entry_no=d.entry_no) == []


def test_list_operations_keyset_paging(store: Store, clock: FrozenClock) -> None:
    made = store.insert_operations([build(clock, task=f"t{i}") for i in range(5)])
    pages: list[list[uuid.UUID]] = []
    after: int | None = None
    while True:
        page = store.list_operations(OperationQuery(limit=2, after_entry_no=after))
        if not page:
            break
        pages.append([op.id for op in page])
        after = page[-1].entry_no
    assert pages == [[made[0].id, made[1].id], [made[2].id, made[3].id], [made[4].id]]


def test_count_operations(store: Store, clock: FrozenClock) -> None:
    add_company(store, "acme")
    empty = store.count_operations()
    assert empty == dict.fromkeys(Status, 0)
    insert(store, clock)
    insert(store, clock)
    insert(store, clock, on_hold=True)
    insert(store, clock, company="acme")
    sid = register(store, clock.now())
    make_error(store, clock, sid, clock.now())
    counts = store.count_operations()
    assert set(counts) == set(Status)
    assert counts[Status.READY] == 3
    assert counts[Status.ON_HOLD] == 1
    assert counts[Status.ERROR] == 1
    assert counts[Status.IN_PROCESS] == counts[Status.FINISHED] == counts[Status.CANCELLED] == 0
    assert store.count_operations("acme") == {**dict.fromkeys(Status, 0), Status.READY: 1}
    assert store.count_operations("default")[Status.READY] == 2


# -- dedup and bulk -------------------------------------------------------------------------


def test_dedup_returns_the_active_holder(store: Store, clock: FrozenClock) -> None:
    first = insert(store, clock, task="a", dedup_key="k")
    clock.advance(seconds=1)
    again = insert(store, clock, task="b", dedup_key="k", args=[1])
    assert again == first
    [x, y] = store.insert_operations(
        [build(clock, task="c", dedup_key="k2"), build(clock, task="d", dedup_key="k2")]
    )
    assert y.id == x.id
    assert y.task == "c"
    assert [op.task for op in store.list_operations(OperationQuery())] == ["a", "c"]


def test_dedup_holds_while_on_hold_and_in_process(store: Store, clock: FrozenClock) -> None:
    held = insert(store, clock, dedup_key="h", on_hold=True)
    assert insert(store, clock, dedup_key="h").id == held.id
    running = insert(store, clock, dedup_key="r")
    sid = register(store, clock.now())
    [run] = claim(store, sid, clock.now())
    assert run.operation.id == running.id
    again = insert(store, clock, dedup_key="r")
    assert again.id == running.id
    assert again.status is Status.IN_PROCESS
    assert sum(store.count_operations().values()) == 2


def test_dedup_releases_key_when_done(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    first = insert(store, clock, dedup_key="k")
    [run] = claim(store, sid, clock.now())
    assert finish(store, run, clock.now())
    second = insert(store, clock, dedup_key="k")
    assert second.id != first.id
    assert second.status is Status.READY
    assert get(store, first).status is Status.FINISHED

    cancelled = store.apply_action(
        ActionParams(second.id, None, allowed_from("cancel"), target_of("cancel"), clock.now())
    )
    assert cancelled is not None
    assert cancelled.status is Status.CANCELLED
    third = insert(store, clock, dedup_key="k")
    assert third.id not in (first.id, second.id)
    assert len(store.list_operations(OperationQuery())) == 3


def test_dedup_is_per_company_and_ignores_missing_keys(store: Store, clock: FrozenClock) -> None:
    add_company(store, "acme")
    a = insert(store, clock, dedup_key="k")
    b = insert(store, clock, dedup_key="k", company="acme")
    assert a.id != b.id
    assert (a.company, b.company) == ("default", "acme")
    n1 = insert(store, clock)
    n2 = insert(store, clock)
    assert n1.id != n2.id
    assert sum(store.count_operations().values()) == 4


@pytest.mark.parametrize("on_hold", [False, True])
def test_an_inserted_operation_is_what_reading_it_back_gives(
    store: Store, clock: FrozenClock, on_hold: bool
) -> None:
    """One plain enqueue on PostgreSQL gets back only its entry number and builds the rest
    from what it sent: every field must be what the row says."""
    category(store, "POSTING", max_concurrent=5)
    now = clock.now()
    new = build(
        clock,
        task="report",
        args=[1, "two", [3.5], {"four": None}],
        kwargs={"month": "2026-01", "n": (1, 2)},
        description="monthly",
        queue="reports",
        category="POSTING",
        priority="high",
        earliest_start_at=now + timedelta(minutes=5),
        expires_at=now + timedelta(hours=1),
        max_attempts=3,
        rerun_delay=7,
        retry_policy={"kind": "business_central"},
        timeout=90.5,
        recurrence=Recurrence.every(5),
        user="u",
        labels={"team": "finance"},
        on_hold=on_hold,
        stall_after=timedelta(seconds=42),
    )
    [op] = store.insert_operations([new])
    assert op == store.get_operation(new.id)
    assert op.entry_no == store.last_entry_no()
    plain = build(clock)
    [second] = store.insert_operations([plain])
    assert second == store.get_operation(plain.id)
    assert second.entry_no == op.entry_no + 1


def test_insert_operations_bulk(store: Store, clock: FrozenClock) -> None:
    category(store, "POSTING", max_concurrent=5)
    now = clock.now()
    built = [
        build(
            clock,
            task=f"t{i}",
            args=[i],
            kwargs={"i": i},
            queue="bulk",
            category="POSTING",
            priority="low",
            expires_at=now + timedelta(hours=1),
            recurrence=Recurrence.every(5),
            retry_policy={"kind": "business_central"},
            timeout=90,
            user="u",
            labels={"n": str(i)},
            on_hold=i == 0,
        )
        for i in range(25)
    ]
    assert store.insert_operations_bulk(built) == 25
    listed = store.list_operations(OperationQuery(limit=100))
    assert [op.id for op in listed] == [b.id for b in built]
    first, second = listed[0], listed[1]
    assert first.status is Status.ON_HOLD
    assert first.ready_at is None
    assert second.status is Status.READY
    assert second.ready_at == now
    assert second.args == (1,)
    assert second.kwargs == {"i": 1}
    assert (second.queue, second.category, second.priority) == ("bulk", "POSTING", Priority.LOW)
    assert second.expires_at == now + timedelta(hours=1)
    assert second.recurrence == Recurrence.every(5)
    assert second.retry_policy == {"kind": "business_central"}
    assert second.timeout == timedelta(seconds=90)
    assert (second.user, second.labels) == ("u", {"n": "1"})
    assert (second.created_at, second.updated_at, second.attempt_count) == (now, now, 0)
    assert store.insert_operations_bulk([]) == 0


def test_insert_operations_bulk_with_dedup_keys_keeps_one(store: Store, clock: FrozenClock) -> None:
    holder = insert(store, clock, dedup_key="k0")
    a = build(clock, dedup_key="k1")
    b = build(clock, dedup_key="k1")
    c = build(clock)
    d = build(clock, dedup_key="k0")
    store.insert_operations_bulk([a, b, c, d])
    ids = [op.id for op in store.list_operations(OperationQuery())]
    assert ids == [holder.id, a.id, c.id]
    assert store.get_operation(b.id) is None
    assert store.get_operation(d.id) is None


# -- apply_action ---------------------------------------------------------------------------


def test_a_status_reason_outside_the_vocabulary_is_refused(
    store: Store, clock: FrozenClock
) -> None:
    # domain.status.StatusReason is the database's rule too (migration 0011): a free-text
    # reason is refused and the row stays as it was.
    op = insert(store, clock, user="alice")
    at = clock.advance(seconds=10)
    bad = ActionParams(op.id, "default", allowed_from("hold"), target_of("hold"), at, "paused")
    with pytest.raises(Exception, match="operation_status_reason"):
        store.apply_action(bad)
    assert get(store, op) == op


def test_apply_action_moves_status(store: Store, clock: FrozenClock) -> None:
    op = insert(store, clock, user="alice")
    at = clock.advance(seconds=10)
    held = store.apply_action(
        ActionParams(op.id, "default", allowed_from("hold"), target_of("hold"), at, "retry")
    )
    assert held is not None
    assert held.status is Status.ON_HOLD
    assert held.status_reason == "retry"
    assert held.updated_at == at
    assert held.user == "alice"  # a None user leaves it alone
    assert held.earliest_start_at == op.earliest_start_at  # None leaves it alone
    assert held.ready_at == op.ready_at
    assert held.ended_at is None
    assert get(store, op) == held

    at2 = clock.advance(seconds=10)
    cancelled = store.apply_action(
        ActionParams(
            op.id, None, allowed_from("cancel"), target_of("cancel"), at2, "cancelled", user="bob"
        )
    )
    assert cancelled is not None
    assert (cancelled.status, cancelled.status_reason) == (Status.CANCELLED, "cancelled")
    assert (cancelled.ended_at, cancelled.updated_at, cancelled.user) == (at2, at2, "bob")


def test_apply_action_refused_changes_nothing(store: Store, clock: FrozenClock) -> None:
    add_company(store, "acme")
    ready = insert(store, clock)
    sid = register(store, clock.now())
    running = insert(store, clock, queue="other")
    [run] = claim(store, sid, clock.now(), queues=("other",))
    at = clock.advance(seconds=5)
    before_ready, before_running = get(store, ready), get(store, running)

    for action in ("restart", "set_ready"):  # not allowed from ready
        params = ActionParams(ready.id, None, allowed_from(action), target_of(action), at)
        assert store.apply_action(params) is None
    for action in ("cancel", "hold", "restart", "run_now"):  # nothing applies to in_process
        params = ActionParams(running.id, None, allowed_from(action), target_of(action), at)
        assert store.apply_action(params) is None
    wrong_company = ActionParams(ready.id, "acme", allowed_from("hold"), Status.ON_HOLD, at)
    assert store.apply_action(wrong_company) is None
    unknown = ActionParams(uuid.uuid4(), None, allowed_from("hold"), Status.ON_HOLD, at)
    assert store.apply_action(unknown) is None

    assert get(store, ready) == before_ready
    assert get(store, running) == before_running
    assert attempts(store, run)[0].outcome is Outcome.IN_PROCESS


def test_apply_action_restart_resets_and_clears(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    failed = make_error(store, clock, sid, clock.now(), max_attempts=1, user="alice")
    assert (failed.attempt_count, failed.last_error) == (1, "x")
    at = clock.advance(seconds=60)
    start = at + timedelta(minutes=5)
    restarted = store.apply_action(
        ActionParams(
            failed.id,
            "default",
            allowed_from("restart"),
            target_of("restart"),
            at,
            status_reason="run_now",
            earliest_start_at=start,
            reset_attempts=True,
            user="bob",
        )
    )
    assert restarted is not None
    assert restarted.status is Status.READY
    assert restarted.status_reason == "run_now"
    assert restarted.attempt_count == 0
    assert restarted.last_error is None
    assert restarted.earliest_start_at == start
    assert restarted.ready_at == at
    assert restarted.updated_at == at
    assert restarted.user == "bob"
    assert get(store, failed) == restarted


def test_apply_action_without_reset_keeps_attempts(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    failed = make_error(store, clock, sid, clock.now())
    at = clock.advance(seconds=1)
    ready = store.apply_action(
        ActionParams(failed.id, None, allowed_from("set_ready"), Status.READY, at)
    )
    assert ready is not None
    assert ready.attempt_count == 1
    assert ready.last_error is None  # ready clears the last error
    held = store.apply_action(
        ActionParams(failed.id, None, allowed_from("hold"), Status.ON_HOLD, at)
    )
    assert held is not None
    assert held.attempt_count == 1


def test_apply_action_cancel_request_cleared_or_kept(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    ops = [insert(store, clock), insert(store, clock)]
    runs = claim(store, sid, clock.now())
    at = clock.advance(seconds=1)
    for run in runs:
        assert store.request_cancel(run.operation.id, None, at, "carol", "stop") is not None
        assert finish(store, run, at, status=Status.CANCELLED, outcome=Outcome.CANCELLED)
    request = CancelRequest(at, "carol", "stop")
    assert [get(store, op).cancel_request for op in ops] == [request, request]

    at2 = clock.advance(seconds=1)
    cleared = store.apply_action(
        ActionParams(ops[0].id, None, allowed_from("restart"), Status.READY, at2)
    )
    kept = store.apply_action(
        ActionParams(
            ops[1].id, None, allowed_from("restart"), Status.ON_HOLD, at2,
            clear_cancel_request=False,
        )
    )  # fmt: skip
    assert cleared is not None
    assert kept is not None
    assert cleared.cancel_request is None
    assert kept.cancel_request == request


# -- request_cancel -------------------------------------------------------------------------


def test_request_cancel_only_in_process_and_once(store: Store, clock: FrozenClock) -> None:
    add_company(store, "acme")
    sid = register(store, clock.now())
    running = insert(store, clock)
    [run] = claim(store, sid, clock.now())
    ready = insert(store, clock)
    held = insert(store, clock, on_hold=True)
    at = clock.advance(seconds=3)

    assert store.request_cancel(ready.id, None, at, "u", "r") is None
    assert store.request_cancel(held.id, None, at, "u", "r") is None
    assert store.request_cancel(running.id, "acme", at, "u", "r") is None
    assert get(store, ready) == ready
    assert get(store, held) == held
    assert get(store, running).cancel_request is None

    requested = store.request_cancel(running.id, "default", at, "carol", "too slow")
    assert requested is not None
    assert requested.cancel_request == CancelRequest(at, "carol", "too slow")
    assert requested.status is Status.IN_PROCESS
    assert requested.lease_token == run.lease_token
    assert requested.updated_at == at

    later = clock.advance(seconds=3)
    assert store.request_cancel(running.id, None, later, "dave", "again") is None
    assert get(store, running) == requested


def test_cancel_requested_returns_exactly_the_requested(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    a, b = insert(store, clock), insert(store, clock)
    runs = claim(store, sid, clock.now())
    assert len(runs) == 2
    c = insert(store, clock)
    assert store.cancel_requested([a.id, b.id, c.id]) == []
    assert store.request_cancel(b.id, None, clock.now(), None, None) is not None
    assert [s.operation_id for s in store.cancel_requested([a.id, b.id, c.id, uuid.uuid4()])] == [
        b.id
    ]
    assert store.cancel_requested([a.id, c.id]) == []
    assert store.cancel_requested([]) == []
    # a run that is handed back is no longer "cancel requested"
    [run_b] = [r for r in runs if r.operation.id == b.id]
    assert finish(store, run_b, clock.now(), status=Status.CANCELLED, outcome=Outcome.CANCELLED)
    assert store.cancel_requested([b.id]) == []


# -- delete ----------------------------------------------------------------------------------


def test_delete_operation(store: Store, clock: FrozenClock) -> None:
    add_company(store, "acme")
    sid = register(store, clock.now())
    running = insert(store, clock)
    [run] = claim(store, sid, clock.now())
    ready = insert(store, clock)
    held = insert(store, clock, on_hold=True)
    failed = make_error(store, clock, sid, clock.now())
    before = get(store, running)

    assert store.delete_operation(running.id, None) is False
    assert get(store, running) == before
    assert attempts(store, run)[0].outcome is Outcome.IN_PROCESS
    assert store.delete_operation(ready.id, "acme") is False
    assert get(store, ready) == ready
    assert store.delete_operation(uuid.uuid4(), None) is False

    assert store.delete_operation(ready.id, "default") is True
    assert store.delete_operation(held.id, None) is True
    assert store.delete_operation(failed.id, None) is True
    assert store.delete_operation(failed.id, None) is False
    for op in (ready, held, failed):
        assert store.get_operation(op.id) is None
    assert [op.id for op in store.list_operations(OperationQuery())] == [running.id]


def test_restore_operation(store: Store, clock: FrozenClock) -> None:
    """A Delete that keeps a copy (the pages' Undo) can be put back as it was, by its
    deleter, in time, once; the timeline stays meanwhile and goes with the copy."""
    sid = register(store, clock.now())
    failed = make_error(store, clock, sid, clock.now())  # a status, attempts and a timeline
    before = get(store, failed)
    timeline = store.list_events(failed.id)
    assert timeline
    now = clock.now()
    keep = DeletedCopy(at=now, until=now + timedelta(seconds=10), by="alice")
    assert store.delete_operation(failed.id, "default", keep=keep) is True
    assert store.get_operation(failed.id) is None
    assert store.list_events(failed.id) == timeline  # kept for the Undo
    # Not by another user, not in another company, not past its time.
    assert store.restore_operation(failed.id, "default", now, "bob") is False
    assert store.restore_operation(failed.id, "acme", now, "alice") is False
    late = now + timedelta(seconds=11)
    assert store.restore_operation(failed.id, "default", now + timedelta(seconds=5), "alice")
    restored = get(store, failed)
    assert restored == before  # same id, entry number, status, error, everything
    assert store.list_events(failed.id) == timeline
    assert store.restore_operation(failed.id, "default", now, "alice") is False  # once
    # A copy past its time is not put back, and its timeline goes when it is purged.
    held = insert(store, clock, on_hold=True)
    assert store.delete_operation(held.id, None, keep=keep) is True
    assert store.restore_operation(held.id, None, late, "alice") is False
    assert store.get_operation(held.id) is None
    assert store.list_events(held.id) == []
    # A plain Delete keeps nothing to put back; an operation in process is not deleted.
    ready = insert(store, clock)
    assert store.delete_operation(ready.id, None) is True
    assert store.restore_operation(ready.id, None, now, None) is False
    running = insert(store, clock)
    claim(store, sid, clock.now())
    assert get(store, running).status is Status.IN_PROCESS
    assert store.delete_operation(running.id, None, keep=keep) is False
    assert store.restore_operation(running.id, None, now, "alice") is False
    assert get(store, running).status is Status.IN_PROCESS


def test_delete_failed(store: Store, clock: FrozenClock) -> None:
    add_company(store, "acme")
    sid = register(store, clock.now())
    t0 = clock.now()
    old = make_error(store, clock, sid, t0)
    old_recurring = make_error(store, clock, sid, t0, recurrence=Recurrence.every(5))
    other_company = make_error(store, clock, sid, t0, company="acme")
    recent = make_error(store, clock, sid, t0 + timedelta(minutes=10))
    finished = insert(store, clock, queue="fin")
    [run] = claim(store, sid, clock.now(), queues=("fin",))
    assert finish(store, run, t0)
    ready = insert(store, clock)

    cut = t0 + timedelta(minutes=5)
    assert store.delete_failed("default", cut) == 1
    assert store.get_operation(old.id) is None
    for op in (old_recurring, other_company, recent):
        assert get(store, op).status is Status.ERROR
    assert get(store, finished).status is Status.FINISHED
    assert get(store, ready).status is Status.READY
    assert store.delete_failed("default", cut) == 0
    assert store.delete_failed("acme", cut) == 1
    assert store.get_operation(other_company.id) is None
