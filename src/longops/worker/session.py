"""A worker process's session: claims operations, runs them, records how they ended.

Threads, each with one job:

- the dispatcher claims batches of ready operations for free slots and waits for wake-ups;
- ``concurrency`` runner threads run one operation at a time each;
- the completer writes finished runs back in batches (one round trip for many);
- the heartbeat keeps the session alive;
- the monitor writes progress (at most once per ``progress_interval`` per run, at once on a
  step change), enforces timeouts and climbs the cancellation ladder (signal, grace,
  forced stop); on PostgreSQL a listener hears cancel requests the moment they commit;
- the service runner does the leader-elected maintenance duties.

``SIGTERM`` (or :meth:`Worker.drain`) stops claiming, lets running work finish within the
grace period and hands the rest back as *interrupted* without spending an attempt; a second
signal hands everything back at once.

Example::

    worker = app.worker(queues=["default"], concurrency=4)
    worker.run()          # blocks until SIGTERM/SIGINT
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import FrameType
from typing import Protocol
from zoneinfo import ZoneInfo

from longops.domain.classification import LOGGED_BY_DEFAULT, DataClass, loggable
from longops.domain.clock import Clock
from longops.domain.ids import new_id
from longops.domain.operation import (
    CancelMode,
    EventType,
    Outcome,
    Session,
    SessionEventType,
    SessionState,
    StopMode,
)
from longops.domain.progress import Progress
from longops.store.base import (
    CancelListener,
    CancelSignal,
    ClaimedRun,
    ClaimParams,
    ProgressUpdate,
    RunResult,
    Store,
)
from longops.worker.executor import (
    CANCEL,
    FENCED,
    KILL_AFTER,
    TIMEOUT,
    RunControl,
    RunOutcome,
    execute,
    result_for,
)
from longops.worker.invoke import close_thread_loop
from longops.worker.isolation import ChildPool
from longops.worker.registry import DEFAULT_CANCEL_GRACE, TaskRegistry
from longops.worker.zones import CompanyZones

log = logging.getLogger("longops.worker")


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """How a worker runs. Times in seconds."""

    queues: tuple[str, ...] = ("default",)
    concurrency: int = 4
    heartbeat_interval: float = 5.0
    session_timeout: float = 30.0
    grace_period: float = 30.0
    poll_interval: float = 1.0
    claim_batch: int = 100
    rescuer_interval: float = 5.0
    retention: timedelta = timedelta(days=30)
    run_services: bool = True
    progress_interval: float = 1.0
    """At most one progress write per run per this many seconds (plus one per step)."""
    max_runs_per_child: int = 100
    max_memory_per_child: int | None = None
    """Bytes of resident memory after which a child process is replaced."""
    kill_after: float = KILL_AFTER
    """Seconds between SIGTERM and SIGKILL when a child process is stopped by force."""
    monitor_tick: float = 0.1
    companies: tuple[str, ...] | None = None
    """Serve only these companies' operations (None: every active company)."""
    log_classes: frozenset[DataClass] = LOGGED_BY_DEFAULT
    """Data classes the worker's own log lines may carry (error text is CustomerContent)."""

    def __post_init__(self) -> None:
        from longops.domain.errors import ValidationError

        if not 0.01 <= self.progress_interval <= 3600:
            raise ValidationError(
                "progress_interval", "must be between 0.01 and 3600 seconds", self.progress_interval
            )
        if self.max_runs_per_child < 1:
            raise ValidationError("max_runs_per_child", "must be at least 1")

        if not 1 <= self.concurrency <= 1000:
            raise ValidationError("concurrency", "must be between 1 and 1000", self.concurrency)
        if not self.queues:
            raise ValidationError("queues", "must name at least one queue")
        if self.companies is not None and not self.companies:
            raise ValidationError("companies", "must name at least one company (or none: all)")
        if self.retention < timedelta(hours=1):
            raise ValidationError("retention", "must be at least one hour")
        if self.heartbeat_interval <= 0 or self.session_timeout <= self.heartbeat_interval:
            raise ValidationError(
                "session_timeout", "must be longer than heartbeat_interval (both > 0)"
            )


def active_session(
    now: datetime,
    queues: tuple[str, ...] = ("default",),
    *,
    concurrency: int = 1,
    session_id: uuid.UUID | None = None,
    companies: tuple[str, ...] | None = None,
) -> Session:
    """A new session of this process, active as of ``now``, ready to register.

    Example::

        store.register_session(active_session(clock.now(), ("default",), concurrency=4))
    """
    return Session(
        id=session_id or new_id(now),
        host=socket.gethostname(),
        pid=os.getpid(),
        queues=tuple(queues),
        concurrency=concurrency,
        state=SessionState.ACTIVE,
        started_at=now,
        last_heartbeat_at=now,
        ended_at=None,
        companies=None if companies is None else tuple(sorted(companies)),
    )


class Maintenance(Protocol):
    """Duties a worker runs beside its runs (see ``services.leader.ServiceRunner``)."""

    session_id: uuid.UUID

    def start(self) -> None: ...

    def stop(self) -> None: ...


class Worker:
    """One session of work: see the module docstring."""

    def __init__(
        self,
        store: Store,
        registry: TaskRegistry,
        clock: Clock,
        options: WorkerOptions | None = None,
        maintenance: Callable[[uuid.UUID], Maintenance] | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.options = options or WorkerOptions()
        self.session_id = new_id(clock.now())
        self._zones = CompanyZones(store)
        self._runs: dict[uuid.UUID, RunControl] = {}
        self._lock = threading.Lock()
        self._work: queue.Queue[ClaimedRun | None] = queue.Queue()
        self._done: queue.Queue[RunResult | None] = queue.Queue()
        self._slot_freed = threading.Event()
        self._draining = threading.Event()
        self._stop_now = threading.Event()
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pending_writes = 0
        self._writes_idle = threading.Condition(self._lock)
        self._signals = 0
        self._grace = self.options.grace_period
        self._monitor_wake = threading.Event()
        # Pushed cancel requests by operation id, with when they arrived (monotonic).
        self._cancel_inbox: dict[uuid.UUID, float] = {}
        self._cancel_listener: CancelListener | None = None
        self._last_cancel_poll = 0.0
        self.pool = ChildPool(
            max_runs=self.options.max_runs_per_child, max_memory=self.options.max_memory_per_child
        )
        # The leader-elected maintenance duties (rescuer, expiry, ...) are given by whoever
        # composes the worker: the worker runs them but does not depend on their code.
        self.services: Maintenance | None = (
            maintenance(self.session_id)
            if maintenance is not None and self.options.run_services
            else None
        )

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Register the session and start its threads; returns at once."""
        self._register(self.session_id)
        self._wakeups = self.store.wakeups()
        for i in range(self.options.concurrency):
            self._spawn(self._runner_loop, f"longops-runner-{i}")
        self._spawn(self._completer_loop, "longops-completer")
        self._spawn(self._heartbeat_loop, "longops-heartbeat")
        self._spawn(self._monitor_loop, "longops-monitor")
        self._cancel_listener = self.store.cancel_listener()
        if self._cancel_listener is not None:
            self._spawn(self._listen_loop, "longops-cancel-listener")
        self._dispatcher = self._spawn(self._dispatch_loop, "longops-dispatcher")
        if self.services is not None:
            self.services.start()
        companies = self.options.companies
        log.info(
            "worker session %s started: queues %s, companies %s, %d slots",
            self.session_id,
            ",".join(self.options.queues),
            "all" if companies is None else ",".join(companies),
            self.options.concurrency,
            extra={"action": "worker_started", "session_id": str(self.session_id)},
        )

    def run(self, *, install_signals: bool = True) -> int:
        """Start and block until drained (SIGTERM/SIGINT); returns the exit code."""
        if install_signals:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        self.start()
        while not self._draining.wait(0.2):
            pass
        self._finish_drain()
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals == 1:
            self.drain()
        else:
            self._stop_now.set()

    def drain(self) -> None:
        """Stop claiming; :meth:`run` then waits for running work up to the grace period."""
        if self._draining.is_set():
            self._stop_now.set()
            return
        self._draining.set()
        self._slot_freed.set()

    def stop(self, grace: float | None = None) -> None:
        """Drain and wait for the session to end (for workers started with :meth:`start`)."""
        if grace is not None:
            self._grace = grace
        self.drain()
        self._finish_drain()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def _finish_drain(self) -> None:
        if self._stopped.is_set() or not self._threads:
            return  # already stopped, or never started
        now = self.clock.now()
        self.store.end_session(
            self.session_id, SessionState.DRAINING, now, SessionEventType.DRAIN_STARTED
        )
        # No claim may land after the hand-back below takes its snapshot: wait for the
        # dispatcher to leave its loop (it sees the drain after its current wait, at most
        # poll_interval). The session is already `draining`, so a claim now takes nothing.
        self._dispatcher.join(timeout=self.options.poll_interval + 10)
        grace = self._grace
        with self._lock:
            running = len(self._runs)
        log.info(
            "draining: no new claims; waiting up to %g s for %d running operation(s)",
            grace,
            running,
            extra={"action": "drain_started"},
        )
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and not self._stop_now.is_set():
            with self._lock:
                if not self._runs:
                    break
            self._slot_freed.wait(0.05)
            self._slot_freed.clear()
        with self._lock:
            leftover = list(self._runs.values())
            self._runs.clear()
        for run in leftover:
            # Nothing of a handed-back run may go on: code not yet begun never starts, and
            # a child running it is dead before another worker can claim the operation.
            child = run.abandon()
            if child is not None:
                child.kill()
                child.join(5.0)
            op = run.claimed.operation
            outcome = RunOutcome(
                Outcome.INTERRUPTED,
                error_message=f"worker session {self.session_id} shut down before the run ended",
                # With a cancel request pending, the store ends it cancelled: say how.
                cancel_mode=CancelMode.OVERDUE if run.overdue else CancelMode.FORCED,
            )
            self._submit(
                result_for(
                    run.claimed, outcome, task=None, clock=self.clock, tz=self._zones(op.company)
                )
            )
        for _ in range(self.options.concurrency):
            self._work.put(None)
        self._wait_writes()
        self._done.put(None)
        self.pool.close()
        if self.services is not None:
            self.services.stop()
        self.store.end_session(
            self.session_id,
            SessionState.STOPPED,
            self.clock.now(),
            SessionEventType.LOGOFF,
            f"drained; {len(leftover)} run(s) handed back",
        )
        self._stopped.set()
        self._monitor_wake.set()
        self._wakeups.close()
        if self._cancel_listener is not None:
            self._cancel_listener.close()
        log.info(
            "worker session %s stopped; %d run(s) handed back as interrupted",
            self.session_id,
            len(leftover),
            extra={"action": "worker_stopped", "handed_back": len(leftover)},
        )

    # -- threads --------------------------------------------------------------------------------
    def _spawn(self, target: Callable[[], None], name: str) -> threading.Thread:
        # Daemon threads: a run that outlives the grace period must not keep the process up.
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    def _register(self, session_id: uuid.UUID) -> None:
        self.store.register_session(
            active_session(
                self.clock.now(),
                self.options.queues,
                concurrency=self.options.concurrency,
                session_id=session_id,
                companies=self.options.companies,
            )
        )

    def _dispatch_loop(self) -> None:
        opts = self.options
        while not self._draining.is_set():
            try:
                woke = self._dispatch_once()
            except Exception:
                log.exception("claim failed", extra={"action": "claim_failed"})
                woke = False
                self._draining.wait(opts.poll_interval)
            if woke:
                continue
            with self._lock:
                free = opts.concurrency - len(self._runs)
            if free <= 0:
                self._slot_freed.wait(opts.poll_interval)
                self._slot_freed.clear()
                continue
            try:
                idle = self._idle_wait()
            except Exception:
                # A refused read (a lock held past lock_timeout, say) must not end the loop.
                log.warning("could not read the next due time", exc_info=True)
                idle = opts.poll_interval
            self._wakeups.wait(idle)

    def _dispatch_once(self) -> bool:
        """Claim for the free slots; True when the claim filled them (claim again at once)."""
        with self._lock:
            free = self.options.concurrency - len(self._runs)
        if free <= 0:
            return False
        want = min(free, self.options.claim_batch)
        claimed = self.store.claim(
            ClaimParams(
                self.session_id,
                self.options.queues,
                want,
                self.clock.now(),
                clock=self.clock,
                companies=self.options.companies,
            )
        )
        with self._lock:
            for c in claimed:
                self._runs[c.operation.id] = RunControl(
                    c,
                    store=self.store,
                    clock=self.clock,
                    task=self.registry.get(c.operation.task)
                    if c.operation.task in self.registry
                    else None,
                    wake_monitor=self._monitor_wake.set,
                    kill_after=self.options.kill_after,
                )
        for c in claimed:
            self._work.put(c)
        return len(claimed) == want

    def _idle_wait(self) -> float:
        poll = self.options.poll_interval
        due = self.store.next_due_at(self.options.queues, self.options.companies)
        if due is None:
            return poll
        wait = (due - self.clock.now()).total_seconds()
        # Due already (held back by a busy category, say): a finish will wake us.
        return poll if wait <= 0 else min(poll, wait)

    def _runner_loop(self) -> None:
        try:
            self._run_claimed()
        finally:
            close_thread_loop()

    def _run_claimed(self) -> None:
        while True:
            claimed = self._work.get()
            if claimed is None:
                return
            op = claimed.operation
            with self._lock:
                run = self._runs.get(op.id)
            if run is None:
                continue  # handed back by a drain before it started
            try:
                result = execute(
                    claimed, self.registry, self.clock, self._zones(op.company), run, self.pool
                )
            except Exception as exc:
                # Not the task's failure (that is classified inside execute) but ours, e.g.
                # the database was unreachable: record it rather than leave the run hanging.
                log.exception("run could not be executed", extra={"action": "run_crashed"})
                result = result_for(
                    claimed,
                    RunOutcome(Outcome.ERROR, error_message=f"worker error: {exc!r}"[:2048]),
                    task=None,
                    clock=self.clock,
                    tz=ZoneInfo("UTC"),
                )
            with self._lock:
                # A rejoined session may hold a newer run of the same operation: only this
                # run's own entry is removed.
                mine = self._runs.get(op.id) is run
                if mine:
                    del self._runs[op.id]
            if mine and run.cause != FENCED:
                # (A run whose lease was lost leaves its operation to the rescuer.)
                self._submit(result)
                _log_result(op.task, claimed, result, self.options.log_classes)
            self._slot_freed.set()

    def _submit(self, result: RunResult) -> None:
        with self._lock:
            self._pending_writes += 1
        self._done.put(result)

    def _wait_writes(self) -> None:
        with self._writes_idle:
            self._writes_idle.wait_for(lambda: self._pending_writes == 0, timeout=60)

    def _completer_loop(self) -> None:
        while True:
            first = self._done.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < 500:
                try:
                    nxt = self._done.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._done.put(None)
                    break
                batch.append(nxt)
            self._write(batch)
            with self._writes_idle:
                self._pending_writes -= len(batch)
                self._writes_idle.notify_all()

    def _write(self, batch: Sequence[RunResult]) -> None:
        delay = 0.05
        for _ in range(30):
            try:
                applied = self.store.finish_runs(batch)
            except Exception:
                log.warning("could not record finished runs; retrying", exc_info=True)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            for res, ok in zip(batch, applied, strict=True):
                if not ok:
                    log.warning(
                        "run result discarded: lease no longer held",
                        extra={"action": "run_fenced", "operation_id": str(res.operation_id)},
                    )
            return
        log.error("gave up recording %d finished runs", len(batch))

    def _heartbeat_loop(self) -> None:
        interval = self.options.heartbeat_interval
        while not self._stopped.wait(interval):
            try:
                state = self.store.heartbeat(self.session_id, self.clock.now())
            except Exception:
                log.warning("heartbeat failed", exc_info=True)
                continue
            if state is SessionState.LOST:
                self._rejoin()
            elif state is SessionState.DRAINING and not self._draining.is_set():
                log.info(
                    "a drain of this session was requested; draining",
                    extra={"action": "drain_requested", "session_id": str(self.session_id)},
                )
                self.drain()

    def _rejoin(self) -> None:
        """The session was declared lost (we were silent too long): start a new one.

        The old session's runs were or will be recovered by the rescuer; their late results
        are fenced out by the lease token, so nothing is recorded twice.
        """
        old = self.session_id
        new = new_id(self.clock.now())
        self._register(new)
        self.store.record_session_event(
            new,
            SessionEventType.HEARTBEAT_RESUMED,
            self.clock.now(),
            f"replaces session {old}, declared lost",
        )
        self.session_id = new
        if self.services is not None:
            self.services.session_id = new
        # The old session's runs were (or will be) handed to other workers: their code must
        # stop now, by force where it can be (child processes, asyncio tasks).
        with self._lock:
            old_runs = list(self._runs.values())
        for run in old_runs:
            run.ask_to_stop(FENCED, f"session {old} was declared lost", grace=0, force=True)
        self._monitor_wake.set()
        log.warning(
            "session declared lost; rejoined as a new session",
            extra={"action": "session_rejoined", "old": str(old), "new": str(new)},
        )

    # -- the monitor: progress, timeouts, the cancellation ladder ---------------------------
    def _listen_loop(self) -> None:
        listener = self._cancel_listener
        assert listener is not None
        while not self._stopped.is_set():
            try:
                ids = listener.wait(0.5)
            except Exception:
                if self._stopped.is_set():
                    return
                log.warning("cancel listener failed; polling instead", exc_info=True)
                self._cancel_listener = None
                with contextlib.suppress(Exception):
                    listener.close()
                return
            if ids:
                arrived = time.monotonic()
                with self._lock:
                    for op_id in ids:
                        self._cancel_inbox.setdefault(op_id, arrived)
                self._monitor_wake.set()

    def _monitor_loop(self) -> None:
        tick = self.options.monitor_tick
        while not self._stopped.is_set():
            self._monitor_wake.wait(tick)
            self._monitor_wake.clear()
            try:
                self.monitor_once()
            except Exception:
                log.warning("monitor round failed", exc_info=True)

    def monitor_once(self) -> None:
        """One round of the monitor (public so tests can drive it with a frozen clock)."""
        with self._lock:
            runs = dict(self._runs.items())
            inbox = self._take_inbox(runs)
        if not runs:
            return
        self._apply_cancel_requests(runs, inbox)
        now = self.clock.now()
        for run in runs.values():
            if run.timed_out(now):
                timeout = run.operation.timeout.total_seconds()
                reason = f"timed out after {timeout:g} s"
                run.ask_to_stop(TIMEOUT, reason, grace=self._grace_of(run))
                self.store.record_run_event(
                    run.operation.id,
                    run.claimed.lease_token,
                    now,
                    EventType.TIMEOUT,
                    {"timeout_seconds": timeout},
                )
            if run.force_due(now) and run.apply_force(self._grace_of(run)) is StopMode.OVERDUE:
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
        mine = {op_id for op_id in self._cancel_inbox if op_id in runs}
        keep_for = self.options.heartbeat_interval * 2
        self._cancel_inbox = {
            op_id: at
            for op_id, at in self._cancel_inbox.items()
            if op_id not in mine and now - at < keep_for
        }
        return mine

    def _grace_of(self, run: RunControl) -> float:
        task = run.task
        return (task.cancel_grace if task else DEFAULT_CANCEL_GRACE).total_seconds()

    def _apply_cancel_requests(
        self, runs: dict[uuid.UUID, RunControl], inbox: set[uuid.UUID]
    ) -> None:
        mono = time.monotonic()
        # Pushed requests (PostgreSQL) are acted on at once; polling is the fallback
        # (SQLite, or a listener that lost its connection).
        every = (
            self.options.heartbeat_interval
            if self._cancel_listener is not None
            else self.options.poll_interval
        )
        wanted = [i for i in inbox if i in runs]
        if mono - self._last_cancel_poll >= every:
            self._last_cancel_poll = mono
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
            if run.ask_to_stop(CANCEL, reason, grace=self._grace_of(run), force=sig.force):
                log.info(
                    "operation %s asked to stop (%s)",
                    sig.operation_id,
                    "forced" if sig.force else "cooperative",
                    extra={"action": "cancel_seen", "operation_id": str(sig.operation_id)},
                )
            elif sig.force and run.force_at is not None and not run.force_applied:
                run.ask_to_stop(CANCEL, reason, grace=0, force=True)

    def _mark_overdue(self, run: RunControl, now: datetime) -> None:
        op = run.operation
        what = {TIMEOUT: "timeout", FENCED: "lost lease"}.get(run.cause or "", "cancel request")
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
            applied = self.store.flush_progress([u for *_, u in due])
            for (run, versions, reading, _), ok in zip(due, applied, strict=True):
                run.flushed, run.flushed_reading = versions, reading
                run.last_flush = mono
                if not ok:
                    # Rescued elsewhere: its writes are fenced out, and the operation may
                    # run again elsewhere: stop the code now.
                    run.ask_to_stop(
                        FENCED, "this run no longer holds its operation", grace=0, force=True
                    )


def _log_result(
    task: str, claimed: ClaimedRun, result: RunResult, allowed: frozenset[DataClass]
) -> None:
    if result.outcome not in (Outcome.ERROR, Outcome.TIMEOUT):
        return
    # The exception type only: its message may carry customer content, which stays out of
    # logs unless CustomerContent is among the logged classes (it is on the attempt row).
    kind = (result.error_message or "error").split(":", 1)[0]
    then = (
        f"retry at {result.earliest_start_at:%Y-%m-%d %H:%M:%S}"
        if result.status.value == "ready" and result.earliest_start_at
        else f"now {result.status.value}"
    )
    log.warning(
        "operation %s (%s) attempt %d failed with %s; %s",
        claimed.operation.id,
        task,
        claimed.operation.attempt_count,
        kind,
        then,
        extra={"action": "run_failed", "operation_id": str(claimed.operation.id)},
    )
    log.debug(
        "operation %s error: %s",
        claimed.operation.id,
        loggable("longops_attempts.error_message", result.error_message, allowed),
    )
