"""Claiming ahead (worker/session.py ``_prefetch``) and the results written in the claim's
transaction, through a real worker, on both databases."""

from __future__ import annotations

import threading

from longops import Longops, Status
from longops.domain.operation import Outcome
from longops.store.base import Claimed, ClaimParams
from procs import wait_for


def test_runs_claimed_ahead_go_back_on_drain_without_spending_an_attempt(db_url: str) -> None:
    app = Longops(db_url)
    release = threading.Event()
    app.task(name="quick")(lambda x=0: x)

    @app.task(name="blocker")
    def blocker() -> None:
        release.wait(30)

    worker = app.worker(concurrency=1, poll_interval=0.05, run_services=False, grace_period=0.2)
    worker.start()
    try:
        # Short runs first: the worker learns its runs are short and starts claiming ahead.
        warm = [app.enqueue("quick", i) for i in range(5)]
        for h in warm:
            assert h.wait(timeout=20).status is Status.FINISHED
        assert worker._prefetch() > 0
        block = app.enqueue("blocker", on_hold=True)
        queued = [app.enqueue("quick", 100 + i, on_hold=True) for i in range(4)]
        # All five become ready in entry order: the blocker runs, the four wait in the buffer.
        for h in (block, *queued):
            app.service.set_ready(h.id)
        wait_for(lambda: len(worker.table) == 5, timeout=20, what="five runs claimed")
        assert block.refresh().status is Status.IN_PROCESS
        assert all(h.refresh().status is Status.IN_PROCESS for h in queued)
        worker.stop(grace=0.2)
        for h in queued:
            op = h.refresh()
            assert op.status is Status.READY, op
            assert op.attempt_count == 0  # handed back: the attempt was not spent
            assert [a.outcome for a in app.store.list_attempts(h.id)] == [Outcome.INTERRUPTED]
        op = block.refresh()
        assert op.status is Status.READY
        assert op.attempt_count == 0
    finally:
        release.set()
        if not worker.stopped:
            worker.stop(grace=1)
        app.close()


def test_results_ride_along_with_claims_and_each_operation_runs_once(db_url: str) -> None:
    app = Longops(db_url)
    app.task(name="quick")(lambda x=0: x)
    calls: list[int] = []
    original = app.store.claim

    def claim(params: ClaimParams) -> Claimed:
        calls.append(len(params.finished))
        return original(params)

    app.store.claim = claim  # type: ignore[method-assign]
    # A backlog before the worker starts: results ride along only while claims come back
    # full, which operations enqueued one by one beside a running worker may never do.
    handles = [app.enqueue("quick", i) for i in range(300)]
    worker = app.worker(concurrency=2, poll_interval=0.05, run_services=False)
    worker.start()
    try:
        for h in handles:
            op = h.wait(timeout=60)
            assert op.status is Status.FINISHED, op
            assert op.attempt_count == 1
        assert sum(calls) > 0, "no result was written in a claim's transaction"
        for h in handles[:20]:
            assert [a.outcome for a in app.store.list_attempts(h.id)] == [Outcome.SUCCESS]
    finally:
        worker.stop(grace=5)
        app.close()
