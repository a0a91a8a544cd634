"""How claimed runs reach the code that runs them: the worker's slots, its runner threads
and its one event loop.

The dispatcher hands each claimed batch to a :class:`Handoff` in one call. A run starts
when one of the worker's ``concurrency`` slots is free (claimed-ahead runs wait here for
one, in claim order); then

- a run of an ``async def`` task (not process-isolated) becomes an asyncio task on the
  worker's one :class:`EventLoop` thread: the whole batch in one wake-up of the loop, no
  thread per run;
- any other run goes to the runner threads' queue. Runner threads are started only as
  sync runs need them (never more than ``concurrency``), so a worker that runs only async
  tasks keeps a handful of threads however many slots it has.

Example::

    handoff = Handoff(8, runs_on_loop=is_async, run_async=run_one, add_runner=spawn)
    handoff.put_batch(claimed_runs)   # the dispatcher, after a claim
    claimed = handoff.get()           # a runner thread; then handoff.done(sync=True),
    claimed = handoff.done_then_next()  # or this: the next waiting run for the same thread
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from longops.store.base import ClaimedRun

log = logging.getLogger("longops.worker")

LOOP_CLOSE_TIMEOUT = 2.0
"""Seconds the event loop gives its cancelled tasks to end when the worker stops."""


class EventLoop:
    """One thread running one asyncio event loop, started on first use.

    Example::

        loop = EventLoop()
        loop.submit(run_one, [a, b, c])   # one wake-up of the loop for the three
        loop.close()
    """

    def __init__(self, name: str = "longops-async") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.wakeups = 0
        """Times another thread handed the loop work (one per :meth:`submit`)."""

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def submit(
        self, fn: Callable[[ClaimedRun], Coroutine[Any, Any, None]], items: list[ClaimedRun]
    ) -> bool:
        """Start ``fn(item)`` as an asyncio task for each item, in one wake-up of the loop;
        False when the loop is closed (nothing starts)."""
        with self._lock:
            if self._closed:
                return False
            if self._loop is None:
                self._start()
            loop = self._loop
            here = threading.current_thread() is self._thread
            if not here:
                self.wakeups += 1
        assert loop is not None
        if here:
            # A run that ended on the loop starts the next one: no wake-up needed.
            self._spawn(fn, items)
        else:
            loop.call_soon_threadsafe(self._spawn, fn, items)
        return True

    def _start(self) -> None:
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        self._loop = loop

        def main() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                self._shut(loop)

        self._thread = threading.Thread(target=main, name=self._name, daemon=True)
        self._thread.start()
        ready.wait()

    def _spawn(
        self, fn: Callable[[ClaimedRun], Coroutine[Any, Any, None]], items: list[ClaimedRun]
    ) -> None:
        loop = self._loop
        assert loop is not None
        for item in items:
            task = loop.create_task(fn(item))
            # The loop keeps only weak references to its tasks.
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _shut(self, loop: asyncio.AbstractEventLoop) -> None:
        # What still runs was handed back by the drain already: stop it by force.
        pending = [t for t in self._tasks if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=LOOP_CLOSE_TIMEOUT))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()

    def close(self, timeout: float = LOOP_CLOSE_TIMEOUT + 1) -> None:
        """Stop the loop (cancelling the tasks that still run) and wait for its thread."""
        with self._lock:
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            loop.call_soon_threadsafe(loop.stop)
        except RuntimeError:
            return  # already closed
        thread.join(timeout)
        if thread.is_alive():
            log.warning(
                "the worker's event loop had not ended when the stop returned; left running",
                extra={"action": "thread_left_running", "loop": self._name},
            )


class Handoff(queue.Queue[ClaimedRun | None]):
    """The worker's slots and the two ways a run starts (see the module docstring).

    It is the runner threads' queue too: a runner :meth:`get`\\ s a run, runs it and then
    calls :meth:`done`; an async run calls ``done(sync=False)`` when it ends. ``None``
    (:meth:`put`) tells one runner thread to end."""

    def __init__(
        self,
        slots: int,
        *,
        runs_on_loop: Callable[[ClaimedRun], bool],
        run_async: Callable[[ClaimedRun], Coroutine[Any, Any, None]],
        add_runner: Callable[[], None],
        loop: EventLoop | None = None,
    ) -> None:
        super().__init__()
        self._free = slots
        self._runs_on_loop = runs_on_loop
        self._run_async = run_async
        self._add_runner = add_runner
        self.loop = loop or EventLoop()
        self._waiting: deque[ClaimedRun] = deque()
        self._gate = threading.Lock()
        self._sync_running = 0
        self._stopped = False
        self.runners = 0
        """Runner threads started so far."""

    def put(
        self, item: ClaimedRun | None, block: bool = True, timeout: float | None = None
    ) -> None:
        """One run (as a batch of one), or ``None``: one runner thread ends."""
        if item is None:
            super().put(None, block, timeout)
        else:
            self.put_batch((item,))

    def put_batch(self, items: Iterable[ClaimedRun]) -> None:
        """Hand over a claimed batch: what fits in the free slots starts now, the rest
        waits (in order) for slots to free."""
        with self._gate:
            if self._stopped:
                return  # the drain hands back whatever was claimed
            self._waiting.extend(items)
            sync, on_loop, new_runners = self._startable()
        self._start(sync, on_loop, new_runners)

    def done(self, *, sync: bool) -> None:
        """A run ended (or was skipped): its slot is free; the next waiting run starts."""
        with self._gate:
            self._free += 1
            if sync:
                self._sync_running -= 1
            if not self._waiting or self._stopped:
                return
            started = self._startable()
        self._start(*started)

    def done_then_next(self) -> ClaimedRun | None:
        """A sync run ended on the calling runner thread: its slot is free, and the next
        waiting run, if it is a sync one, is returned for this same thread to run at once
        (None: nothing for it; the thread goes back to :meth:`get`).

        Without this, the next run went through the queue, whose ``put`` woke an idle
        runner thread although the one that freed the slot was about to ask for more: with
        short runs and ``concurrency`` > 1 every run cost a thread wake-up and a GIL
        hand-over, and 8 slots drained slower than 1 (``benchmarks/results/
        profile-notes.md``, hot path v3)."""
        with self._gate:
            self._free += 1
            self._sync_running -= 1
            if not self._waiting or self._stopped:
                return None
            mine: ClaimedRun | None = None
            if not self._runs_on_loop(self._waiting[0]):
                mine = self._waiting.popleft()
                self._free -= 1
                self._sync_running += 1
            started = self._startable() if self._waiting else ([], [], 0)
        self._start(*started)
        return mine

    def _startable(self) -> tuple[list[ClaimedRun], list[ClaimedRun], int]:
        sync: list[ClaimedRun] = []
        on_loop: list[ClaimedRun] = []
        while self._free > 0 and self._waiting:
            item = self._waiting.popleft()
            self._free -= 1
            (on_loop if self._runs_on_loop(item) else sync).append(item)
        self._sync_running += len(sync)
        # A runner thread for every sync run under way, started the first time one is needed.
        new_runners = max(self._sync_running - self.runners, 0)
        self.runners += new_runners
        return sync, on_loop, new_runners

    def _start(self, sync: list[ClaimedRun], on_loop: list[ClaimedRun], new_runners: int) -> None:
        for _ in range(new_runners):
            self._add_runner()
        if sync:
            # The batch in one turn of the queue's lock and one notify (``Queue.put`` per
            # run took and released it, and notified, once each: a tenth of a no-op
            # drain's interpreter time went to the dispatcher's ``put_batch``).
            with self.mutex:
                for item in sync:
                    self._put(item)
                self.unfinished_tasks += len(sync)
                self.not_empty.notify(len(sync))
        if on_loop and not self.loop.submit(self._run_async, on_loop):
            # The worker is stopping: these were handed back by its drain already.
            for _ in on_loop:
                self.done(sync=False)

    def stop_runners(self) -> None:
        """Start nothing more and tell every runner thread to end (a drain's last step:
        what still waits for a slot was handed back already)."""
        with self._gate:
            self._stopped = True
            self._waiting.clear()
            runners = self.runners
        for _ in range(runners):
            super().put(None)

    def close(self) -> None:
        """Stop the event loop (runs still on it were handed back by the drain)."""
        self.loop.close()
