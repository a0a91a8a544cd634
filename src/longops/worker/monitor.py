"""The monitor: writes progress, enforces timeouts and climbs the cancellation ladder;
beside it, on PostgreSQL, a listener hears cancel requests the moment they commit.

Progress is written at most once per ``progress_interval`` per run (at once on a step
change), one batch statement for all due runs. A cancel request or a timeout first asks the
code to stop (the cooperative signal); after the task's ``cancel_grace`` it is stopped by
force (asyncio cancellation, SIGTERM then SIGKILL for a child process) or, for thread code
that cannot be killed, marked *cancel overdue* and its result discarded.

Example::

    monitor = Monitor(store, clock, options, table, listener)
    supervisor.spawn("monitor", monitor.step, stopped)
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from longops.domain.clock import Clock
from longops.domain.operation import EventType, StopMode
from longops.domain.progress import Progress
from longops.store.base import CancelListener, CancelSignal, ProgressUpdate, Store
from longops.store.faults import is_data_error
from longops.worker.executor import RunControl
from longops.worker.registry import DEFAULT_CANCEL_GRACE
from longops.worker.runs import RunTable, StopCause

if TYPE_CHECKING:
    from longops.worker.session import WorkerOptions

log = logging.getLogger("longops.worker")


class Monitor:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        options: WorkerOptions,
        table: RunTable,
        listener: CancelListener | None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.options = options
        self.table = table
        self.listener = listener
        self.listener_live = listener is not None
        """False while the listener's connection is down: the monitor polls instead."""
        self.closing = False
        self.wake = threading.Event()
        self._lock = threading.Lock()
        # Pushed cancel requests by operation id, with when they arrived (monotonic).
        self._inbox: dict[uuid.UUID, float] = {}
        self._last_poll = 0.0

    # -- the listener loop --------------------------------------------------------------------
    def listen_step(self) -> None:
        listener = self.listener
        assert listener is not None
        try:
            ids = listener.wait(0.5)
        except BaseException:
            if self.closing:
                return  # closed under it by the worker's stop
            self.listener_live = False
            raise
        if not self.listener_live:
            # Back after a break: requests sent meanwhile were not heard; poll once now.
            self.listener_live = True
            self._last_poll = 0.0
            self.wake.set()
        if ids:
            arrived = time.monotonic()
            with self._lock:
                for op_id in ids:
                    self._inbox.setdefault(op_id, arrived)
            self.wake.set()

    def close(self) -> None:
        self.closing = True
        if self.listener is not None:
            self.listener.close()

    def heard(self) -> set[uuid.UUID]:
        """Operations whose pushed cancel request waits for this monitor to act on it."""
        with self._lock:
            return set(self._inbox)

    # -- the monitor loop ---------------------------------------------------------------------
    def step(self) -> None:
        self.wake.wait(self.options.monitor_tick)
        self.wake.clear()
        self.monitor_once()

    def monitor_once(self) -> None:
        """One round (public so tests can drive it with a frozen clock)."""
        runs = self.table.running()
        with self._lock:
            inbox = self._take_inbox(runs)
        if not runs:
            return
        self._apply_cancel_requests(runs, inbox)
        now = self.clock.now()
        for run in runs.values():
            if run.timed_out(now):
                timeout = run.operation.timeout.total_seconds()
                reason = f"timed out after {timeout:g} s"
                run.ask_to_stop(StopCause.TIMEOUT, reason, grace=self.grace_of(run))
                self.store.record_run_event(
                    run.operation.id,
                    run.claimed.lease_token,
                    now,
                    EventType.TIMEOUT,
                    {"timeout_seconds": timeout},
                )
            if run.force_due(now) and run.apply_force(self.grace_of(run)) is StopMode.OVERDUE:
                self._mark_overdue(run, now)
            elif run.overdue_due(now):
                run.mark_overdue()  # async code that swallowed its cancellation
                self._mark_overdue(run, now)
        self._flush_progress(list(runs.values()))

    def _take_inbox(self, runs: dict[uuid.UUID, RunControl]) -> set[uuid.UUID]:
        """Pushed requests for runs of ours. A request may arrive between a claim's commit
        and the run's registration here: such an id is kept a while rather than dropped,
        so the request is not left to the slower poll. (Called holding the lock.)"""
        now = time.monotonic()
        mine = {op_id for op_id in self._inbox if op_id in runs}
        keep_for = self.options.heartbeat_interval * 2
        self._inbox = {
            op_id: at
            for op_id, at in self._inbox.items()
            if op_id not in mine and now - at < keep_for
        }
        return mine

    def grace_of(self, run: RunControl) -> float:
        task = run.task
        return (task.cancel_grace if task else DEFAULT_CANCEL_GRACE).total_seconds()

    def _apply_cancel_requests(
        self, runs: dict[uuid.UUID, RunControl], inbox: set[uuid.UUID]
    ) -> None:
        mono = time.monotonic()
        # Pushed requests (PostgreSQL) are acted on at once; polling is the fallback
        # (SQLite, or a listener whose connection is down).
        every = (
            self.options.heartbeat_interval
            if self.listener is not None and self.listener_live
            else self.options.poll_interval
        )
        wanted = [i for i in inbox if i in runs]
        if mono - self._last_poll >= every:
            self._last_poll = mono
            wanted = list(runs)
        if not wanted:
            return
        signals: list[CancelSignal] = self.store.cancel_requested(wanted)
        for sig in signals:
            run = runs.get(sig.operation_id)
            if run is None:
                continue
            reason = "cancelled" + (f" by {sig.requested_by}" if sig.requested_by else "")
            if sig.reason:
                reason += f": {sig.reason}"
            if run.ask_to_stop(StopCause.CANCEL, reason, grace=self.grace_of(run), force=sig.force):
                log.info(
                    "operation %s asked to stop (%s)",
                    sig.operation_id,
                    "forced" if sig.force else "cooperative",
                    extra={"action": "cancel_seen", "operation_id": str(sig.operation_id)},
                )
            elif sig.force and run.force_at is not None and not run.force_applied:
                run.ask_to_stop(StopCause.CANCEL, reason, grace=0, force=True)

    def _mark_overdue(self, run: RunControl, now: datetime) -> None:
        op = run.operation
        what = (
            {StopCause.TIMEOUT: "timeout", StopCause.FENCED: "lost lease"}.get(
                run.cause, "cancel request"
            )
            if run.cause is not None
            else "cancel request"
        )
        log.warning(
            "operation %s (%s) ignored its %s past the grace period and cannot be killed; "
            "its result will be discarded",
            op.id,
            op.task,
            what,
            extra={"action": "cancel_overdue", "operation_id": str(op.id)},
        )
        self.store.mark_cancel_overdue(
            op.id, run.claimed.lease_token, now, {"cause": run.cause, "reason": run.reason}
        )

    def _write_progress(self, updates: list[ProgressUpdate]) -> list[bool]:
        """Write the readings; if the database refuses a value (``is_data_error``), one by
        one, and a reading still refused is skipped (logged; the run goes on, its next
        reading is written): one bad reading never stops the monitor."""
        try:
            return self.store.flush_progress(updates)
        except Exception as exc:
            if not is_data_error(exc):
                raise
        applied: list[bool] = []
        for update in updates:
            try:
                applied += self.store.flush_progress([update])
            except Exception as exc:
                if not is_data_error(exc):
                    raise
                log.error(
                    "progress reading refused by the database (%s); skipped",
                    type(exc).__name__,
                    extra={"action": "progress_refused", "operation_id": str(update.operation_id)},
                )
                applied.append(True)
        return applied

    def _flush_progress(self, runs: list[RunControl]) -> None:
        mono = time.monotonic()
        candidates: list[RunControl] = []
        for run in runs:
            versions = run.counter.versions()
            if versions[0] == run.flushed[0] or not run.began:
                continue
            task = run.task
            interval = (
                task.progress_interval.total_seconds()
                if task is not None and task.progress_interval is not None
                else self.options.progress_interval
            )
            if versions[1] == run.flushed[1] and mono - run.last_flush < interval:
                continue
            candidates.append(run)
        if not candidates:
            return
        # Each run's writes take turns (a checkpoint also writes its progress): readings
        # are taken and written under the runs' locks, in one order, so no older reading can
        # land after a newer one.
        candidates.sort(key=lambda r: r.operation.id)
        with contextlib.ExitStack() as held:
            for run in candidates:
                held.enter_context(run.write_lock)
            now = self.clock.now()
            due: list[tuple[RunControl, tuple[int, int], Progress, ProgressUpdate]] = []
            for run in candidates:
                versions = run.counter.versions()
                reading = run.reading(now)
                assert reading is not None
                if not run.moved(reading):
                    # Reported again, unchanged: nothing to write; the stall clock runs on.
                    run.flushed = versions
                    continue
                update = ProgressUpdate(
                    run.operation.id,
                    run.claimed.lease_token,
                    now,
                    json.dumps(reading.to_json()),
                    moved=True,
                )
                due.append((run, versions, reading, update))
            if not due:
                return
            applied = self._write_progress([u for *_, u in due])
            for (run, versions, reading, _), ok in zip(due, applied, strict=True):
                run.flushed, run.flushed_reading = versions, reading
                run.last_flush = mono
                if not ok:
                    # Rescued elsewhere: its writes are fenced out, and the operation may
                    # run again elsewhere: stop the code now.
                    run.ask_to_stop(
                        StopCause.FENCED,
                        "this run no longer holds its operation",
                        grace=0,
                        force=True,
                    )
