"""Store contract, part 3: sessions and the queries the background services use.

Every test takes the ``store`` fixture and so runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from contract_support import (
    attempts,
    claim,
    finish,
    get,
    insert,
    make_error,
    register,
    session,
)

from longops.domain.clock import FrozenClock
from longops.domain.operation import Outcome, SessionEventType, SessionState
from longops.domain.recurrence import Recurrence
from longops.domain.status import Status, allowed_from
from longops.store.base import ActionParams, OperationQuery, Store

# -- sessions --------------------------------------------------------------------------------


def test_register_session_records_logon(store: Store, clock: FrozenClock) -> None:
    s = session(clock.now(), queues=("default", "reports"))
    store.register_session(s)
    assert store.list_sessions() == [s]
    [event] = store.list_session_events(s.id)
    assert (event.session_id, event.type, event.at) == (s.id, SessionEventType.LOGON, s.started_at)
    assert event.comment == "h pid 1"


def test_heartbeat_moves_last_heartbeat(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    at = clock.advance(seconds=15)
    assert store.heartbeat(sid, at) is SessionState.ACTIVE
    [s] = store.list_sessions()
    assert s.last_heartbeat_at == at
    assert s.state is SessionState.ACTIVE
    assert store.heartbeat(session(at).id, at) is None  # never registered


def test_mark_lost_sessions_only_the_silent(store: Store, clock: FrozenClock) -> None:
    t0 = clock.now()
    silent = register(store, t0)
    recent = register(store, t0)
    edge = register(store, t0)
    draining = register(store, t0)
    stopped = register(store, t0)
    store.end_session(draining, SessionState.DRAINING, t0, SessionEventType.DRAIN_STARTED)
    store.end_session(stopped, SessionState.STOPPED, t0, SessionEventType.LOGOFF)
    assert store.heartbeat(recent, t0 + timedelta(seconds=20)) is SessionState.ACTIVE
    assert store.heartbeat(edge, t0 + timedelta(seconds=10)) is SessionState.ACTIVE
    now = clock.advance(seconds=40)
    timeout = timedelta(seconds=30)

    lost = store.mark_lost_sessions(now, timeout)
    assert sorted(lost) == sorted([silent, draining])
    states = {s.id: s for s in store.list_sessions()}
    assert states[silent].state is SessionState.LOST
    assert states[silent].ended_at == now
    assert states[silent].last_heartbeat_at == t0
    assert states[draining].state is SessionState.LOST
    assert states[recent].state is SessionState.ACTIVE
    assert states[edge].state is SessionState.ACTIVE  # silent exactly the timeout: not longer
    assert states[stopped].state is SessionState.STOPPED
    events = store.list_session_events(silent)
    assert [e.type for e in events] == [SessionEventType.LOST, SessionEventType.LOGON]
    assert events[0].at == now
    assert store.mark_lost_sessions(now, timeout) == []
    assert len(store.list_session_events(silent)) == 2

    later = clock.advance(seconds=1)
    assert store.heartbeat(silent, later) is SessionState.LOST
    assert {s.id: s for s in store.list_sessions()}[silent].last_heartbeat_at == t0
    assert store.heartbeat(stopped, later) is SessionState.STOPPED


def test_end_session_records_event_and_state(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    t1 = clock.advance(seconds=5)
    store.end_session(sid, SessionState.DRAINING, t1, SessionEventType.DRAIN_STARTED, "sigterm")
    [s] = store.list_sessions()
    assert (s.state, s.ended_at) == (SessionState.DRAINING, None)
    assert store.heartbeat(sid, t1) is SessionState.DRAINING
    t2 = clock.advance(seconds=5)
    store.end_session(sid, SessionState.STOPPED, t2, SessionEventType.LOGOFF, "bye")
    [s] = store.list_sessions()
    assert (s.state, s.ended_at) == (SessionState.STOPPED, t2)
    events = store.list_session_events(sid)
    assert [(e.type, e.at, e.comment) for e in events] == [
        (SessionEventType.LOGOFF, t2, "bye"),
        (SessionEventType.DRAIN_STARTED, t1, "sigterm"),
        (SessionEventType.LOGON, s.started_at, "h pid 1"),
    ]
    store.record_session_event(sid, SessionEventType.HEARTBEAT_RESUMED, t2, None)
    assert store.list_session_events(sid)[0].type is SessionEventType.HEARTBEAT_RESUMED


def test_lost_session_stays_lost(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    now = clock.advance(seconds=100)
    assert store.mark_lost_sessions(now, timedelta(seconds=10)) == [sid]
    store.end_session(sid, SessionState.STOPPED, clock.advance(seconds=1), SessionEventType.LOGOFF)
    [s] = store.list_sessions()
    assert (s.state, s.ended_at) == (SessionState.LOST, now)


def test_list_sessions_active_only(store: Store, clock: FrozenClock) -> None:
    active = register(store, clock.now())
    draining = register(store, clock.advance(seconds=1))
    stopped = register(store, clock.advance(seconds=1))
    lost = register(store, clock.advance(seconds=1))
    now = clock.now()
    store.end_session(draining, SessionState.DRAINING, now, SessionEventType.DRAIN_STARTED)
    store.end_session(stopped, SessionState.STOPPED, now, SessionEventType.LOGOFF)
    store.end_session(lost, SessionState.LOST, now, SessionEventType.LOST)
    # newest first
    assert [s.id for s in store.list_sessions()] == [lost, stopped, draining, active]
    assert [s.id for s in store.list_sessions(active_only=True)] == [draining, active]


# -- orphaned runs ---------------------------------------------------------------------------


def test_orphaned_runs_of_lost_and_stopped_sessions(store: Store, clock: FrozenClock) -> None:
    t0 = clock.now()
    alive, lost, stopped, draining = (register(store, t0) for _ in range(4))
    op_alive = insert(store, clock)
    [run_alive] = claim(store, alive, t0, limit=1)
    op_lost = insert(store, clock)
    [run_lost] = claim(store, lost, t0, limit=1)
    op_stopped = insert(store, clock)
    [first] = claim(store, alive, t0, limit=1)  # run 1, handed back
    assert finish(store, first, t0, status=Status.READY, outcome=Outcome.INTERRUPTED)
    [run_stopped] = claim(store, stopped, t0, limit=1)
    op_draining = insert(store, clock)
    [run_draining] = claim(store, draining, t0, limit=1)
    assert [r.operation.id for r in (run_alive, run_lost, run_stopped, run_draining)] == [
        op_alive.id, op_lost.id, op_stopped.id, op_draining.id
    ]  # fmt: skip
    assert store.orphaned_runs() == []

    now = clock.advance(seconds=60)
    for sid in (alive, draining):
        assert store.heartbeat(sid, now) is SessionState.ACTIVE
    store.end_session(draining, SessionState.DRAINING, now, SessionEventType.DRAIN_STARTED)
    store.end_session(stopped, SessionState.STOPPED, now, SessionEventType.LOGOFF)
    assert store.mark_lost_sessions(now, timedelta(seconds=30)) == [lost]

    orphans = sorted(store.orphaned_runs(), key=lambda r: r.operation.entry_no)
    assert [(r.operation.id, r.run_no) for r in orphans] == [(op_lost.id, 1), (op_stopped.id, 2)]
    assert [r.operation.session_id for r in orphans] == [lost, stopped]
    assert [r.lease_token for r in orphans] == [run_lost.lease_token, run_stopped.lease_token]
    assert len(store.orphaned_runs(limit=1)) == 1
    # once the dead sessions are pruned away their runs are still orphans
    store.prune(clock.advance(seconds=1))
    assert {s.id for s in store.list_sessions()} == {alive, draining}
    remaining = sorted(store.orphaned_runs(), key=lambda r: r.operation.entry_no)
    assert [(r.operation.id, r.run_no) for r in remaining] == [(op_lost.id, 1), (op_stopped.id, 2)]


# -- what a session runs ----------------------------------------------------------------------


def test_session_runs_lists_what_the_database_says_a_session_runs(
    store: Store, clock: FrozenClock
) -> None:
    t0 = clock.now()
    mine, other = register(store, t0), register(store, t0)
    assert store.session_runs(mine) == []
    a, b = insert(store, clock), insert(store, clock)
    claimed = claim(store, mine, t0, limit=2)
    insert(store, clock)
    [theirs] = claim(store, other, t0, limit=1)
    insert(store, clock)  # ready, nobody's
    runs = store.session_runs(mine)
    assert [(r.operation.id, r.run_no, r.lease_token) for r in runs] == [
        (c.operation.id, c.run_no, c.lease_token) for c in claimed
    ]
    assert [r.operation.id for r in runs] == [a.id, b.id]
    assert [r.operation.id for r in store.session_runs(other)] == [theirs.operation.id]
    # A finished run is no longer the session's; nor is one handed back.
    assert finish(store, claimed[0], t0)
    assert finish(store, claimed[1], t0, status=Status.READY, outcome=Outcome.INTERRUPTED)
    assert store.session_runs(mine) == []


# -- expiry ----------------------------------------------------------------------------------


def test_expire_operations(store: Store, clock: FrozenClock) -> None:
    t0 = clock.now()
    sid = register(store, t0)
    running = insert(store, clock, expires_at=t0 + timedelta(seconds=10))
    [run] = claim(store, sid, t0)
    due = insert(store, clock, expires_at=t0 + timedelta(seconds=10))
    overdue = insert(store, clock, expires_at=t0 + timedelta(seconds=5))
    later = insert(store, clock, expires_at=t0 + timedelta(hours=1))
    held = insert(store, clock, expires_at=t0 + timedelta(seconds=10), on_hold=True)
    forever = insert(store, clock)
    untouched = [get(store, op) for op in (running, later, held, forever)]

    assert store.expire_operations(t0 + timedelta(seconds=4)) == []
    now = clock.advance(seconds=10)
    assert sorted(store.expire_operations(now)) == sorted([due.id, overdue.id])
    for op in (due, overdue):
        gone = get(store, op)
        assert gone.status is Status.CANCELLED
        assert gone.status_reason == "expired"
        assert (gone.ended_at, gone.updated_at) == (now, now)
    assert [get(store, op) for op in (running, later, held, forever)] == untouched
    assert get(store, run).status is Status.IN_PROCESS
    assert store.expire_operations(now) == []


# -- prune -----------------------------------------------------------------------------------


def test_prune_removes_only_old_finished_and_cancelled(store: Store, clock: FrozenClock) -> None:
    t0 = clock.now()
    sid = register(store, t0)
    old_finished = insert(store, clock)
    [run] = claim(store, sid, t0)
    assert finish(store, run, t0)
    old_cancelled = insert(store, clock)
    assert store.apply_action(
        ActionParams(old_cancelled.id, None, allowed_from("cancel"), Status.CANCELLED, t0)
    )
    old_error = make_error(store, clock, sid, t0)
    retried = insert(store, clock, queue="retry")  # ready, but ended_at set by its last run
    [retry_run] = claim(store, sid, t0, queues=("retry",))
    assert finish(store, retry_run, t0, status=Status.READY, outcome=Outcome.ERROR)
    running = insert(store, clock, queue="run")
    [live] = claim(store, sid, t0, queues=("run",))
    ready = insert(store, clock, queue="idle")
    held = insert(store, clock, on_hold=True)
    cut = clock.advance(timedelta(days=31))
    new_finished = insert(store, clock)
    [run2] = claim(store, sid, cut)
    assert finish(store, run2, cut)

    assert store.prune(cut) == 2
    assert store.get_operation(old_finished.id) is None
    assert store.get_operation(old_cancelled.id) is None
    assert attempts(store, old_finished) == []
    assert get(store, old_error).status is Status.ERROR
    assert get(store, retried).status is Status.READY
    assert get(store, running).status is Status.IN_PROCESS
    assert [a.outcome for a in attempts(store, live)] == [Outcome.IN_PROCESS]
    assert get(store, ready).status is Status.READY
    assert get(store, held).status is Status.ON_HOLD
    assert get(store, new_finished).status is Status.FINISHED
    assert [a.outcome for a in attempts(store, new_finished)] == [Outcome.SUCCESS]
    assert store.prune(cut) == 0
    assert len(store.list_operations(OperationQuery())) == 6


class _Counting:
    """A cursor that notes each DELETE's table and rows deleted."""

    def __init__(self, inner: Any, deletes: list[tuple[str, int]]) -> None:
        self._inner, self._deletes = inner, deletes

    def execute(self, sql: str, params: Any = None) -> Any:
        out = self._inner.execute(sql, params)
        if "DELETE FROM" in sql:
            table = sql[sql.index("DELETE FROM") :].split()[2]
            self._deletes.append((table, int(self._inner.rowcount)))
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_prune_deletes_in_batches_each_its_own_transaction(
    store: Store, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    t0 = clock.now()
    sid = register(store, t0)
    old = [insert(store, clock) for _ in range(7)]
    for run in claim(store, sid, t0):
        assert finish(store, run, t0)
    old_error = make_error(store, clock, sid, t0)
    stopped = register(store, t0)
    store.end_session(stopped, SessionState.STOPPED, t0, SessionEventType.LOGOFF)
    cut = clock.advance(timedelta(days=31))
    new = insert(store, clock)
    [run] = claim(store, sid, cut)
    assert finish(store, run, cut)
    events_before = {op.id: len(store.list_events(op.id)) for op in [*old, old_error, new]}
    assert all(events_before.values())

    impl: Any = store
    impl.prune_batch = 3
    deletes: list[tuple[str, int]] = []
    transactions = 0
    tx = impl._tx

    @contextmanager
    def counted() -> Iterator[Any]:
        nonlocal transactions
        transactions += 1
        with tx() as cur:
            yield _Counting(cur, deletes)

    monkeypatch.setattr(impl, "_tx", counted)
    assert store.prune(cut) == 7
    by_table: dict[str, list[int]] = {}
    for table, rows in deletes:
        by_table.setdefault(table, []).append(rows)
    # Never more than a batch a statement, and each batch its own transaction.
    assert all(rows <= 3 for _, rows in deletes), deletes
    assert transactions == len(deletes)
    assert by_table["longops_operations"] == [3, 3, 1]
    assert by_table["longops_attempts"] == [3, 3, 1]  # the error's attempt is kept
    timeline = sum(events_before[op.id] for op in old)
    assert sum(by_table["longops_operation_events"]) == timeline
    assert len(by_table["longops_operation_events"]) == timeline // 3 + 1
    # What is left is what an unbatched prune leaves.
    assert all(store.get_operation(op.id) is None for op in old)
    assert all(store.list_attempts(op.id) == [] for op in old)
    assert all(store.list_events(op.id) == [] for op in old)
    assert get(store, old_error).status is Status.ERROR
    assert [a.outcome for a in attempts(store, old_error)] == [Outcome.ERROR]
    assert len(store.list_events(old_error.id)) == events_before[old_error.id]
    assert get(store, new).status is Status.FINISHED
    assert len(store.list_events(new.id)) == events_before[new.id]
    assert [s.id for s in store.list_sessions()] == [sid]
    assert store.prune(cut) == 0


def test_prune_removes_old_ended_sessions(store: Store, clock: FrozenClock) -> None:
    t0 = clock.now()
    stopped = register(store, t0)
    active = register(store, t0)
    store.end_session(stopped, SessionState.STOPPED, t0, SessionEventType.LOGOFF)
    cut = clock.advance(timedelta(days=31))
    assert store.heartbeat(active, cut) is SessionState.ACTIVE
    store.prune(cut)
    assert [s.id for s in store.list_sessions()] == [active]
    assert store.list_session_events(stopped) == []


# -- next_due_at, leaders, recurring ----------------------------------------------------------


def test_next_due_at(store: Store, clock: FrozenClock) -> None:
    now = clock.now()
    assert store.next_due_at(["default"]) is None
    insert(store, clock, earliest_start_at=now + timedelta(minutes=5))
    insert(store, clock, earliest_start_at=now + timedelta(minutes=2))
    insert(store, clock, earliest_start_at=now + timedelta(minutes=1), on_hold=True)
    insert(store, clock, queue="other", earliest_start_at=now + timedelta(minutes=1))
    assert store.next_due_at(["default"]) == now + timedelta(minutes=2)
    assert store.next_due_at(["default", "other"]) == now + timedelta(minutes=1)
    assert store.next_due_at(["nothing"]) is None
    assert store.next_due_at([]) is None
    store.set_queue_paused("other", True, now)
    assert store.next_due_at(["default", "other"]) == now + timedelta(minutes=2)


def test_try_lead_and_resign(store: Store, clock: FrozenClock) -> None:
    t0 = clock.now()
    s1, s2 = register(store, t0), register(store, t0)
    ttl = timedelta(seconds=30)
    assert store.try_lead("scheduler", s1, t0, ttl) is True
    assert store.try_lead("scheduler", s2, t0, ttl) is False
    assert store.try_lead("pruner", s2, t0, ttl) is True  # names are independent
    # the holder renews: at t0+20 its lease runs to t0+50
    assert store.try_lead("scheduler", s1, clock.advance(seconds=20), ttl) is True
    assert store.try_lead("scheduler", s2, clock.advance(seconds=15), ttl) is False  # t0+35
    assert store.try_lead("scheduler", s2, clock.advance(seconds=16), ttl) is True  # t0+51
    assert store.try_lead("scheduler", s1, clock.now(), ttl) is False
    store.resign("scheduler", s1)  # not the holder: changes nothing
    assert store.try_lead("scheduler", s1, clock.now(), ttl) is False
    store.resign("scheduler", s2)
    assert store.try_lead("scheduler", s1, clock.now(), ttl) is True


def test_ready_recurring(store: Store, clock: FrozenClock) -> None:
    now = clock.now()
    every = Recurrence.every(5)
    a = insert(store, clock, recurrence=every)
    insert(store, clock)  # not recurring
    insert(store, clock, recurrence=every, on_hold=True)
    insert(store, clock, recurrence=every, earliest_start_at=now + timedelta(minutes=1))
    b = insert(store, clock, recurrence=every, queue="other")
    c = insert(store, clock, recurrence=every)
    assert [op.id for op in store.ready_recurring(now, 10)] == [a.id, b.id, c.id]
    assert [op.id for op in store.ready_recurring(now, 2)] == [a.id, b.id]
    assert store.ready_recurring(now - timedelta(seconds=1), 10) == []
    assert [op.recurrence for op in store.ready_recurring(now, 1)] == [every]


def test_move_start_only_when_expected_start_matches(store: Store, clock: FrozenClock) -> None:
    now = clock.now()
    op = insert(store, clock, recurrence=Recurrence.every(5))
    held = insert(store, clock, on_hold=True)
    new_start = now + timedelta(minutes=5, microseconds=123456)
    at = clock.advance(seconds=1)
    assert store.move_start(op.id, now, new_start, at) is True
    moved = get(store, op)
    assert (moved.earliest_start_at, moved.updated_at) == (new_start, at)
    # a second mover that read the old start changes nothing
    assert store.move_start(op.id, now, now + timedelta(hours=1), at) is False
    assert get(store, op) == moved
    assert store.move_start(op.id, new_start, now + timedelta(hours=1), at) is True
    assert get(store, op).earliest_start_at == now + timedelta(hours=1)
    assert store.move_start(held.id, now, new_start, at) is False
    assert get(store, held) == held
