"""Store contract, part 2: claiming ready operations and finishing runs under a lease.

Every test takes the ``store`` fixture and so runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

from contract_support import (
    add_company,
    attempts,
    build,
    category,
    claim,
    finish,
    get,
    insert,
    register,
    result,
)

from longops.domain.clock import FrozenClock
from longops.domain.operation import Attempt, Outcome, SessionEventType, SessionState
from longops.domain.status import Status
from longops.store.base import ClaimParams, OperationQuery, Store

# -- claim -----------------------------------------------------------------------------------


def test_claim_sets_lease_and_logs_attempt(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    op = insert(store, clock, user="alice", max_attempts=3)
    at = clock.advance(seconds=2)
    [run] = claim(store, sid, at)
    claimed = run.operation
    assert run.run_no == 1
    assert claimed.id == op.id
    assert claimed.status is Status.IN_PROCESS
    assert isinstance(claimed.lease_token, uuid.UUID)
    assert run.lease_token == claimed.lease_token
    assert claimed.session_id == sid
    assert claimed.attempt_count == 1
    assert (claimed.started_at, claimed.updated_at, claimed.ended_at) == (at, at, None)
    assert get(store, op) == claimed
    [attempt] = attempts(store, op)
    assert attempt == Attempt(
        id=attempt.id,
        operation_id=op.id,
        company="default",
        number=1,
        attempt=1,
        session_id=sid,
        user="alice",
        task="t",
        started_at=at,
        ended_at=None,
        outcome=Outcome.IN_PROCESS,
        error_message=None,
        traceback=None,
    )


def test_claim_respects_limit_and_fifo(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    ops = [insert(store, clock) for _ in range(5)]
    first = claim(store, sid, clock.now(), limit=2)
    assert [r.operation.id for r in first] == [ops[0].id, ops[1].id]
    second = claim(store, sid, clock.now(), limit=2)
    assert [r.operation.id for r in second] == [ops[2].id, ops[3].id]
    assert [r.operation.id for r in claim(store, sid, clock.now(), limit=2)] == [ops[4].id]
    assert claim(store, sid, clock.now(), limit=2) == []


def test_claim_order_priority_then_fifo(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    names = ["low1", "normal1", "high1", "normal2", "high2", "low2"]
    ops = {n: insert(store, clock, task=n, priority=n.rstrip("12")) for n in names}
    one_by_one = [claim(store, sid, clock.now(), limit=1) for _ in names]
    assert [[r.operation.task for r in runs] for runs in one_by_one] == [
        ["high1"], ["high2"], ["normal1"], ["normal2"], ["low1"], ["low2"]
    ]  # fmt: skip
    assert {runs[0].operation.id for runs in one_by_one} == {op.id for op in ops.values()}


def test_claim_batch_takes_the_best_and_returns_them_in_order(
    store: Store, clock: FrozenClock
) -> None:
    sid = register(store, clock.now())
    for n in ["low1", "normal1", "high1", "normal2", "high2", "low2"]:
        insert(store, clock, task=n, priority=n.rstrip("12"))
    runs = claim(store, sid, clock.now(), limit=3)
    assert [r.operation.task for r in runs] == ["high1", "high2", "normal1"]
    rest = claim(store, sid, clock.now(), limit=10)
    assert [r.operation.task for r in rest] == ["normal2", "low1", "low2"]


def test_claim_skips_future_and_expired(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    now = clock.now()
    later = insert(store, clock, task="later", earliest_start_at=now + timedelta(minutes=1))
    expiring = insert(store, clock, task="expiring", expires_at=now + timedelta(minutes=1))
    clock.advance(seconds=59)
    assert get(store, later).status is Status.READY
    # before the minute: only the expiring one is due and still valid
    [run] = claim(store, sid, clock.now())
    assert run.operation.id == expiring.id
    assert finish(store, run, clock.now(), status=Status.READY, outcome=Outcome.INTERRUPTED)
    at = clock.advance(seconds=1)  # now == expires_at == later's start
    [run2] = claim(store, sid, at)
    assert run2.operation.id == later.id
    assert claim(store, sid, at) == []
    assert get(store, expiring).status is Status.READY


def test_claim_only_requested_queues(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    other = insert(store, clock, queue="other")
    assert claim(store, sid, clock.now(), queues=("default",)) == []
    assert claim(store, sid, clock.now(), queues=()) == []
    [run] = claim(store, sid, clock.now(), queues=("default", "other"))
    assert run.operation.id == other.id


def test_claim_skips_paused_queue_until_resumed(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    op = insert(store, clock)
    other = insert(store, clock, queue="other")
    store.set_queue_paused("default", True, clock.now())
    store.set_queue_paused("default", True, clock.now())  # idempotent
    assert store.paused_queues() == frozenset({"default"})
    [run] = claim(store, sid, clock.now(), queues=("default", "other"))
    assert run.operation.id == other.id
    assert claim(store, sid, clock.now()) == []
    store.set_queue_paused("default", False, clock.now())
    assert store.paused_queues() == frozenset()
    [run2] = claim(store, sid, clock.now())
    assert run2.operation.id == op.id


def test_category_max_concurrent_one(store: Store, clock: FrozenClock) -> None:
    category(store, "POSTING", max_concurrent=1)
    sid = register(store, clock.now())
    a = insert(store, clock, category="POSTING")
    b = insert(store, clock, category="POSTING", priority="high")
    free = insert(store, clock)
    runs = claim(store, sid, clock.now())
    assert [r.operation.id for r in runs] == [b.id, free.id]
    assert claim(store, sid, clock.now()) == []
    # the slot is taken whatever queue the running one came from
    c = insert(store, clock, category="POSTING", queue="other")
    assert claim(store, sid, clock.now(), queues=("default", "other")) == []
    assert finish(store, runs[0], clock.now())
    [next_run] = claim(store, sid, clock.now(), queues=("default", "other"))
    assert next_run.operation.id == a.id
    assert get(store, c).status is Status.READY


def test_category_max_concurrent_three(store: Store, clock: FrozenClock) -> None:
    category(store, "BATCH", max_concurrent=3)
    sid = register(store, clock.now())
    ops = [insert(store, clock, category="BATCH") for _ in range(5)]
    runs = claim(store, sid, clock.now(), limit=10)
    assert [r.operation.id for r in runs] == [op.id for op in ops[:3]]
    assert claim(store, sid, clock.now(), limit=10) == []
    assert finish(store, runs[1], clock.now())
    [more] = claim(store, sid, clock.now(), limit=10)
    assert more.operation.id == ops[3].id
    # a limit below the free slots still wins
    category(store, "BATCH", max_concurrent=10)
    assert [r.operation.id for r in claim(store, sid, clock.now(), limit=1)] == [ops[4].id]


def test_category_slots_are_per_company(store: Store, clock: FrozenClock) -> None:
    add_company(store, "acme")
    category(store, "POSTING", max_concurrent=1)
    category(store, "POSTING", max_concurrent=1, company="acme")
    sid = register(store, clock.now())
    a1 = insert(store, clock, category="POSTING")
    insert(store, clock, category="POSTING")
    b1 = insert(store, clock, category="POSTING", company="acme")
    insert(store, clock, category="POSTING", company="acme")
    runs = claim(store, sid, clock.now())
    assert [r.operation.id for r in runs] == [a1.id, b1.id]
    assert claim(store, sid, clock.now()) == []


def test_paused_category_gives_none(store: Store, clock: FrozenClock) -> None:
    category(store, "POSTING", max_concurrent=5, paused=True)
    sid = register(store, clock.now())
    op = insert(store, clock, category="POSTING")
    free = insert(store, clock)
    [run] = claim(store, sid, clock.now())
    assert run.operation.id == free.id
    assert claim(store, sid, clock.now()) == []
    resumed = category(store, "POSTING", max_concurrent=5, paused=False)
    assert resumed.paused is False
    [run2] = claim(store, sid, clock.now())
    assert run2.operation.id == op.id


def test_session_not_active_claims_nothing(store: Store, clock: FrozenClock) -> None:
    t0 = clock.now()
    draining = register(store, t0)
    lost = register(store, t0)
    stopped = register(store, t0)
    op = insert(store, clock)
    store.end_session(draining, SessionState.DRAINING, t0, SessionEventType.DRAIN_STARTED)
    store.end_session(stopped, SessionState.STOPPED, t0, SessionEventType.LOGOFF)
    at = clock.advance(seconds=120)
    assert store.heartbeat(draining, at) is SessionState.DRAINING
    assert store.mark_lost_sessions(at, timedelta(seconds=60)) == [lost]
    for sid in (draining, lost, stopped, uuid.uuid4()):
        assert claim(store, sid, at) == []
    assert get(store, op) == op
    assert attempts(store, op) == []


def test_two_sessions_never_share_an_operation(store: Store, clock: FrozenClock) -> None:
    s1, s2 = register(store, clock.now()), register(store, clock.now())
    ops = [insert(store, clock) for _ in range(4)]
    first = claim(store, s1, clock.now(), limit=2)
    second = claim(store, s2, clock.now(), limit=10)
    assert [r.operation.id for r in first] == [ops[0].id, ops[1].id]
    assert [r.operation.id for r in second] == [ops[2].id, ops[3].id]
    assert {r.operation.session_id for r in first} == {s1}
    assert {r.operation.session_id for r in second} == {s2}
    assert len({r.lease_token for r in first + second}) == 4
    assert claim(store, s1, clock.now()) == []


def test_concurrent_claims_are_disjoint(store: Store, clock: FrozenClock) -> None:
    category(store, "ONE", max_concurrent=1)
    sessions = [register(store, clock.now()) for _ in range(4)]
    free = [build(clock) for _ in range(40)]
    serial = [build(clock, category="ONE") for _ in range(6)]
    assert store.insert_operations_bulk(free + serial) == 46
    barrier = threading.Barrier(len(sessions))
    got: dict[uuid.UUID, list[uuid.UUID]] = {sid: [] for sid in sessions}
    errors: list[BaseException] = []

    def worker(sid: uuid.UUID) -> None:
        try:
            barrier.wait(timeout=30)
            while runs := claim(store, sid, clock.now(), limit=3):
                got[sid].extend(r.operation.id for r in runs)
        except BaseException as exc:  # reported below, in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(sid,)) for sid in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    claimed = [op_id for ids in got.values() for op_id in ids]
    assert len(claimed) == len(set(claimed)) == 41  # 40 free + 1 of the ONE category
    running = store.list_operations(OperationQuery(statuses=(Status.IN_PROCESS,), limit=100))
    assert {op.id for op in running} == set(claimed)
    assert all(op.session_id in sessions for op in running)
    assert sum(1 for op in running if op.category == "ONE") == 1


# -- finish_runs -----------------------------------------------------------------------------


def test_finish_success_applies_everything(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    op = insert(store, clock)
    [run] = claim(store, sid, clock.now())
    at = clock.advance(seconds=7)
    assert finish(
        store, run, at, status_reason="recurring", result_json='{"posted": 3, "ok": true}'
    )
    done = get(store, op)
    assert done.status is Status.FINISHED
    assert done.status_reason == "recurring"
    assert done.result == {"posted": 3, "ok": True}
    assert (done.ended_at, done.updated_at, done.started_at) == (at, at, run.operation.started_at)
    assert (done.lease_token, done.session_id, done.last_error) == (None, None, None)
    assert done.attempt_count == 1
    [attempt] = attempts(store, op)
    assert (attempt.outcome, attempt.ended_at, attempt.number) == (Outcome.SUCCESS, at, 1)
    assert (attempt.error_message, attempt.traceback) == (None, None)
    assert attempt.duration == timedelta(seconds=7)


def test_finish_error_records_error_and_traceback(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    op = insert(store, clock)
    [run] = claim(store, sid, clock.now())
    at = clock.advance(seconds=1)
    assert finish(
        store, run, at, status=Status.ERROR, outcome=Outcome.ERROR,
        error_message="boom", traceback="Traceback...\nValueError: boom",
    )  # fmt: skip
    failed = get(store, op)
    assert (failed.status, failed.last_error, failed.ended_at) == (Status.ERROR, "boom", at)
    assert failed.result is None
    [attempt] = attempts(store, op)
    assert attempt.outcome is Outcome.ERROR
    assert attempt.error_message == "boom"
    assert attempt.traceback == "Traceback...\nValueError: boom"
    assert attempt.ended_at == at


def test_finish_retry_sets_start_and_attempt_count(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    op = insert(store, clock, max_attempts=5)
    [run] = claim(store, sid, clock.now())
    at = clock.advance(seconds=1)
    retry_at = at + timedelta(minutes=2)
    assert finish(
        store, run, at, status=Status.READY, outcome=Outcome.ERROR,
        earliest_start_at=retry_at, error_message="flaky", result_json='{"step": 1}',
    )  # fmt: skip
    again = get(store, op)
    assert again.status is Status.READY
    assert (again.earliest_start_at, again.ready_at, again.attempt_count) == (retry_at, at, 1)
    assert (again.lease_token, again.session_id, again.last_error) == (None, None, "flaky")
    assert claim(store, sid, at) == []  # not due yet
    [run2] = claim(store, sid, retry_at)
    assert run2.run_no == 2
    assert run2.operation.attempt_count == 2
    assert run2.operation.last_error is None
    assert run2.lease_token != run.lease_token
    # an interrupted run is handed back without spending an attempt
    assert finish(
        store, run2, retry_at, status=Status.READY, outcome=Outcome.INTERRUPTED, attempt_count=1
    )
    assert get(store, op).attempt_count == 1
    assert get(store, op).result == {"step": 1}  # a run without a result keeps the last one
    [run3] = claim(store, sid, retry_at)
    assert (run3.run_no, run3.operation.attempt_count) == (3, 2)
    assert [(a.number, a.attempt, a.outcome) for a in attempts(store, op)] == [
        (1, 1, Outcome.ERROR),
        (2, 2, Outcome.INTERRUPTED),
        (3, 2, Outcome.IN_PROCESS),
    ]


def test_finish_with_wrong_lease_changes_nothing(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    op = insert(store, clock)
    [run] = claim(store, sid, clock.now())
    before, before_attempts = get(store, op), attempts(store, op)
    at = clock.advance(seconds=1)
    stale = result(run, at, lease_token=uuid.uuid4(), result_json='{"x": 1}', error_message="e")
    assert store.finish_runs([stale]) == [False]
    assert get(store, op) == before
    assert attempts(store, op) == before_attempts
    # the right lease still works afterwards, once
    assert finish(store, run, at)
    assert finish(store, run, at) is False
    assert get(store, op).status is Status.FINISHED


def test_finish_after_reclaim_by_another_session_changes_nothing(
    store: Store, clock: FrozenClock
) -> None:
    s1 = register(store, clock.now())
    op = insert(store, clock)
    [old] = claim(store, s1, clock.now())
    at = clock.advance(seconds=120)
    s2 = register(store, at)
    assert store.mark_lost_sessions(at, timedelta(seconds=60)) == [s1]
    [orphan] = store.orphaned_runs()
    assert (orphan.operation.id, orphan.run_no) == (op.id, 1)
    assert finish(store, orphan, at, status=Status.READY, outcome=Outcome.LOST)
    [new] = claim(store, s2, at)
    assert new.run_no == 2
    assert new.lease_token != old.lease_token
    before, before_attempts = get(store, op), attempts(store, op)

    late = clock.advance(seconds=5)
    assert store.finish_runs([result(old, late, result_json='{"late": true}')]) == [False]
    assert get(store, op) == before
    assert attempts(store, op) == before_attempts
    assert [a.outcome for a in before_attempts] == [Outcome.LOST, Outcome.IN_PROCESS]
    assert get(store, op).session_id == s2


def test_finish_batch_returns_per_result_booleans(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    ops = [insert(store, clock) for _ in range(4)]
    runs = claim(store, sid, clock.now())
    at = clock.advance(seconds=1)
    stale_before = get(store, ops[1])
    batch = [
        result(runs[0], at, result_json='{"n": 0}'),
        result(runs[1], at, lease_token=uuid.uuid4()),
        result(runs[2], at, status=Status.READY, outcome=Outcome.ERROR,
               earliest_start_at=at + timedelta(seconds=30), attempt_count=0),
        result(runs[3], at, status=Status.ERROR, outcome=Outcome.TIMEOUT, error_message="slow"),
    ]  # fmt: skip
    assert store.finish_runs(batch) == [True, False, True, True]
    assert store.finish_runs([]) == []
    assert [get(store, op).status for op in ops] == [
        Status.FINISHED, Status.IN_PROCESS, Status.READY, Status.ERROR
    ]  # fmt: skip
    assert get(store, ops[0]).result == {"n": 0}
    assert get(store, ops[1]) == stale_before
    assert attempts(store, ops[1])[0].outcome is Outcome.IN_PROCESS
    third = get(store, ops[2])
    assert (third.attempt_count, third.earliest_start_at) == (0, at + timedelta(seconds=30))
    assert attempts(store, ops[3])[0].outcome is Outcome.TIMEOUT
    assert get(store, ops[3]).last_error == "slow"
    # the same batch again: every lease is spent
    assert store.finish_runs(batch) == [False, False, False, False]


def test_a_result_given_twice_in_one_batch_applies_once(store: Store, clock: FrozenClock) -> None:
    """The first result of a run in a batch spends its lease; a second one for the same
    run in the same batch is fenced, like one sent in a later batch (one attempt ending,
    one timeline entry)."""
    sid = register(store, clock.now())
    op = insert(store, clock)
    [run] = claim(store, sid, clock.now())
    at = clock.advance(seconds=1)
    first = result(run, at, result_json='{"n": 1}')
    again = result(run, at, status=Status.ERROR, outcome=Outcome.ERROR, error_message="e")
    assert store.finish_runs([first, again]) == [True, False]
    back = get(store, op)
    assert (back.status, back.result, back.last_error) == (Status.FINISHED, {"n": 1}, None)
    assert [a.outcome for a in attempts(store, op)] == [Outcome.SUCCESS]
    ended = [e for e in store.list_events(op.id) if e.type.value == "attempt_ended"]
    assert [e.data["status"] for e in ended] == ["finished"]


def test_finish_and_claim_writes_the_results_and_claims_in_one_call(
    store: Store, clock: FrozenClock
) -> None:
    sid = register(store, clock.now())
    ops = [insert(store, clock) for _ in range(5)]
    first = claim(store, sid, clock.now(), limit=3)
    at = clock.advance(seconds=1)
    batch = [
        result(first[0], at, result_json='{"n": 0}'),
        result(first[1], at, lease_token=uuid.uuid4()),  # not its lease: fenced
        result(first[2], at, status=Status.READY, outcome=Outcome.INTERRUPTED, attempt_count=0),
    ]
    params = ClaimParams(session_id=sid, queues=("default",), limit=10, now=at)
    claimed = store.finish_and_claim(batch, params)
    assert claimed.finished == [True, False, True]
    # The run handed back is ready again in time for the claim of the same transaction.
    assert {r.operation.id for r in claimed} == {ops[2].id, ops[3].id, ops[4].id}
    assert get(store, ops[0]).status is Status.FINISHED
    assert get(store, ops[0]).result == {"n": 0}
    assert [a.outcome for a in attempts(store, ops[0])] == [Outcome.SUCCESS]
    assert get(store, ops[1]).status is Status.IN_PROCESS
    assert [a.outcome for a in attempts(store, ops[2])] == [Outcome.INTERRUPTED, Outcome.IN_PROCESS]
    # The same results again (a retry after a lost reply): every lease is spent, nothing
    # is written twice, and the claim still runs.
    again = store.finish_and_claim(batch, params)
    assert again.finished == [False, False, False]
    assert list(again) == []
    assert [a.outcome for a in attempts(store, ops[0])] == [Outcome.SUCCESS]


def test_a_pending_cancel_request_wins_over_going_back_to_ready_or_failing(
    store: Store, clock: FrozenClock
) -> None:
    """A hand-back, a rescue, a retry, the next run of a recurrence and a failure all end
    in cancelled when a cancel request is pending; a success still finishes."""
    from longops.domain.operation import CancelMode
    from longops.domain.recurrence import Recurrence

    sid = register(store, clock.now())
    cases = [
        (Outcome.INTERRUPTED, Status.READY, CancelMode.FORCED, {}),
        (Outcome.LOST, Status.READY, CancelMode.FORCED, {}),
        (Outcome.ERROR, Status.READY, CancelMode.COOPERATIVE, {}),
        (Outcome.ERROR, Status.ERROR, CancelMode.COOPERATIVE, {}),
        (
            Outcome.SUCCESS,
            Status.READY,
            CancelMode.COOPERATIVE,
            {"recurrence": Recurrence.every(5)},
        ),
    ]
    for outcome, status, mode, extra in cases:
        op = insert(store, clock, queue="c", max_attempts=3, **extra)
        [run] = claim(store, sid, clock.now(), queues=("c",))
        assert store.request_cancel(op.id, None, clock.now(), "u", "r") is not None
        assert finish(store, run, clock.now(), status=status, outcome=outcome)
        back = get(store, op)
        assert (back.status, back.status_reason, back.cancel_mode) == (
            Status.CANCELLED,
            "cancelled",
            mode,
        ), outcome
        assert back.cancel_request is not None
        assert back.cancel_request.requested_by == "u"
        [ended] = [e for e in store.list_events(op.id) if e.type.value == "attempt_ended"]
        assert ended.data["status"] == "cancelled"
    # Work that finished is finished, request or not.
    op = insert(store, clock, queue="c")
    [run] = claim(store, sid, clock.now(), queues=("c",))
    assert store.request_cancel(op.id, None, clock.now(), "u", "r") is not None
    assert finish(store, run, clock.now(), status=Status.FINISHED, outcome=Outcome.SUCCESS)
    assert get(store, op).status is Status.FINISHED
    # Without a request, a hand-back goes back to ready, with no reading on the entry.
    op = insert(store, clock, queue="c")
    [run] = claim(store, sid, clock.now(), queues=("c",))
    assert finish(store, run, clock.now(), status=Status.READY, outcome=Outcome.INTERRUPTED)
    back = get(store, op)
    assert (back.status, back.cancel_request, back.progress) == (Status.READY, None, None)
