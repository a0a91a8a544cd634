"""The worker's hand-off (worker/handoff.py) on its own: slots shared by sync and async
runs, claim order, runner threads started only as needed, one loop wake-up per batch."""

from __future__ import annotations

import asyncio
import threading
from typing import cast

from longops.store.base import ClaimedRun
from longops.worker.handoff import Handoff
from procs import wait_for


def runs(*names: str) -> list[ClaimedRun]:
    # The hand-off only passes runs along: names stand in for them.
    return [cast(ClaimedRun, name) for name in names]


class Recorder:
    def __init__(self) -> None:
        self.added = 0
        self.started: list[str] = []
        self.ran = threading.Event()
        self.release = asyncio.Event()
        self.handoff: Handoff | None = None

    def add_runner(self) -> None:
        self.added += 1

    async def run_async(self, claimed: ClaimedRun) -> None:
        self.started.append(cast(str, claimed))
        self.ran.set()
        assert self.handoff is not None
        self.handoff.done(sync=False)


def make(slots: int, rec: Recorder) -> Handoff:
    handoff = Handoff(
        slots,
        runs_on_loop=lambda c: cast(str, c).startswith("a"),
        run_async=rec.run_async,
        add_runner=rec.add_runner,
    )
    rec.handoff = handoff
    return handoff


def test_sync_runs_wait_for_a_slot_in_claim_order_and_get_only_the_runners_they_need() -> None:
    rec = Recorder()
    handoff = make(2, rec)
    handoff.put_batch(runs("s1", "s2", "s3", "s4"))
    assert rec.added == 2  # two slots: two runs under way, two runners
    assert [handoff.get_nowait(), handoff.get_nowait()] == ["s1", "s2"]
    assert handoff.empty()
    handoff.done(sync=True)  # s1 ended: s3 takes its slot, on the runner already there
    assert handoff.get_nowait() == "s3"
    assert rec.added == 2
    handoff.stop_runners()
    handoff.put_batch(runs("s5"))  # after the drain's end nothing more starts
    assert [handoff.get_nowait(), handoff.get_nowait()] == [None, None]
    assert handoff.empty()
    handoff.close()


def test_async_runs_take_no_runner_and_a_batch_wakes_the_loop_once() -> None:
    rec = Recorder()
    handoff = make(50, rec)
    try:
        handoff.put_batch(runs(*(f"a{i}" for i in range(30))))
        wait_for(lambda: len(rec.started) == 30, timeout=10, what="30 async runs started")
        assert rec.started == [f"a{i}" for i in range(30)]
        assert rec.added == 0
        assert handoff.loop.wakeups == 1
        thread = handoff.loop.thread
        assert thread is not None
        assert thread.name == "longops-async"
    finally:
        handoff.close()
    assert not thread.is_alive()


def test_slots_are_shared_by_sync_and_async_runs() -> None:
    rec = Recorder()
    handoff = make(1, rec)
    try:
        handoff.put_batch(runs("s1", "a1"))
        assert handoff.get_nowait() == "s1"
        assert rec.started == []  # the one slot is s1's
        handoff.done(sync=True)
        assert rec.ran.wait(10)
        assert rec.started == ["a1"]
    finally:
        handoff.close()


def test_a_runner_that_ends_a_run_takes_the_next_itself_without_waking_another() -> None:
    rec = Recorder()
    handoff = make(2, rec)
    handoff.put_batch(runs("s1", "s2", "s3", "a4", "s5"))
    assert [handoff.get_nowait(), handoff.get_nowait()] == ["s1", "s2"]
    # s1's runner ends it and gets s3 straight back: nothing goes through the queue, whose
    # put would wake an idle runner thread.
    assert handoff.done_then_next() == "s3"
    assert handoff.empty()
    # Next in line is an async run: it starts on the loop, and the runner gets nothing.
    assert handoff.done_then_next() is None
    assert rec.ran.wait(5)
    assert rec.started == ["a4"]
    # The async run freed its slot: s5 went to the queue for whichever runner asks.
    wait_for(lambda: not handoff.empty(), timeout=5, what="s5 queued")
    assert handoff.get_nowait() == "s5"
    assert handoff.done_then_next() is None  # nothing waits
    assert rec.added == 2
    handoff.stop_runners()
    handoff.close()
