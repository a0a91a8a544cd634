"""Store contract, part 5: operation tracking — progress writes, checkpoints, stall flags,
cancel requests and their modes, the timeline, and what wait reasons are derived from.

Every test takes the ``store`` fixture and so runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import timedelta

import pytest
from contract_support import (
    add_company,
    attempts,
    category,
    claim,
    finish,
    get,
    insert,
    register,
    session,
)

from longops.domain.clock import FrozenClock
from longops.domain.operation import CancelMode, Company, EventType, Outcome, StopMode
from longops.domain.progress import Progress
from longops.domain.security import PermissionSet
from longops.domain.status import Status, allowed_from, target_of
from longops.domain.users import User, UserState
from longops.store._sql import SqlStore
from longops.store.base import ActionParams, ProgressUpdate, Store


def reading(completed: float, total: float = 10, **kw: object) -> str:
    return json.dumps(Progress(completed=completed, total=total, **kw).to_json())  # type: ignore[arg-type]


def types(store: Store, op_id: uuid.UUID) -> list[EventType]:
    return [e.type for e in store.list_events(op_id)]


def test_progress_is_written_under_the_lease_and_logged(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    op = insert(store, clock)
    [run] = claim(store, sid, clock.now())
    clock.advance(seconds=2)
    update = ProgressUpdate(
        op.id, run.lease_token, clock.now(), reading(3, unit="rows"), moved=True
    )
    assert store.flush_progress([update]) == [True]
    stored = get(store, op)
    assert stored.progress == Progress(completed=3, total=10, unit="rows")
    # A stale lease (the run was rescued and claimed again) writes nothing.
    stale = ProgressUpdate(op.id, uuid.uuid4(), clock.now(), reading(9), moved=True)
    assert store.flush_progress([stale, update]) == [False, True]
    assert get(store, op).progress == Progress(completed=3, total=10, unit="rows")
    events = store.list_events(op.id, types=(EventType.PROGRESS,))
    assert [e.data["completed"] for e in events] == [3, 3]
    assert {e.run_no for e in events} == {1}


def test_a_batch_of_progress_writes_touches_only_live_runs(
    store: Store, clock: FrozenClock
) -> None:
    sid = register(store, clock.now())
    ops = [insert(store, clock) for _ in range(3)]
    runs = claim(store, sid, clock.now())
    assert finish(store, runs[1], clock.now())  # one of them has ended meanwhile
    updates = [
        ProgressUpdate(r.operation.id, r.lease_token, clock.now(), reading(i + 1), moved=True)
        for i, r in enumerate(runs)
    ]
    assert store.flush_progress(updates) == [True, False, True]
    assert [get(store, o).progress for o in ops] == [
        Progress(completed=1, total=10),
        None,
        Progress(completed=3, total=10),
    ]
    assert store.flush_progress([]) == []


def test_stall_flag_follows_the_operation_own_stall_after(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    slow = insert(store, clock, stall_after=timedelta(seconds=60))
    fast = insert(store, clock, stall_after=timedelta(seconds=600))
    runs = {r.operation.id: r for r in claim(store, sid, clock.now())}
    clock.advance(seconds=59)
    assert store.flag_stalled(clock.now()) == []
    clock.advance(seconds=1)
    assert store.flag_stalled(clock.now()) == [slow.id]
    assert store.flag_stalled(clock.now()) == []  # flagged once
    assert get(store, slow).stalled_at == clock.now()
    assert get(store, fast).stalled_at is None
    # Progress that moves ends the stall (and the clock restarts from it).
    clock.advance(seconds=5)
    run = runs[slow.id]
    update = ProgressUpdate(slow.id, run.lease_token, clock.now(), reading(1), moved=True)
    assert store.flush_progress([update]) == [True]
    assert get(store, slow).stalled_at is None
    assert types(store, slow.id)[-3:] == [
        EventType.STALLED,
        EventType.PROGRESS,
        EventType.UNSTALLED,
    ]
    clock.advance(seconds=59)
    assert store.flag_stalled(clock.now()) == []
    clock.advance(seconds=1)
    assert store.flag_stalled(clock.now()) == [slow.id]
    # A finished operation is not stalled.
    assert finish(store, run, clock.now())
    assert get(store, slow).stalled_at is None


def test_checkpoint_is_fenced_kept_for_retries_and_cleared_by_success(
    store: Store, clock: FrozenClock
) -> None:
    sid = register(store, clock.now())
    op = insert(store, clock, max_attempts=3)
    [run] = claim(store, sid, clock.now())
    assert store.save_checkpoint(op.id, uuid.uuid4(), clock.now(), '{"next":1}') is False
    assert store.save_checkpoint(
        op.id, run.lease_token, clock.now(), '{"next":100}', reading(100, 1000)
    )
    stored = get(store, op)
    assert (stored.checkpoint, stored.checkpoint_at) == ({"next": 100}, clock.now())
    assert stored.progress == Progress(completed=100, total=1000)
    assert EventType.CHECKPOINT in types(store, op.id)
    # A failed run keeps it for the next attempt ...
    assert finish(store, run, clock.now(), status=Status.READY, outcome=Outcome.ERROR)
    assert get(store, op).checkpoint == {"next": 100}
    [again] = claim(store, sid, clock.now())
    assert again.operation.checkpoint == {"next": 100}
    # ... and a successful one clears it.
    assert finish(store, again, clock.now(), clear_checkpoint=True)
    assert (get(store, op).checkpoint, get(store, op).checkpoint_at) == (None, None)


def test_restart_clears_the_checkpoint_set_ready_keeps_it(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    op = insert(store, clock)
    [run] = claim(store, sid, clock.now())
    assert store.save_checkpoint(op.id, run.lease_token, clock.now(), '{"next":5}')
    assert finish(store, run, clock.now(), status=Status.ERROR, outcome=Outcome.ERROR)

    def act(action: str, clear: bool) -> None:
        done = store.apply_action(
            ActionParams(
                op.id,
                None,
                allowed_from(action),
                target_of(action),
                clock.now(),
                reset_attempts=True,
                action=action,
                clear_checkpoint=clear,
            )
        )
        assert done is not None

    act("set_ready", False)
    assert get(store, op).checkpoint == {"next": 5}
    [run] = claim(store, sid, clock.now())
    assert finish(store, run, clock.now(), status=Status.ERROR, outcome=Outcome.ERROR)
    act("restart", True)
    assert get(store, op).checkpoint is None


def test_final_reading_goes_to_operation_and_attempt(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    op = insert(store, clock)
    [run] = claim(store, sid, clock.now())
    update = ProgressUpdate(op.id, run.lease_token, clock.now(), reading(4), moved=True)
    assert store.flush_progress([update])
    assert finish(
        store,
        run,
        clock.now(),
        status=Status.CANCELLED,
        outcome=Outcome.CANCELLED,
        progress_json=reading(7),
        stop_mode=StopMode.FORCED,
        cancel_mode=CancelMode.FORCED,
    )
    stored = get(store, op)
    assert stored.progress == Progress(completed=7, total=10)
    assert stored.cancel_mode is CancelMode.FORCED
    [attempt] = attempts(store, op)
    assert attempt.progress == Progress(completed=7, total=10)
    assert attempt.stop_mode is StopMode.FORCED
    ended = store.list_events(op.id, types=(EventType.ATTEMPT_ENDED,))
    assert [e.data["outcome"] for e in ended] == ["cancelled"]
    assert ended[0].data["stop_mode"] == "forced"


def test_without_a_final_reading_the_attempt_keeps_the_last_written_one(
    store: Store, clock: FrozenClock
) -> None:
    sid = register(store, clock.now())
    op = insert(store, clock)
    [run] = claim(store, sid, clock.now())
    assert store.flush_progress(
        [ProgressUpdate(op.id, run.lease_token, clock.now(), reading(2), moved=True)]
    )
    # The rescuer records a lost run without any reading of its own.
    assert finish(store, run, clock.now(), status=Status.ERROR, outcome=Outcome.LOST)
    assert get(store, op).progress == Progress(completed=2, total=10)
    assert attempts(store, op)[0].progress == Progress(completed=2, total=10)


def test_claim_starts_the_new_attempt_with_a_clean_reading(
    store: Store, clock: FrozenClock
) -> None:
    sid = register(store, clock.now())
    op = insert(store, clock, max_attempts=2)
    [run] = claim(store, sid, clock.now())
    store.flush_progress(
        [ProgressUpdate(op.id, run.lease_token, clock.now(), reading(9), moved=True)]
    )
    clock.advance(seconds=700)
    assert store.flag_stalled(clock.now()) == [op.id]
    assert finish(store, run, clock.now(), status=Status.READY, outcome=Outcome.ERROR)
    [again] = claim(store, sid, clock.now())
    assert (again.operation.progress, again.operation.stalled_at) == (None, None)
    assert types(store, op.id).count(EventType.ATTEMPT_STARTED) == 2


def test_cancel_request_then_forced_upgrade(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    op = insert(store, clock)
    claim(store, sid, clock.now())
    first_at = clock.now()
    asked = store.request_cancel(op.id, None, first_at, "alice", "wrong month")
    assert asked is not None
    assert asked.cancel_request is not None
    assert (asked.cancel_request.requested_by, asked.cancel_request.force) == ("alice", False)
    # Asking again changes nothing; asking with force upgrades the request.
    clock.advance(seconds=3)
    assert store.request_cancel(op.id, None, clock.now(), "bob", None) is None
    forced = store.request_cancel(op.id, None, clock.now(), "bob", None, force=True)
    assert forced is not None
    assert forced.cancel_request is not None
    assert forced.cancel_request.force is True
    assert forced.cancel_request.requested_at == first_at  # the time it took counts from here
    # Who first asked, and why, stay; the timeline has the forced request by bob too.
    assert (forced.cancel_request.requested_by, forced.cancel_request.reason) == (
        "alice",
        "wrong month",
    )
    assert store.request_cancel(op.id, None, clock.now(), "bob", None, force=True) is None
    [signal] = store.cancel_requested([op.id])
    assert (signal.force, signal.reason, signal.requested_by) == (True, "wrong month", "alice")
    requested = store.list_events(op.id, types=(EventType.CANCEL_REQUESTED,))
    assert [(e.data["force"], e.data["by"]) for e in requested] == [(False, "alice"), (True, "bob")]


def test_cancel_before_start_records_who_why_and_mode(store: Store, clock: FrozenClock) -> None:
    op = insert(store, clock)
    done = store.apply_action(
        ActionParams(
            op.id,
            None,
            allowed_from("cancel"),
            target_of("cancel"),
            clock.now(),
            status_reason="cancelled",
            action="cancel",
            cancel_mode=CancelMode.BEFORE_START,
            cancel_by="alice",
            cancel_reason="not needed",
        )
    )
    assert done is not None
    assert done.status is Status.CANCELLED
    assert done.cancel_mode is CancelMode.BEFORE_START
    assert done.cancel_request is not None
    assert (done.cancel_request.requested_by, done.cancel_request.reason) == ("alice", "not needed")
    changed = store.list_events(op.id, types=(EventType.STATUS_CHANGED,))
    assert [(e.data["action"], e.data["status"], e.data["by"]) for e in changed] == [
        ("cancel", "cancelled", "alice")
    ]
    # Restarting clears the record of the cancel.
    again = store.apply_action(
        ActionParams(
            op.id,
            None,
            allowed_from("restart"),
            target_of("restart"),
            clock.now(),
            action="restart",
        )
    )
    assert again is not None
    assert (again.cancel_request, again.cancel_mode) == (None, None)


def test_expired_operations_say_so(store: Store, clock: FrozenClock) -> None:
    op = insert(store, clock, expires_at=clock.now() + timedelta(seconds=5))
    clock.advance(seconds=5)
    assert store.expire_operations(clock.now()) == [op.id]
    assert get(store, op).cancel_mode is CancelMode.EXPIRED
    [event] = store.list_events(op.id)
    assert (event.type, event.data["action"]) == (EventType.STATUS_CHANGED, "expire")


def test_cancel_overdue_and_run_events_are_fenced(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    op = insert(store, clock)
    [run] = claim(store, sid, clock.now())
    assert store.mark_cancel_overdue(op.id, uuid.uuid4(), clock.now(), {}) is False
    assert store.mark_cancel_overdue(op.id, run.lease_token, clock.now(), {"cause": "cancel"})
    assert store.mark_cancel_overdue(op.id, run.lease_token, clock.now(), {}) is False  # once
    assert get(store, op).cancel_overdue_at == clock.now()
    assert store.record_run_event(op.id, uuid.uuid4(), clock.now(), EventType.TIMEOUT, {}) is False
    assert store.record_run_event(op.id, run.lease_token, clock.now(), EventType.TIMEOUT, {"s": 1})
    assert types(store, op.id) == [
        EventType.ATTEMPT_STARTED,
        EventType.CANCEL_OVERDUE,
        EventType.TIMEOUT,
    ]


def test_events_page_by_id_and_filter_by_type(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    op = insert(store, clock)
    [run] = claim(store, sid, clock.now())
    for i in range(5):
        store.flush_progress(
            [ProgressUpdate(op.id, run.lease_token, clock.now(), reading(i), moved=True)]
        )
    every = store.list_events(op.id)
    assert [e.id for e in every] == sorted(e.id for e in every)
    assert len(every) == 6
    after = store.list_events(op.id, after_id=every[2].id)
    assert after == every[3:]
    assert store.list_events(op.id, limit=2) == every[:2]
    assert [e.type for e in store.list_events(op.id, types=(EventType.ATTEMPT_STARTED,))] == [
        EventType.ATTEMPT_STARTED
    ]
    other = insert(store, clock)
    assert store.list_events(other.id) == []


def test_deleting_an_operation_forgets_its_timeline(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    op = insert(store, clock)
    [run] = claim(store, sid, clock.now())
    assert finish(store, run, clock.now())
    assert store.list_events(op.id)
    assert store.delete_operation(op.id, None)
    assert store.list_events(op.id) == []


def test_pruning_removes_old_timelines_but_not_of_operations_in_error(
    store: Store, clock: FrozenClock
) -> None:
    sid = register(store, clock.now())
    kept, gone = insert(store, clock, queue="a"), insert(store, clock, queue="b")
    [run_kept] = claim(store, sid, clock.now(), queues=("a",))
    [run_gone] = claim(store, sid, clock.now(), queues=("b",))
    assert finish(store, run_kept, clock.now(), status=Status.ERROR, outcome=Outcome.ERROR)
    assert finish(store, run_gone, clock.now())
    clock.advance(timedelta(days=31))
    store.prune(clock.now() - timedelta(days=30))
    assert store.list_events(gone.id) == []
    assert len(store.list_events(kept.id)) == 2


def test_wait_context_reads_categories_holders_and_served_queues(
    store: Store, clock: FrozenClock
) -> None:
    category(store, "POSTING", max_concurrent=2)
    category(store, "EXPORT", paused=True)
    store.set_queue_paused("slow", True, clock.now())
    sid = register(store, clock.now(), queues=("default", "reports"))
    held = insert(store, clock, category="POSTING")
    claim(store, sid, clock.now())
    ctx = store.wait_context(clock.now())
    assert ctx.now == clock.now()
    assert ctx.paused_queues == frozenset({"slow"})
    assert ctx.served_queues == frozenset({"default", "reports"})
    posting = ctx.categories[("default", "POSTING")]
    assert (posting.max_concurrent, posting.paused, posting.holders) == (2, False, (held.id,))
    assert ctx.categories[("default", "EXPORT")].paused is True


def test_the_wait_context_is_the_same_as_its_eight_reads(
    store: Store, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL reads the wait context in one statement: it must say exactly what the
    eight plain reads say (categories and holders, served queues and companies, running
    counts, paused queues, companies, users with their state and grants)."""
    add_company(store, "ACME")
    store.upsert_company(Company("LIMITED", "Limited", "Europe/Berlin", max_in_process=3))
    category(store, "POSTING", max_concurrent=2)
    category(store, "EXPORT", paused=True, company="ACME")
    store.set_queue_paused("slow", True, clock.now())
    sid = register(store, clock.now(), queues=("default", "reports"))
    narrow = dataclasses.replace(session(clock.now(), ("acme",)), companies=("ACME",))
    store.register_session(narrow)
    held = insert(store, clock, category="POSTING")
    insert(store, clock, company="ACME", queue="acme")
    claim(store, sid, clock.now())
    claim(store, narrow.id, clock.now(), queues=("acme",))
    for name, state in (("alice", UserState.ACTIVE), ("bob", UserState.DISABLED)):
        user = User(name, name.title(), state, False, clock.now(), None, False)
        assert store.insert_user(user, "hash" if name == "alice" else None)
    assert store.grant("alice", "ACME", PermissionSet.USER, clock.now())
    assert store.grant("alice", "default", PermissionSet.VIEW, clock.now())
    assert store.set_user_state("bob", UserState.DISABLED, clock.now())

    ctx = store.wait_context(clock.now())
    assert isinstance(store, SqlStore)
    # The same store, its context read with the eight plain queries (SqlStore's own way).
    monkeypatch.setattr(store, "_wait_rows", lambda: SqlStore._wait_rows(store))
    plain = store.wait_context(clock.now())
    assert ctx.categories[("default", "POSTING")].holders == (held.id,)
    assert ctx.served_companies["acme"] == frozenset({"ACME"})
    assert ctx.companies["ACME"].running == 1
    assert ctx.users is not None
    assert not ctx.users["bob"].active
    assert ctx == plain


def test_the_wait_context_carries_maintenance_mode(store: Store, clock: FrozenClock) -> None:
    """The wait reasons' one read says whether maintenance mode holds everything back (no
    second read for it), the same in one statement (PostgreSQL) as in the plain reads."""
    off = store.wait_context(clock.now())
    assert off.maintenance is not None
    assert not off.maintenance.active
    started = clock.now()
    assert store.start_maintenance("upgrade", timedelta(seconds=30), started) is not None
    on = store.wait_context(clock.now())
    assert on.maintenance == store.maintenance_mode()
    assert on.maintenance is not None
    assert on.maintenance.active
    assert (on.maintenance.reason, on.maintenance.started_at) == ("upgrade", started)
    assert on.maintenance.drain_timeout == timedelta(seconds=30)
    clock.advance(seconds=5)
    assert store.stop_maintenance(clock.now()) is not None
    after = store.wait_context(clock.now())
    assert after.maintenance is not None
    assert not after.maintenance.active
    assert after.maintenance.stopped_at == clock.now()


def test_recent_durations_are_of_successful_runs_of_the_task(
    store: Store, clock: FrozenClock
) -> None:
    sid = register(store, clock.now())
    for seconds, outcome in ((10, Outcome.SUCCESS), (99, Outcome.ERROR), (30, Outcome.SUCCESS)):
        insert(store, clock, task="report")
        [run] = claim(store, sid, clock.now())
        start = clock.now()
        clock.advance(seconds=seconds)
        status = Status.FINISHED if outcome is Outcome.SUCCESS else Status.ERROR
        assert finish(store, run, clock.now(), status=status, outcome=outcome, started_at=start)
    assert sorted(store.recent_durations("report")) == [pytest_approx(10), pytest_approx(30)]
    assert store.recent_durations("report", limit=1) == [pytest_approx(30)]
    assert store.recent_durations("other") == []


def pytest_approx(value: float) -> object:
    import pytest

    return pytest.approx(value, abs=0.01)


def test_a_batch_with_a_stale_and_a_live_result_for_one_operation(
    store: Store, clock: FrozenClock
) -> None:
    """A worker that rejoined after being declared lost may hold the old run's result and
    the new run's in one batch: only the live lease is recorded, once."""
    from contract_support import result

    sid = register(store, clock.now())
    op = insert(store, clock, max_attempts=2)
    [old] = claim(store, sid, clock.now())
    assert finish(store, old, clock.now(), status=Status.READY, outcome=Outcome.LOST)
    [new] = claim(store, sid, clock.now())
    stale = result(old, clock.now(), status=Status.FINISHED, result_json='"stale"')
    live = result(new, clock.now(), status=Status.FINISHED, result_json='"live"')
    assert store.finish_runs([stale, live]) == [False, True]
    assert get(store, op).result == "live"
    ended = store.list_events(op.id, types=(EventType.ATTEMPT_ENDED,))
    assert [e.run_no for e in ended] == [1, 2]
    assert [a.outcome for a in attempts(store, op)] == [Outcome.LOST, Outcome.SUCCESS]
