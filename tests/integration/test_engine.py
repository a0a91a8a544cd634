"""The engine's behaviour through the library API, on both databases."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import psycopg
import pytest

from longops import (
    EnqueueRequest,
    ExponentialBackoff,
    FrozenClock,
    InvalidTransition,
    Longops,
    NotFound,
    RunContext,
    Status,
    ValidationError,
)
from longops.domain.clock import OffsetClock
from longops.domain.operation import Operation, Outcome, SessionEventType, SessionState
from longops.domain.recurrence import Recurrence
from longops.services.expiry import Expiry
from longops.services.leader import ServiceRunner
from longops.services.pruner import Pruner
from longops.store.base import OperationQuery
from longops.testing import Runner
from procs import wait_for


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))  # a Monday


@pytest.fixture
def app(db_url: str, clock: FrozenClock) -> Iterator[Longops]:
    application = Longops(db_url, clock=clock)

    @application.task(name="ok")
    def ok(x: int = 0) -> int:
        return x

    @application.task(name="fails", max_attempts=3, rerun_delay=2)
    def fails() -> None:
        raise ValueError("supplier said no")

    @application.task(name="async_double")
    async def async_double(ctx: RunContext, x: int) -> dict[str, object]:
        await asyncio.sleep(0)
        return {"double": x * 2, "company": ctx.company, "attempt": ctx.attempt}

    yield application
    application.close()


def everything(app: Longops) -> list[Operation]:
    return list(app.service.list_operations(OperationQuery(limit=1000)))


# -- retries ------------------------------------------------------------------------------------
def test_failing_task_runs_max_attempts_times_with_business_central_delays(
    app: Longops, clock: FrozenClock
) -> None:
    handle = app.enqueue("fails")
    runner = Runner(app)
    delays = []
    for attempt in (1, 2):
        assert runner.run_until_idle() == 1
        op = handle.refresh()
        assert op.status is Status.READY
        assert op.status_reason == "retry"
        delay = op.earliest_start_at - clock.now()
        delays.append(delay)
        # Not a moment early: one microsecond before it is due, nothing runs.
        clock.advance(delay - timedelta(microseconds=1))
        assert runner.run_until_idle() == 0, f"retry {attempt} ran early"
        clock.advance(timedelta(microseconds=1))
    assert runner.run_until_idle() == 1
    # rerun_delay 2 s plus 10^n ms (Business Central): 2.01 s, then 2.1 s.
    assert delays == [timedelta(seconds=2.01), timedelta(seconds=2.1)]
    final = handle.refresh()
    assert final.status is Status.ERROR
    assert final.attempt_count == 3
    assert final.last_error == "ValueError: supplier said no"
    attempts = app.service.attempts(handle.id)
    assert [a.outcome for a in attempts] == [Outcome.ERROR] * 3
    assert [a.number for a in attempts] == [1, 2, 3]
    for a in attempts:
        assert a.error_message == "ValueError: supplier said no"
        assert a.traceback is not None
        assert 'raise ValueError("supplier said no")' in a.traceback
        assert a.ended_at is not None


def test_exponential_and_custom_retry_policies(app: Longops, clock: FrozenClock) -> None:
    calls: list[tuple[int, str]] = []

    def custom(attempt: int, error: BaseException | None) -> timedelta:
        calls.append((attempt, type(error).__name__))
        return timedelta(minutes=attempt)

    @app.task(name="custom_fail", max_attempts=2, retry=custom)
    def custom_fail() -> None:
        raise KeyError("k")

    runner = Runner(app)
    h1 = app.enqueue(
        "fails", retry_policy=ExponentialBackoff(base=10, factor=3, jitter=0), rerun_delay=0
    )
    runner.run_until_idle()
    assert h1.refresh().earliest_start_at - clock.now() == timedelta(seconds=10)
    h2 = app.enqueue("custom_fail")
    runner.run_until_idle()
    assert h2.refresh().earliest_start_at - clock.now() == timedelta(minutes=1)
    assert calls == [(1, "KeyError")]


# -- recurrence ---------------------------------------------------------------------------------
def test_recurring_operation_runs_repeatedly_as_one_row(db_url: str) -> None:
    clock = OffsetClock()
    app = Longops(db_url, clock=clock)
    runs: list[int] = []
    app.task(name="tick")(lambda: runs.append(1))
    worker = app.worker(concurrency=1, poll_interval=0.05, heartbeat_interval=0.5)
    worker.start()
    try:
        handle = app.enqueue("tick", recurrence=Recurrence.every(1))
        for expected in (1, 2, 3):
            wait_for(lambda n=expected: len(runs) >= n, timeout=20, what=f"run {expected}")
            wait_for(
                lambda: handle.refresh().status is Status.READY, timeout=20, what="back to ready"
            )
            op = handle.operation
            assert op.status_reason == "recurring"
            assert op.earliest_start_at > clock.now()
            clock.advance(seconds=61)  # the next run is one minute after the last ended
    finally:
        worker.stop(grace=5)
    ops = everything(app)
    assert len(ops) == 1
    attempts = app.service.attempts(handle.id)
    assert len(attempts) >= 3
    assert all(a.outcome is Outcome.SUCCESS for a in attempts)
    assert handle.refresh().attempt_count == 0  # reset after each successful run
    app.close()


def test_run_now_ignores_the_run_window(app: Longops, clock: FrozenClock) -> None:
    window = Recurrence(minutes_between_runs=60, starting_time=time(22, 0), ending_time=time(23, 0))
    handle = app.enqueue("ok", recurrence=window)
    assert handle.operation.earliest_start_at == datetime(2026, 3, 2, 22, 0, tzinfo=UTC)
    runner = Runner(app)
    assert runner.run_until_idle() == 0
    app.service.run_now(handle.id)
    assert runner.run_until_idle() == 1
    [attempt] = app.service.attempts(handle.id)
    assert attempt.outcome is Outcome.SUCCESS


# -- enqueue ------------------------------------------------------------------------------------
def test_async_tasks_and_async_enqueue(app: Longops) -> None:
    handle = asyncio.run(app.enqueue_async("async_double", 21))
    Runner(app).run_until_idle()
    op = handle.refresh()
    assert op.status is Status.FINISHED
    assert op.result == {"double": 42, "company": "default", "attempt": 1}


def test_dedup_key_returns_the_active_operation(app: Longops) -> None:
    first = app.enqueue("ok", dedup_key="nightly")
    second = app.enqueue("ok", dedup_key="nightly")
    assert second.id == first.id
    assert second.duplicate
    assert not first.duplicate
    Runner(app).run_until_idle()
    third = app.enqueue("ok", dedup_key="nightly")
    assert third.id != first.id
    assert not third.duplicate


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"task": "nope"}, "task"),
        ({"args": (object(),)}, "args[0]"),  # no integer (and no JSON either)
        ({"args": ("3",)}, "args[0]"),  # the types of the annotations are checked
        ({"args": (1, 2, 3)}, "args"),
        ({"kwargs": {"y": 1}}, "kwargs"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 101}, "max_attempts"),
        ({"rerun_delay": 3601}, "rerun_delay"),
        ({"rerun_delay": -1}, "rerun_delay"),
        ({"timeout": 0}, "timeout"),
        ({"company": "nowhere"}, "company"),
        ({"company": "bad name!"}, "company"),
        ({"category": "MISSING"}, "category"),
        ({"priority": "urgent"}, "priority"),
        ({"recurrence": "every day"}, "recurrence"),
        ({"recurrence": "cron:61 * * * *"}, "recurrence.cron"),
        ({"recurrence": {"date_formula": "<1X>"}}, "recurrence.date_formula"),
        ({"queue": ""}, "queue"),
        ({"delay": -5}, "delay"),
        ({"description": "x" * 251}, "description"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(
    app: Longops, options: dict[str, object], field: str
) -> None:
    request = {"task": "ok", **options}
    with pytest.raises(ValidationError) as raised:
        app.service.enqueue(EnqueueRequest(**request))  # type: ignore[arg-type]
    assert raised.value.field == field
    assert raised.value.rule
    assert everything(app) == []


def test_start_after_expiry_is_refused(app: Longops, clock: FrozenClock) -> None:
    with pytest.raises(ValidationError) as raised:
        app.enqueue(
            "ok",
            earliest_start_at=clock.now() + timedelta(hours=2),
            expires_at=clock.now() + timedelta(hours=1),
        )
    assert raised.value.field == "expires_at"
    assert everything(app) == []


def test_enqueue_many_validates_everything_first(app: Longops) -> None:
    good = EnqueueRequest(task="ok")
    bad = EnqueueRequest(task="ok", max_attempts=0)
    with pytest.raises(ValidationError):
        app.enqueue_many([good, good, bad])
    assert everything(app) == []
    assert len(app.enqueue_many([good] * 50)) == 50
    assert len(everything(app)) == 50


def test_enqueue_many_builds_alike_requests_as_one_by_one_would(
    app: Longops, clock: FrozenClock
) -> None:
    """A bulk enqueue validates once per distinct request apart from its arguments; the
    rows built from that must be what building each request alone gives."""
    app.set_category("POSTING", max_concurrent=2)
    alike = {"category": "POSTING", "priority": "high", "max_attempts": 3, "timeout": 90}
    requests = [
        *(EnqueueRequest(task="ok", args=(i,), **alike) for i in range(3)),  # type: ignore[arg-type]
        EnqueueRequest(task="ok", kwargs={"x": 7}, **alike),  # type: ignore[arg-type]
        EnqueueRequest(task="ok", args=(4,), on_hold=True),
        EnqueueRequest(task="ok", args=(5,), delay=60),
        EnqueueRequest(task="ok", args=(6,), labels={"team": "finance"}),
        EnqueueRequest(task="ok"),
        EnqueueRequest(task="ok", args=(8,), **alike),  # type: ignore[arg-type]
    ]
    ids = app.enqueue_many(requests)
    stored = {op.id: op for op in everything(app)}
    assert [stored[i].entry_no for i in ids] == sorted(stored[i].entry_no for i in ids)
    for request, oid in zip(requests, ids, strict=True):
        alone = app.service.build(request)
        op = stored[oid]
        got = (op.task, op.args, dict(op.kwargs), op.category, op.priority, op.status)
        want = (alone.task, *_decoded(alone.args_json), alone.category, alone.priority)
        assert got == (*want, alone.status)
        assert (op.max_attempts, op.timeout, op.queue, op.user) == (
            alone.max_attempts,
            alone.timeout,
            alone.queue,
            alone.user,
        )
        assert (op.earliest_start_at, op.labels, op.expires_at) == (
            alone.earliest_start_at,
            alone.labels,
            alone.expires_at,
        )
        assert op.created_at == clock.now()


def _decoded(args_json: str) -> tuple[tuple[object, ...], dict[str, object]]:
    import json

    data = json.loads(args_json)
    return tuple(data["args"]), data["kwargs"]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (EnqueueRequest(task="ok", args=(1, 2)), "args"),
        (EnqueueRequest(task="ok", args=("not a number",)), "args[0]"),
        (EnqueueRequest(task="ok", kwargs={"y": 1}), "kwargs"),
        (EnqueueRequest(task="ok", args=(float("nan"),)), "args[0]"),
    ],
)
def test_enqueue_many_checks_the_arguments_of_every_row_like_another(
    app: Longops, bad: EnqueueRequest, field: str
) -> None:
    """Rows like an earlier one still have their own arguments checked: the first bad one
    names its field and nothing is written."""
    good = [EnqueueRequest(task="ok", args=(i,)) for i in range(3)]
    with pytest.raises(ValidationError) as raised:
        app.enqueue_many([*good, bad, *good])
    assert raised.value.field == field
    with pytest.raises(ValidationError) as alone:
        app.service.build(bad)
    assert (alone.value.field, alone.value.rule) == (raised.value.field, raised.value.rule)
    assert everything(app) == []


# -- actions ------------------------------------------------------------------------------------
def test_a_handle_reads_status_and_progress_now_not_as_enqueued(app: Longops) -> None:
    @app.task(name="steps")
    def steps(ctx: RunContext) -> int:
        ctx.step("Posting", 2, 2)
        ctx.progress(4, total=4, unit="lines")
        return 4

    handle = app.enqueue("steps")
    assert handle.status is Status.READY
    app.service.hold(handle.id)  # changed behind the handle's back
    assert handle.status is Status.ON_HOLD
    app.service.set_ready(handle.id)
    assert handle.progress is None
    assert Runner(app).run_until_idle() == 1
    assert handle.status is Status.FINISHED
    progress = handle.progress
    assert progress is not None
    assert (progress.step_name, progress.step_index, progress.step_count) == ("Posting", 2, 2)
    assert (progress.completed, progress.total) == (4, 4)


def test_business_central_actions(app: Longops, clock: FrozenClock) -> None:
    service = app.service
    handle = app.enqueue("fails", on_hold=True)
    assert handle.status is Status.ON_HOLD
    assert Runner(app).run_until_idle() == 0  # on hold is never claimed

    ready = service.set_ready(handle.id, user="alice")
    assert ready.status is Status.READY
    assert ready.user == "alice"
    held = service.hold(handle.id)
    assert held.status is Status.ON_HOLD
    with pytest.raises(InvalidTransition):
        service.hold(handle.id)  # already on hold

    service.run_now(handle.id)
    runner = Runner(app)
    runner.run_until_idle()
    clock.advance(seconds=10)
    runner.run_until_idle()
    clock.advance(seconds=10)
    runner.run_until_idle()
    failed = handle.refresh()
    assert failed.status is Status.ERROR
    assert failed.attempt_count == 3

    restarted = service.restart(handle.id, user="bob")
    assert restarted.status is Status.READY
    assert restarted.attempt_count == 0
    assert restarted.last_error is None
    assert restarted.user == "bob"  # runs on behalf of whoever readied it last

    cancelled = service.cancel(handle.id, reason="not needed", by="bob")
    assert cancelled.status is Status.CANCELLED
    assert cancelled.ended_at is not None
    with pytest.raises(InvalidTransition):
        service.cancel(handle.id)
    service.delete(handle.id)
    with pytest.raises(NotFound):
        service.get(handle.id)


def test_running_operation_gets_a_cancel_request_and_cannot_be_deleted(app: Longops) -> None:
    started = threading.Event()
    release = threading.Event()

    @app.task(name="cooperative")
    def cooperative(ctx: RunContext) -> None:
        started.set()
        while not ctx.cancelled:
            release.wait(0.01)
        ctx.check_cancelled()

    worker = app.worker(concurrency=1, heartbeat_interval=0.1, poll_interval=0.05)
    worker.start()
    try:
        handle = app.enqueue("cooperative")
        assert started.wait(20)
        wait_for(lambda: handle.refresh().status is Status.IN_PROCESS, timeout=20, what="running")
        with pytest.raises(InvalidTransition):
            app.service.delete(handle.id)
        with pytest.raises(InvalidTransition):
            app.service.hold(handle.id)
        requested = app.service.cancel(handle.id, reason="wrong month", by="carol")
        assert requested.status is Status.IN_PROCESS
        assert requested.cancel_request is not None
        assert requested.cancel_request.requested_by == "carol"
        done = handle.wait(timeout=20)
    finally:
        worker.stop(grace=5)
    assert done.status is Status.CANCELLED
    assert [a.outcome for a in app.service.attempts(handle.id)] == [Outcome.CANCELLED]


def test_remove_failed_entries(app: Longops, clock: FrozenClock) -> None:
    failed = app.enqueue("fails", max_attempts=1)
    kept = app.enqueue("fails", max_attempts=1, recurrence="every 60m")
    app.service.run_now(kept.id)
    Runner(app).run_until_idle()
    assert failed.refresh().status is Status.ERROR
    assert app.service.remove_failed() == 0  # ended less than 30 s ago
    clock.advance(seconds=31)
    assert app.service.remove_failed() == 1
    assert [op.id for op in everything(app)] == [kept.id]


# -- services -----------------------------------------------------------------------------------
def test_expiry_and_pruning(app: Longops, clock: FrozenClock) -> None:
    expiring = app.enqueue("ok", delay=3600, expires_at=clock.now() + timedelta(hours=2))
    done = app.enqueue("ok")
    failed = app.enqueue("fails", max_attempts=1)
    Runner(app).run_until_idle()
    clock.advance(timedelta(hours=2, seconds=1))
    assert Expiry(app.store, clock).run_once() == 1
    op = expiring.refresh()
    assert op.status is Status.CANCELLED
    assert op.status_reason == "expired"
    assert Pruner(app.store, clock, retention=timedelta(days=30)).run_once() == 0
    clock.advance(timedelta(days=31))
    assert Pruner(app.store, clock, retention=timedelta(days=30)).run_once() == 2
    assert [op.id for op in everything(app)] == [failed.id]
    assert app.service.store.list_attempts(done.id) == []
    # An operation in error keeps its history until a person acts on it.
    assert [a.outcome for a in app.service.attempts(failed.id)] == [Outcome.ERROR]


def test_only_one_service_runner_leads(app: Longops, clock: FrozenClock) -> None:
    class Count:
        name = "count"
        interval = timedelta(seconds=0)

        def __init__(self) -> None:
            self.runs = 0

        def run_once(self) -> int:
            self.runs += 1
            return 1

    a, b = Count(), Count()
    ra = ServiceRunner(app.store, clock, Runner(app).session_id, [a], ttl=timedelta(seconds=10))
    rb = ServiceRunner(app.store, clock, Runner(app).session_id, [b], ttl=timedelta(seconds=10))
    for _ in range(3):
        ra.run_once()
        rb.run_once()
    assert (a.runs, b.runs) == (3, 0)
    clock.advance(seconds=11)  # the leader went quiet: its lease lapses
    rb.run_once()
    assert b.runs == 1
    assert rb.is_leader


def test_worker_declared_lost_rejoins_as_a_new_session(db_url: str) -> None:
    clock = OffsetClock()
    app = Longops(db_url, clock=clock)
    app.task(name="ok")(lambda: None)
    worker = app.worker(heartbeat_interval=0.1, session_timeout=1, run_services=False)
    worker.start()
    try:
        old = worker.session_id
        clock.advance(seconds=5)
        assert app.store.mark_lost_sessions(clock.now(), timedelta(seconds=1)) == [old]
        wait_for(lambda: worker.session_id != old, timeout=10, what="rejoin")
        handle = app.enqueue("ok")
        assert handle.wait(timeout=20).status is Status.FINISHED
    finally:
        worker.stop(grace=5)
    states = {s.id: s.state for s in app.store.list_sessions()}
    assert states[old] is SessionState.LOST
    events = {e.type for e in app.store.list_session_events(worker.session_id)}
    assert SessionEventType.HEARTBEAT_RESUMED in events
    app.close()


# -- transactional enqueue (PostgreSQL) ----------------------------------------------------------
@pytest.mark.postgres
def test_transactional_enqueue_follows_the_callers_transaction(pg_url: str) -> None:
    app = Longops(pg_url)
    app.task(name="ok")(lambda: None)
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE invoices (no text)")
        conn.commit()

        def change_of_mind() -> None:
            with conn.transaction():
                conn.execute("INSERT INTO invoices VALUES ('INV-1')")
                app.enqueue("ok", connection=conn)
                raise RuntimeError("caller changes its mind")

        with pytest.raises(RuntimeError):
            change_of_mind()
        assert everything(app) == []
        with conn.transaction():
            conn.execute("INSERT INTO invoices VALUES ('INV-2')")
            handle = app.enqueue("ok", connection=conn)
            # Not visible to anyone else until the caller commits.
            assert app.store.get_operation(handle.id) is None
        assert [op.id for op in app.service.list_operations(OperationQuery())] == [handle.id]
    app.close()


def test_transactional_enqueue_on_sqlite_is_refused_clearly(tmp_path: object) -> None:
    import sqlite3

    from longops import ConfigurationError

    app = Longops(f"sqlite:///{tmp_path}/x.db")
    app.migrate()
    app.task(name="ok")(lambda: None)
    with pytest.raises(ConfigurationError, match="needs PostgreSQL"):
        app.enqueue("ok", connection=sqlite3.connect(":memory:"))
    app.close()


def test_task_calling_sys_exit_fails_its_run_not_the_worker(app: Longops) -> None:
    import sys

    @app.task(name="exits")
    def exits() -> None:
        sys.exit(3)

    worker = app.worker(concurrency=1, poll_interval=0.05)
    worker.start()
    try:
        bad = app.enqueue("exits")
        assert bad.wait(timeout=20).status is Status.ERROR
        assert bad.operation.last_error == "SystemExit: 3"
        good = app.enqueue("ok", 5)
        assert good.wait(timeout=20).result == 5
    finally:
        worker.stop(grace=5)


def test_one_by_one_enqueue_after_a_refused_insert_on_the_same_connection(pg_url: str) -> None:
    # A plain enqueue runs on its pooled connection's own cursor (postgres._enqueue_cursor),
    # kept across calls: a statement the server refused must not spoil the next one.
    from longops.domain.operation import NewOperation

    app = Longops(pg_url)
    app.task(name="ok")(lambda n: None)
    store = app.store
    first = app.enqueue("ok", 1).operation
    orphan = NewOperation.build(task="ok", now=datetime.now(UTC), company="no_such_company")
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        store.insert_operations([orphan])
    after = [app.enqueue("ok", n).operation for n in (2, 3)]
    assert [op.entry_no for op in after] == sorted(op.entry_no for op in after)
    assert after[0].entry_no > first.entry_no
    for op in [first, *after]:
        assert store.get_operation(op.id) == op
    assert store.get_operation(orphan.id) is None
    app.close()
