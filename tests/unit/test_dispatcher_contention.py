"""The dispatcher after claims that came back short because a concurrent claim held the rows
they chose (worker/dispatcher.py): work is ready, so it waits briefly, not a whole poll."""

from __future__ import annotations

import threading
import uuid
from typing import Any, cast

from longops.domain.clock import FrozenClock
from longops.store.base import Claimed, ClaimParams, Store
from longops.worker.dispatcher import CONTENDED_RETRIES, CONTENDED_WAIT, Dispatcher
from longops.worker.handoff import Handoff
from longops.worker.options import WorkerOptions
from longops.worker.registry import TaskRegistry
from longops.worker.runs import RunTable


class ContendedStore:
    """Every claim comes back empty and contended; nothing is due."""

    def __init__(self) -> None:
        self.claims = 0

    def wakeups(self) -> Waits:
        return Waits()

    def session_runs(self, session_id: uuid.UUID) -> list[Any]:
        return []

    def claim(self, params: ClaimParams) -> Claimed:
        self.claims += 1
        return Claimed(contended=True)

    def next_due_at(self, queues: Any, companies: Any) -> None:
        return None


class Waits:
    def __init__(self) -> None:
        self.timeouts: list[float] = []

    def wait(self, timeout: float) -> bool:
        self.timeouts.append(timeout)
        return False

    def interrupt(self) -> None:
        pass

    def close(self) -> None:
        pass


def dispatcher(store: ContendedStore) -> Dispatcher:
    options = WorkerOptions(concurrency=2, poll_interval=1.0)
    return Dispatcher(
        cast(Store, store),
        TaskRegistry(),
        FrozenClock(),
        options,
        RunTable(),
        work=Handoff(2, runs_on_loop=lambda c: False, run_async=None, add_runner=lambda: None),  # type: ignore[arg-type]
        session_id=uuid.uuid4,
        slot_freed=threading.Event(),
        wake_monitor=lambda: None,
        hand_back=lambda r: None,
    )


def test_contended_claims_wait_briefly_then_back_off_to_the_poll() -> None:
    store = ContendedStore()
    d = dispatcher(store)
    for _ in range(CONTENDED_RETRIES):
        d.step()  # a retry each, after a jitter of a few ms: no wait for a wake-up
    assert d._wakeups is not None
    waits = cast(Waits, d._wakeups).timeouts
    assert store.claims == CONTENDED_RETRIES
    assert waits == []
    for _ in range(6):
        d.step()
    # Before: the whole poll (1 s) after the retries, although work was ready.
    assert waits[:5] == [CONTENDED_WAIT * 2**k for k in range(5)]
    assert waits[5] == 1.0  # a row held for long by someone else: the poll, no busier
