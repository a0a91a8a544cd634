"""``async def`` tasks on the worker's one event loop (worker/handoff.py), through a real
worker, on both databases: many runs on few threads, each recorded once; cancellation,
timeouts and errors as for sync tasks; sync tasks beside them; one loop wake-up per batch."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from longops import Longops, Status
from longops.domain.operation import CancelMode, Outcome, StopMode
from longops.store.base import Claimed, ClaimParams
from longops.worker.context import RunContext
from procs import wait_for


@pytest.fixture
def app(db_url: str) -> Iterator[Longops]:
    application = Longops(db_url)
    yield application
    application.close()


class Sampler:
    """Samples ``threading.active_count()`` until stopped (its own thread included)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, threading.active_count())
            self._stop.wait(0.005)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_200_async_runs_at_concurrency_50_share_one_thread_and_run_once(app: Longops) -> None:
    running = 0
    peak = 0
    threads: set[str] = set()

    @app.task(name="nap")
    async def nap(ctx: RunContext, i: int) -> int:
        nonlocal running, peak
        threads.add(threading.current_thread().name)
        running += 1  # one thread runs them all: no lock needed
        peak = max(peak, running)
        ctx.progress(1, total=2)
        await asyncio.sleep(0.05)
        running -= 1
        return i

    handles = [app.enqueue("nap", i) for i in range(200)]
    before = threading.active_count()
    worker = app.worker(concurrency=50, poll_interval=0.05, run_services=False)
    try:
        with Sampler() as sampler:
            worker.start()
            for h in handles:
                assert h.wait(timeout=60).status is Status.FINISHED
        # The worker's loops (dispatcher, completer, heartbeat, monitor, a PostgreSQL
        # listener), its event loop and a helper for the first company read: not 50 runners.
        assert sampler.peak - before <= 15, (before, sampler.peak)
        assert worker._work.runners == 0
        assert threads == {"longops-async"}
        assert 1 < peak <= 50  # they overlapped, within the slots
        for i, h in enumerate(handles):
            attempts = app.store.list_attempts(h.id)
            assert [a.outcome for a in attempts] == [Outcome.SUCCESS]
            assert h.refresh().result == i
    finally:
        worker.stop(grace=5)


def test_an_async_run_is_cancelled_inside_its_own_task(app: Longops) -> None:
    started = threading.Event()
    saw_cancel = threading.Event()

    @app.task(name="stubborn", cancel_grace=0.2)
    async def stubborn() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)  # never looks at the signal
        except asyncio.CancelledError:
            saw_cancel.set()
            raise

    @app.task(name="polite")
    async def polite(ctx: RunContext) -> None:
        while True:
            ctx.advance()  # raises OperationCancelled once asked
            await asyncio.sleep(0.01)

    worker = app.worker(concurrency=4, poll_interval=0.05, run_services=False)
    worker.start()
    try:
        hard = app.enqueue("stubborn")
        soft = app.enqueue("polite")
        wait_for(started.is_set, timeout=20, what="stubborn started")
        wait_for(lambda: soft.refresh().status is Status.IN_PROCESS, timeout=20, what="polite runs")
        asked = time.monotonic()
        app.service.cancel(hard.id)
        app.service.cancel(soft.id)
        op = hard.wait(20)
        assert time.monotonic() - asked < 10
        assert saw_cancel.is_set()
        assert (op.status, op.cancel_mode) == (Status.CANCELLED, CancelMode.FORCED)
        assert app.store.list_attempts(hard.id)[0].stop_mode is StopMode.FORCED
        op = soft.wait(20)
        assert (op.status, op.cancel_mode) == (Status.CANCELLED, CancelMode.COOPERATIVE)
    finally:
        worker.stop(grace=2)


def test_an_async_run_past_its_timeout_is_stopped_and_recorded_as_a_timeout(
    app: Longops,
) -> None:
    saw_cancel = threading.Event()

    @app.task(name="slow", timeout=1, cancel_grace=0.2)
    async def slow() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            saw_cancel.set()
            raise

    worker = app.worker(concurrency=2, poll_interval=0.05, run_services=False)
    worker.start()
    try:
        handle = app.enqueue("slow")
        op = handle.wait(30)
        assert op.status is Status.ERROR, op
        (attempt,) = app.store.list_attempts(handle.id)
        assert attempt.outcome is Outcome.TIMEOUT
        assert attempt.stop_mode is StopMode.FORCED
        assert saw_cancel.is_set()
    finally:
        worker.stop(grace=2)


def test_an_async_error_is_recorded_like_a_sync_one(app: Longops) -> None:
    @app.task(name="sync_fails")
    def sync_fails(x: int) -> None:
        raise ValueError(f"supplier {x} said no")

    @app.task(name="async_fails")
    async def async_fails(x: int) -> None:
        await asyncio.sleep(0)
        raise ValueError(f"supplier {x} said no")

    worker = app.worker(concurrency=2, poll_interval=0.05, run_services=False)
    worker.start()
    try:
        ops = [app.enqueue(name, 7).wait(30) for name in ("sync_fails", "async_fails")]
    finally:
        worker.stop(grace=2)
    sync_attempt, async_attempt = (app.store.list_attempts(op.id)[0] for op in ops)
    assert [op.status for op in ops] == [Status.ERROR, Status.ERROR]
    assert async_attempt.outcome is sync_attempt.outcome is Outcome.ERROR
    assert (
        async_attempt.error_message
        == sync_attempt.error_message
        == ("ValueError: supplier 7 said no")
    )
    assert async_attempt.traceback is not None
    assert "async_fails" in async_attempt.traceback


def test_sync_tasks_run_on_runner_threads_beside_async_ones_within_the_slots(
    app: Longops,
) -> None:
    lock = threading.Lock()
    running = 0
    peak = 0
    where: dict[str, set[str]] = {"sync": set(), "async": set()}

    def enter(kind: str) -> None:
        nonlocal running, peak
        with lock:
            where[kind].add(threading.current_thread().name)
            running += 1
            peak = max(peak, running)

    def leave() -> None:
        nonlocal running
        with lock:
            running -= 1

    @app.task(name="plain")
    def plain() -> None:
        enter("sync")
        time.sleep(0.01)
        leave()

    @app.task(name="fancy")
    async def fancy(ctx: RunContext) -> None:
        enter("async")
        await ctx.acheckpoint({"half": True})
        await asyncio.sleep(0.01)
        leave()

    handles = [app.enqueue(name) for _ in range(30) for name in ("plain", "fancy")]
    worker = app.worker(concurrency=4, poll_interval=0.05, run_services=False)
    worker.start()
    try:
        for h in handles:
            assert h.wait(timeout=60).status is Status.FINISHED
    finally:
        worker.stop(grace=2)
    assert where["async"] == {"longops-async"}
    assert where["sync"]
    assert all(n.startswith("longops-runner-") for n in where["sync"])
    assert peak <= 4
    for h in handles:
        assert len(app.store.list_attempts(h.id)) == 1


def test_the_event_loop_is_woken_once_per_claimed_batch_not_per_run(app: Longops) -> None:
    claims: list[int] = []
    original = app.store.claim

    def claim(params: ClaimParams) -> Claimed:
        claimed = original(params)
        if claimed:
            claims.append(len(claimed))
        return claimed

    app.store.claim = claim  # type: ignore[method-assign]

    @app.task(name="tick")
    async def tick(i: int) -> int:
        await asyncio.sleep(0)
        return i

    handles = [app.enqueue("tick", i) for i in range(300)]
    worker = app.worker(concurrency=8, poll_interval=0.05, run_services=False)
    worker.start()
    try:
        for h in handles:
            assert h.wait(timeout=60).status is Status.FINISHED
    finally:
        worker.stop(grace=2)
    wakeups = worker._work.loop.wakeups
    # A run that ends on the loop starts the next waiting one itself; only a claim wakes it.
    assert wakeups <= len(claims), (wakeups, claims)
    assert wakeups < 300 / 4


def test_runner_threads_wait_for_work_once_per_batch_not_once_per_run(app: Longops) -> None:
    app.task(name="noop")(lambda i=0: None)
    handles = [app.enqueue("noop", i) for i in range(300)]
    worker = app.worker(concurrency=4, poll_interval=0.05, run_services=False)
    handoff = worker._work
    real_get = handoff.get
    lock = threading.Lock()
    waits = 0

    def get(block: bool = True, timeout: float | None = None) -> object:
        nonlocal waits
        if handoff.empty():  # this runner blocks until a hand-over wakes it
            with lock:
                waits += 1
        return real_get(block, timeout)

    handoff.get = get  # type: ignore[method-assign,assignment]
    worker.start()
    try:
        for h in handles:
            assert h.wait(timeout=60).status is Status.FINISHED
    finally:
        worker.stop(grace=2)
    # A runner that ends a run finds the next one waiting (claimed ahead, handed over with
    # its batch): it blocks only when the whole batch is done.
    assert waits <= 300 / 3, waits  # one per run would be about 300
