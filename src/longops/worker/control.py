"""What a runner and the monitor share about one run (:class:`RunControl`): its progress,
its stop requests and how it ended; see ``worker/executor.py`` for the pipeline that uses it.

Example::

    control = RunControl(claimed, store=store, clock=clock, task=task)
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from longops import telemetry
from longops.domain.clock import Clock
from longops.domain.operation import CancelMode, Operation, Outcome, StopMode
from longops.domain.progress import Estimator, Progress, ProgressCounter
from longops.store.base import ClaimedRun, Store
from longops.worker.context import RunContext
from longops.worker.invoke import MAX_ERROR_LENGTH, RunOutcome
from longops.worker.isolation import Child
from longops.worker.registry import TaskDef
from longops.worker.runs import StopCause

log = logging.getLogger("longops.worker")

KILL_AFTER = 5.0
"""Seconds between SIGTERM and SIGKILL when a child process is stopped by force."""


class RunControl:
    """What the runner and the monitor share about one run (see the module docstring)."""

    def __init__(
        self,
        claimed: ClaimedRun,
        *,
        store: Store | None,
        clock: Clock,
        task: TaskDef | None = None,
        wake_monitor: Callable[[], None] | None = None,
        kill_after: float = KILL_AFTER,
    ) -> None:
        self.claimed = claimed
        self.store = store
        self.clock = clock
        self.task = task
        self.counter = ProgressCounter()
        self.cancel = threading.Event()
        self.wake_monitor = wake_monitor
        self.kill_after = kill_after
        self.ctx: RunContext | None = None
        self._lock = threading.Lock()
        self.cause: StopCause | None = None
        self.reason: str | None = None
        self.force_at: datetime | None = None
        self.force_applied = False
        self.overdue = False
        self.overdue_at: datetime | None = None
        """When forced async code that still runs is declared overdue."""
        self.started_at: datetime | None = None
        self.deadline: datetime | None = None
        self._estimator = Estimator()
        self.began = False
        self.flushed: tuple[int, int] = (0, 0)
        self.flushed_reading: Progress | None = None
        self.last_flush = 0.0
        self._async: tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = None
        self.child: Child | None = None
        self.abandoned = False
        self.write_lock = threading.Lock()
        """Progress writes of this run take turns (the monitor's and a checkpoint's)."""

    @property
    def operation(self) -> Operation:
        return self.claimed.operation

    @property
    def killable(self) -> bool:
        """Whether a forced stop can end the code: a child process, or an asyncio task."""
        task = self.task
        return task is not None and (task.isolation == "process" or task.is_async)

    # -- the runner's side ------------------------------------------------------------------
    def begin(self, *, start_up: timedelta = timedelta(0)) -> bool:
        """The task code starts now (the timeout and the rate count from here); False when
        the run was handed back or asked to stop before it began, and must not start.

        ``start_up``: time the code may take to begin on top of its timeout (a child
        process starting and importing the task); :meth:`code_began` then counts the
        timeout from the code's real start."""
        with self._lock:
            if self.abandoned or self.cause is not None:
                return False
            self.began = True
            self.started_at = self.clock.now()
            self.deadline = self.started_at + start_up + self.operation.timeout
        telemetry.started(self.operation, self.claimed.run_no, self.started_at)
        return True

    def code_began(self) -> None:
        """The task code began in its child process: the timeout counts from now (the
        job's own run time, as in Business Central, not the child's start-up)."""
        with self._lock:
            if self.cause is None:
                self.deadline = self.clock.now() + self.operation.timeout

    def attach_async(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
        with self._lock:
            self._async = (loop, task)
            forced = self.force_applied
        if forced:  # forced before the coroutine even started
            loop.call_soon_threadsafe(task.cancel)

    def attach_child(self, child: Child) -> bool:
        """Note the child running this attempt; False when the run was handed back first."""
        with self._lock:
            if self.abandoned:
                return False
            self.child = child
        return True

    def abandon_unstarted(self) -> bool:
        """Abandon the run if its code has not begun (then it never will); True if so."""
        with self._lock:
            if self.began:
                return False
            self.abandoned = True
            self.force_applied = True
        self.cancel.set()
        return True

    def abandon(self) -> Child | None:
        """The run is being handed back (a drain): nothing more may start, and the child
        running it (returned, to be killed by the caller) must not go on."""
        with self._lock:
            self.abandoned = True
            self.force_applied = True
            child, self.child = self.child, None
        self.cancel.set()
        return child

    def reading(self, at: datetime | None = None) -> Progress | None:
        """The counter as a reading with rate and ETA, or None if nothing was reported."""
        if self.counter.version == 0:
            return None
        at = at or self.clock.now()
        snapshot = self.counter.snapshot()
        with self._lock:  # the monitor, a checkpoint and the final reading may all ask
            return self._estimator.observe(snapshot, at)

    def moved(self, reading: Progress) -> bool:
        """Whether the work moved since the last reading written (rate and times aside)."""
        last = self.flushed_reading
        return last is None or bare_reading(reading) != bare_reading(last)

    def save_checkpoint(
        self, text: str, reading: tuple[dict[str, Any], int, int] | None = None
    ) -> bool:
        """Store a checkpoint (and the progress so far, so the two agree) under the lease.

        ``reading`` is a child process's counter (reading, version, step version)."""
        if self.store is None:
            return False
        if reading is not None:
            self.counter.load(Progress.from_json(reading[0]), reading[1], reading[2])
        with self.write_lock:
            now = self.clock.now()
            versions = self.counter.versions()
            progress = self.reading(now)
            moved = progress is not None and self.moved(progress)
            ok = self.store.save_checkpoint(
                self.operation.id,
                self.claimed.lease_token,
                now,
                text,
                None if progress is None else json.dumps(progress.to_json()),
                moved=moved,
            )
            if ok and progress is not None:
                self.flushed, self.flushed_reading = versions, progress
        return ok

    # -- the monitor's side -----------------------------------------------------------------
    def ask_to_stop(
        self, cause: StopCause, reason: str, *, grace: float, force: bool = False
    ) -> bool:
        """Give the cooperative signal and set when force follows; True when this is new.

        A cancel request overrides a timeout in progress (a person asked), and a forced
        request brings the forced stop forward.
        """
        now = self.clock.now()
        with self._lock:
            new = self.cause is None or (
                cause == StopCause.CANCEL and self.cause != StopCause.CANCEL
            )
            if new:
                self.cause, self.reason = cause, reason
            force_at = now if force else now + timedelta(seconds=grace)
            if self.force_at is None or force_at < self.force_at:
                self.force_at = force_at
            ctx = self.ctx
        if ctx is not None:
            ctx.request_stop(reason)
        else:
            self.cancel.set()
        return new

    def force_due(self, now: datetime) -> bool:
        return (
            self.began
            and self.force_at is not None
            and now >= self.force_at
            and not self.force_applied
            and not self.overdue
        )

    def overdue_due(self, now: datetime) -> bool:
        """Forced async code that swallowed its cancellation and still runs past a second
        grace period is overdue too."""
        return self.overdue_at is not None and now >= self.overdue_at and not self.overdue

    def apply_force(self, grace: float) -> StopMode:
        """Stop the code by force where that is possible; returns how it will end."""
        with self._lock:
            if self.killable:
                self.force_applied = True
                target = self._async
                if (
                    self.task is not None
                    and self.task.is_async
                    and self.task.isolation != "process"
                ):
                    self.overdue_at = self.clock.now() + timedelta(seconds=grace)
            else:
                self.overdue = True
                target = None
        if target is not None:
            loop, task = target
            loop.call_soon_threadsafe(task.cancel)
        return StopMode.FORCED if self.force_applied else StopMode.OVERDUE

    def mark_overdue(self) -> None:
        with self._lock:
            self.overdue = True

    def timed_out(self, now: datetime) -> bool:
        return self.deadline is not None and now >= self.deadline and self.cause is None

    def not_started(self) -> RunOutcome:
        """The outcome of a run asked to stop before its code began (it never ran)."""
        reason = self.reason or "cancel requested"
        if self.cause == StopCause.TIMEOUT:
            return RunOutcome(Outcome.TIMEOUT, error_message=f"{reason}: before its code began")
        if self.cause == StopCause.CANCEL:
            return RunOutcome(
                Outcome.CANCELLED,
                error_message=f"{reason}: before its code began",
                cancel_mode=CancelMode.BEFORE_START,
            )
        # Handed back, or its lease lost: the result is never recorded by this worker.
        return RunOutcome(Outcome.INTERRUPTED, error_message=reason)

    def classify(self, run: RunOutcome) -> RunOutcome:
        """How the run ended, in the light of a cancel request or timeout it was given."""
        if not self.began:
            return run  # it never started: not_started() said how it ended
        cause = self.cause
        if cause is None or cause == StopCause.FENCED:
            if run.outcome is Outcome.CANCELLED:
                # The code raised OperationCancelled of its own accord.
                return with_changes(
                    run, stop_mode=StopMode.COOPERATIVE, cancel_mode=CancelMode.COOPERATIVE
                )
            return run
        if run.outcome is Outcome.SUCCESS and not self.overdue:
            return run  # it finished before it noticed: the work is done, keep it
        if self.overdue:
            stop = StopMode.OVERDUE
        elif run.forced or self.force_applied:
            stop = StopMode.FORCED
        else:
            stop = StopMode.COOPERATIVE
        how = {
            StopMode.FORCED: "stopped by force",
            StopMode.OVERDUE: "ignored the request past its grace period; its result was discarded",
            StopMode.COOPERATIVE: "stopped when asked",
        }[stop]
        detail = f"{self.reason}: {how}"
        if (
            stop is StopMode.FORCED
            and run.error_message
            and run.error_message != "stopped by force"
        ):
            detail = f"{detail} ({run.error_message})"
        if cause == StopCause.TIMEOUT:
            return RunOutcome(
                Outcome.TIMEOUT,
                error=run.error,
                error_message=detail[:MAX_ERROR_LENGTH],
                traceback=run.traceback,
                stop_mode=stop,
                peak_rss=run.peak_rss,
            )
        return RunOutcome(
            Outcome.CANCELLED,
            error=run.error,
            error_message=detail[:MAX_ERROR_LENGTH],
            stop_mode=stop,
            cancel_mode=CancelMode(stop.value),
            peak_rss=run.peak_rss,
        )


def bare_reading(reading: Progress) -> Progress:
    """``reading`` without its derived rate and ETA (what is stored)."""
    return replace(reading, rate=None, eta_at=None, eta_source=None, updated_at=None)


def with_changes(run: RunOutcome, **changes: Any) -> RunOutcome:
    """``run`` with ``changes`` (a frozen dataclass)."""
    return replace(run, **changes)
