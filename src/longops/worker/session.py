"""A worker process's session: the composer of its parts.

The parts, each with one job, share one table of runs (``worker.runs.RunTable``):

- the dispatcher (``worker.dispatcher``) claims batches of ready operations for free slots
  and waits for wake-ups; it also hands back runs the database says this session has and
  the worker never got;
- ``concurrency`` runner threads run one operation at a time each (``worker.executor``);
- the completer (``worker.completer``) writes finished runs back in batches;
- the heartbeat (``worker.heartbeat``) keeps the session alive while every loop is;
- the monitor (``worker.monitor``) writes progress, enforces timeouts and climbs the
  cancellation ladder; on PostgreSQL a listener hears cancel requests the moment they commit;
- the leader-elected maintenance duties (``services.leader``), given by the composer.

Every background loop runs under one supervisor (``worker.supervise``): database faults
are waited out with backoff, a bug stops the worker with exit code ``EXIT_LOOP_DIED``.
:meth:`Worker.health` reports the loops.

``SIGTERM`` (or :meth:`Worker.drain`) stops claiming, lets running work finish within the
grace period and hands the rest back as *interrupted* without spending an attempt; a second
signal hands everything back at once.

Example::

    worker = app.worker(queues=["default"], concurrency=4)
    worker.run()          # blocks until SIGTERM/SIGINT
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from types import FrameType
from typing import Protocol
from zoneinfo import ZoneInfo

from longops.domain.clock import Clock
from longops.domain.ids import new_id
from longops.domain.maintenance import MaintenanceMode
from longops.domain.operation import (
    CancelMode,
    Outcome,
    SessionEventType,
    SessionState,
)
from longops.domain.status import StatusReason
from longops.store.base import ClaimedRun, RunResult, Store
from longops.store.faults import is_fault
from longops.worker.apps import AppGuard, code_schema_version, code_version
from longops.worker.completer import Completer, log_failed_result
from longops.worker.dispatcher import Dispatcher
from longops.worker.executor import (
    RunControl,
    RunOutcome,
    execute,
    execute_async,
    result_for,
    runs_on_loop,
)
from longops.worker.handoff import Handoff
from longops.worker.health import Health
from longops.worker.heartbeat import Heartbeat
from longops.worker.invoke import close_thread_loop
from longops.worker.isolation import ChildPool
from longops.worker.maintenance import MaintenanceWatch
from longops.worker.memory import (
    EXIT_MEMORY,
    MemoryGuard,
    failed_message,
    hand_back_message,
    memory_hand_backs,
)
from longops.worker.monitor import Monitor
from longops.worker.options import WorkerOptions, active_session
from longops.worker.registry import TaskRegistry
from longops.worker.runs import RunTable, StopCause
from longops.worker.supervise import EXIT_LOOP_DIED, Supervisor
from longops.worker.timings import HEARTBEAT_INTERVAL, RESCUER_INTERVAL, SESSION_TIMEOUT
from longops.worker.zones import CompanyZones

__all__ = [
    "EXIT_LOOP_DIED",
    "HEARTBEAT_INTERVAL",
    "RESCUER_INTERVAL",
    "SESSION_TIMEOUT",
    "Health",
    "Maintenance",
    "Worker",
    "WorkerOptions",
    "active_session",
]

log = logging.getLogger("longops.worker")


class Maintenance(Protocol):
    """Duties a worker runs beside its runs (see ``services.leader.ServiceRunner``): the
    worker runs ``step`` as one of its supervised loops until ``stopping`` is set."""

    session_id: uuid.UUID
    stopping: threading.Event

    def step(self) -> None: ...

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
        self.table = RunTable()
        self._work = Handoff(
            self.options.concurrency,
            runs_on_loop=lambda c: runs_on_loop(registry, c.operation.task),
            run_async=self._run_async,
            add_runner=self._add_runner,
        )
        self._slot_freed = threading.Event()
        self._draining = threading.Event()
        self._stop_now = threading.Event()
        self._stopped = threading.Event()
        self._started = False
        self._runners: list[threading.Thread] = []
        self._loops: dict[str, threading.Thread] = {}
        self._signals = 0
        self._grace = self.options.grace_period
        self.exit_code = 0
        self._memory: MemoryGuard | None = None  # --max-memory: see _memory_exceeded
        self._memory_resident: int | None = None
        """The resident memory past the limit, once the guard found it (then the drain
        hands back as _hand_back_past_memory says)."""
        self._hand_back_reason: str | None = None
        self._run_seconds: float | None = None
        """Moving average of how long the runs took, from claim to result (see _prefetch)."""
        self.supervisor = Supervisor(on_fatal=self._on_fatal, on_recovered=self._on_recovered)
        self.completer = Completer(store, self.table)
        self.dispatcher = Dispatcher(
            store,
            registry,
            clock,
            self.options,
            self.table,
            work=self._work,
            session_id=lambda: self.session_id,
            slot_freed=self._slot_freed,
            wake_monitor=self._wake_monitor,
            hand_back=self.completer.submit,
            completer=self.completer,
            prefetch=self._prefetch,
            reserve=_reserve,
        )
        # Maintenance mode: the dispatcher stops claiming and hands back at the deadline.
        self.dispatcher.maintenance = MaintenanceWatch(
            store,
            clock,
            self.table,
            interval=self.options.heartbeat_interval,
            poll=self.options.poll_interval,
            hand_back=self._hand_back_for_maintenance,
        )
        self.monitor = Monitor(store, clock, self.options, self.table, None)
        self.app_guard = AppGuard(
            store,
            clock,
            self.dispatcher,
            interval=self.options.schema_check_interval,
            stop=self._stopped,
        )
        self.heartbeat = Heartbeat(
            store,
            clock,
            self.supervisor,
            interval=self.options.heartbeat_interval,
            stop=self._stopped,
            session_id=lambda: self.session_id,
            on_lost=self._rejoin,
            on_drain=self._drain_requested,
            on_not_alive=self._on_not_alive,
        )
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

    def _wake_monitor(self) -> None:
        self.monitor.wake.set()

    def _prefetch(self) -> int:
        """How many runs to claim ahead of the free slots: while runs are short, ``PREFETCH``
        (or ``concurrency`` if more), so a runner that ends a run starts the next at once
        instead of waiting for a claim's round trip. Never for long runs: a run waiting in
        this worker's queue could have started at once on an idle worker."""
        seconds = self._run_seconds
        if seconds is None or seconds >= SHORT_RUN:
            return 0
        return min(max(self.options.concurrency, PREFETCH), self.options.claim_batch)

    def _ran(self, seconds: float) -> None:
        last = self._run_seconds
        # The first run counts fully; one long run ends prefetching at once.
        self._run_seconds = seconds if last is None else max(seconds, 0.8 * last + 0.2 * seconds)

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Register the session and start its threads; returns at once.

        Raises :class:`~longops.worker.apps.SchemaTooOld` (nothing started) when the
        database's schema is older than this code's."""
        self.app_guard.check()
        # Claim only what it can run; the session says which tasks (and code) it has.
        self.dispatcher.tasks = tuple(t.name for t in self.registry)
        if self.options.apps:
            self.store.record_apps(self.options.apps, self.clock.now())
        self._register(self.session_id)
        self.app_guard.attach(self.session_id)
        self._started = True
        stuck = self.options.stuck_after
        opts = self.options
        sup = self.supervisor
        self._loops["completer"] = sup.spawn(
            "completer", self.completer.step, self.completer.stopping, stuck_after=stuck
        )
        self._loops["heartbeat"] = sup.spawn(
            "heartbeat",
            self.heartbeat.step,
            self._stopped,
            stuck_after=opts.heartbeat_interval + stuck,
        )
        self._loops["monitor"] = sup.spawn(
            "monitor", self.monitor.step, self._stopped, stuck_after=opts.monitor_tick + stuck
        )
        listener = self.store.cancel_listener()
        if listener is not None:
            self.monitor.listener = listener
            self.monitor.listener_live = True
            self._loops["cancel-listener"] = sup.spawn(
                "cancel-listener", self.monitor.listen_step, self._stopped, stuck_after=stuck
            )
        self._loops["dispatcher"] = sup.spawn(
            "dispatcher",
            self.dispatcher.step,
            self._draining,
            stuck_after=opts.poll_interval + stuck,
        )
        self._loops["app-guard"] = sup.spawn(
            "app-guard",
            self.app_guard.step,
            self._stopped,
            stuck_after=opts.schema_check_interval + stuck,
        )
        if self.services is not None:
            self._loops["services"] = sup.spawn(
                "services", self.services.step, self.services.stopping, stuck_after=stuck
            )
        if self.options.max_memory is not None:
            self._memory = MemoryGuard(
                self.options.max_memory,
                self._memory_exceeded,
                interval=self.options.memory_check_interval,
            ).start()
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
        """Start and block until drained (SIGTERM/SIGINT, or a loop that died); returns the
        exit code: 0, or :data:`EXIT_LOOP_DIED` when a loop stopped by a bug (or stuck)
        stopped the worker."""
        if install_signals:
            self.install_signals()
        self.start()
        while not self._draining.wait(0.2):
            pass
        self._finish_drain()
        if self.exit_code == 0 and self._memory is not None and self._memory.exceeded:
            return EXIT_MEMORY
        return self.exit_code

    def install_signals(self) -> None:
        """SIGTERM/SIGINT drain this worker from now on (a second one stops at once). A
        process that runs the worker calls this before it says it has started: a signal
        sent the moment it does is then a drain (exit code 0), not Python's default (-15);
        one that comes before :meth:`run` has started the session drains it at once."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _memory_exceeded(self, resident: int) -> None:
        # A leaking thread task cannot be stopped, and waiting out the grace period lets it
        # grow: hand every run back now (no attempt spent) and exit for a fresh worker. The
        # runs in flight are counted (_hand_back_past_memory); these words are for the rest.
        self._hand_back_reason = (
            f"worker session {self.session_id} handed the run back: the worker's memory "
            f"({resident // 2**20} MiB) went past its --max-memory limit (not counted "
            "against this run: its code had not begun, or ran in a child process)"
        )
        self._memory_resident = resident
        self._stop_now.set()
        self.drain()

    def health(self) -> Health:
        """How the worker's loops are doing, for liveness and readiness probes.

        Example::

            h = worker.health()
            h.alive, h.ready, h.loops["dispatcher"]    # True, True, "ok"
        """
        alive = self._started and self.supervisor.alive() and self.exit_code == 0
        ready = (
            alive
            # Not before start() has spawned every loop (the dispatcher comes last).
            and "dispatcher" in self._loops
            and self.supervisor.reachable()
            and not self._draining.is_set()
            and not self._stopped.is_set()
        )
        return Health(alive=alive, ready=ready, loops=self.supervisor.states())

    def _on_signal(self, _signum: int, frame: FrameType | None) -> None:
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
        self.dispatcher.interrupt()

    def stop(self, grace: float | None = None) -> None:
        """Drain and wait for the session to end (for workers started with :meth:`start`)."""
        if grace is not None:
            self._grace = grace
        self.drain()
        self._finish_drain()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def _on_fatal(self, loop: str, exc: BaseException) -> None:
        self.exit_code = EXIT_LOOP_DIED
        # The heartbeat stops with it (the supervisor is no longer alive); the drain hands
        # back what runs, as far as the database and the remaining loops allow.
        self.drain()

    def _on_not_alive(self, broken: str) -> None:
        if self.exit_code == 0:
            log.critical(
                "worker stopping: loop %s; exit code %d",
                broken,
                EXIT_LOOP_DIED,
                extra={"action": "worker_not_alive"},
            )
            self.exit_code = EXIT_LOOP_DIED
            self.drain()

    def _on_recovered(self, loop: str) -> None:
        # After any reconnect, make sure no claim committed while its reply was lost.
        self.dispatcher.reconcile_soon()

    def _drain_requested(self) -> None:
        if not self._draining.is_set():
            log.info(
                "a drain of this session was requested; draining",
                extra={"action": "drain_requested", "session_id": str(self.session_id)},
            )
            self.drain()

    def _finish_drain(self) -> None:
        if self._stopped.is_set() or not self._started:
            return  # already stopped, or never started
        started = time.monotonic()
        deadline = started + self._grace
        self._retrying(
            "mark the session draining",
            lambda: self.store.end_session(
                self.session_id,
                SessionState.DRAINING,
                self.clock.now(),
                SessionEventType.DRAIN_STARTED,
            ),
            until=deadline,
        )
        # No claim may land after the hand-back below takes its snapshot: wait for the
        # dispatcher to leave its loop (drain() interrupted its wait). The session is
        # already `draining`, so a claim now takes nothing. (A stuck one is waited for
        # JOIN_TIMEOUT, then left: tests set that shorter.)
        self._loops["dispatcher"].join(timeout=self.options.poll_interval + JOIN_TIMEOUT)
        # Runs claimed ahead (waiting for a runner, code not begun) go back at once, attempt
        # not spent, rather than start during the grace period.
        queued = self.table.take_unstarted()
        for run in queued:
            self.completer.submit(self._handed_back(run))
        log.info(
            "draining: no new claims; waiting up to %g s for %d running operation(s)",
            self._grace,
            len(self.table),
            extra={"action": "drain_started"},
        )
        while time.monotonic() < deadline and not self._stop_now.is_set():
            if self.table.wait_idle(min(0.05, max(deadline - time.monotonic(), 0)), writes=False):
                break
        leftover = self.table.take_running()
        if self._memory_resident is None:
            self._hand_back(leftover)
        else:
            self._hand_back_past_memory(leftover, self._memory_resident)
        leftover += queued
        self._work.stop_runners()
        # Results wait for the database until the drain's deadline (a few seconds more when
        # the running work took the whole grace period).
        write_until = max(deadline, time.monotonic() + DRAIN_WRITE_WINDOW)
        completer_alive = self._loops["completer"].is_alive
        while completer_alive() and time.monotonic() < write_until:
            if self.table.wait_idle(0.1, writes=True):
                break
        unwritten = self.completer.abandon() if self.table.pending_writes() else []
        if unwritten:
            log.error(
                "%d run result(s) not recorded: the database could not be reached before "
                "the drain's deadline; the rescuer recovers their operations",
                len(unwritten),
                extra={"action": "results_abandoned", "count": len(unwritten)},
            )
        self.completer.close()
        self.pool.close()
        if self.services is not None:
            # Its loop first: a round still in try_lead after the resignation below would
            # take the lease again in the name of a session that is going away.
            self.services.stopping.set()
            self._join("services", self._loops["services"])
            self.services.stop()
        self._retrying(
            "mark the session stopped",
            lambda: self.store.end_session(
                self.session_id,
                SessionState.STOPPED,
                self.clock.now(),
                SessionEventType.LOGOFF,
                f"drained; {len(leftover)} run(s) handed back",
            ),
            until=time.monotonic() + DRAIN_WRITE_WINDOW,
        )
        self._stopped.set()
        self.monitor.wake.set()
        if self._memory is not None:
            self._memory.stop()
        self.dispatcher.close()
        self.monitor.close()
        # Returned only once no thread of the session can touch the store: whoever stopped
        # the worker may close the store next (a loop mid-call on a closed SQLite store
        # once crashed the process inside sqlite3).
        until = time.monotonic() + JOIN_TIMEOUT
        for name, thread in self._loops.items():
            self._join(name, thread, until=until, left=logging.ERROR)
        until = time.monotonic() + RUNNER_JOIN_TIMEOUT
        for thread in list(self._runners):
            self._join(thread.name, thread, until=until, left=logging.INFO)
        self._work.close()
        log.info(
            "worker session %s stopped; %d run(s) handed back as interrupted",
            self.session_id,
            len(leftover),
            extra={"action": "worker_stopped", "handed_back": len(leftover)},
        )

    def _join(
        self,
        name: str,
        thread: threading.Thread,
        *,
        until: float | None = None,
        left: int = logging.ERROR,
    ) -> None:
        """Wait for one of the session's threads to end (until ``until``, by default
        :data:`JOIN_TIMEOUT` from now); one blocked in a call that never returns is left
        running (a daemon) with a log line rather than hanging the stop."""
        if thread is threading.current_thread():
            return
        until = time.monotonic() + JOIN_TIMEOUT if until is None else until
        thread.join(timeout=max(until - time.monotonic(), 0.0))
        if thread.is_alive():
            log.log(
                left,
                "worker thread %s had not ended when the stop returned; left running",
                name,
                extra={"action": "thread_left_running", "loop": name},
            )

    def _hand_back(
        self,
        runs: list[RunControl],
        message: str | None = None,
        reason: StatusReason | None = None,
    ) -> None:
        """Hand ``runs`` (taken out of the table) back, attempt not spent."""
        for run in runs:
            # Nothing of a handed-back run may go on: code not yet begun never starts, and
            # a child running it is dead before another worker can claim the operation.
            child = run.abandon()
            if child is not None:
                child.kill()
                child.join(5.0)
            self.completer.submit(self._handed_back(run, message, reason))

    def _hand_back_past_memory(self, runs: list[RunControl], resident: int) -> None:
        """Past ``--max-memory``: hand ``runs`` back, each run of a thread or async task
        (whose code shared the worker's memory) counted as a memory hand-back of its
        operation, and the one that would be its ``memory_hand_backs``-th in a row failed
        instead (worker/memory.py). A run whose count cannot be read (the database is
        away) is handed back uncounted, as before."""
        for run in runs:
            child = run.abandon()
            if child is not None:
                child.kill()
                child.join(5.0)
        limit = self.options.max_memory or 0
        bound = self.options.memory_hand_backs
        for run in runs:
            task = run.task
            if task is not None and task.isolation == "process":
                self.completer.submit(self._handed_back(run))
                continue
            op = run.operation
            try:
                count = memory_hand_backs(self.store.list_attempts(op.id)) + 1
            except Exception as exc:
                if not is_fault(exc):
                    raise
                log.error(
                    "could not count the memory hand-backs of %s: %s",
                    op.id,
                    exc,
                    extra={"action": "memory_count_failed", "operation_id": str(op.id)},
                )
                self.completer.submit(self._handed_back(run))
                continue
            if count < bound:
                message = hand_back_message(self.session_id, resident, limit, count, bound)
                self.completer.submit(self._handed_back(run, message))
                continue
            log.warning(
                "operation %s failed: in flight at %d memory exits in a row",
                op.id,
                count,
                extra={"action": "memory_failed", "operation_id": str(op.id), "count": count},
            )
            # Its attempts spent as if this were the last (a recurring one with
            # on_error="continue" keeps its schedule, as after any last failure).
            claimed = replace(run.claimed, operation=replace(op, max_attempts=op.attempt_count))
            message = failed_message(resident, limit, count)
            outcome = RunOutcome(Outcome.ERROR, error_message=message)
            tz = self._zones.known(op.company) or _UTC
            result = result_for(
                claimed, outcome, task=None, clock=self.clock, tz=tz, started_at=run.started_at
            )
            self.completer.submit(result)

    def _hand_back_for_maintenance(self, runs: list[RunControl], mode: MaintenanceMode) -> None:
        message = mode.hand_back_message(self.session_id)
        for run in runs:
            # Code that watches ctx.cancelled stops now and frees its runner thread.
            run.ask_to_stop(StopCause.FENCED, message, grace=0, force=True)
        self._hand_back(runs, message, StatusReason.MAINTENANCE)

    def _handed_back(
        self,
        run: RunControl,
        message: str | None = None,
        reason: StatusReason | None = None,
    ) -> RunResult:
        outcome = RunOutcome(
            Outcome.INTERRUPTED,
            error_message=message
            or self._hand_back_reason
            or f"worker session {self.session_id} shut down before the run ended",
            # With a cancel request pending, the store ends it cancelled: say how.
            cancel_mode=CancelMode.OVERDUE if run.overdue else CancelMode.FORCED,
        )
        result = result_for(run.claimed, outcome, task=None, clock=self.clock, tz=_UTC)
        return result if reason is None else replace(result, status_reason=reason)

    def _retrying(self, what: str, call: Callable[[], object], *, until: float) -> None:
        """Call through database faults until ``until``; then log and go on."""
        delay = 0.05
        while True:
            try:
                call()
                return
            except Exception as exc:
                if not is_fault(exc):
                    raise
                if time.monotonic() + delay > until:
                    log.error("could not %s: %s", what, exc, extra={"action": "drain_write_failed"})
                    return
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    # -- runners --------------------------------------------------------------------------------
    def _register(self, session_id: uuid.UUID) -> None:
        self.store.register_session(
            active_session(
                self.clock.now(),
                self.options.queues,
                concurrency=self.options.concurrency,
                session_id=session_id,
                companies=self.options.companies,
                tasks=self.dispatcher.tasks,
                code_version=code_version(self.options.apps),
                schema_version=code_schema_version(self.store.dialect),
            )
        )

    def _add_runner(self) -> None:
        # Started as sync runs need them (worker/handoff.py): async runs take no thread.
        thread = threading.Thread(
            target=self._runner_loop, name=f"longops-runner-{len(self._runners)}", daemon=True
        )
        self._runners.append(thread)
        thread.start()

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
            while claimed is not None:
                try:
                    self._run_one(claimed)
                except BaseException:
                    self._work.done(sync=True)
                    raise
                # The next waiting run on this thread, with no hand-over (worker/handoff.py).
                claimed = self._work.done_then_next()

    def _run_one(self, claimed: ClaimedRun) -> None:
        op = claimed.operation
        run = self.table.get(op.id)
        if run is None or run.claimed.lease_token != claimed.lease_token:
            return  # handed back by a drain before it started
        tz = self._zone(op.company, run)
        if tz is None:
            return  # handed back while the database was away; it never started
        began = time.monotonic()
        try:
            result = execute(claimed, self.registry, self.clock, tz, run, self.pool)
        except Exception as exc:
            result = self._crashed(claimed, exc)
        self._record(run, result, began)

    async def _run_async(self, claimed: ClaimedRun) -> None:
        """One run of an ``async def`` task, on the worker's event loop (worker/handoff.py)."""
        try:
            op = claimed.operation
            run = self.table.get(op.id)
            if run is None or run.claimed.lease_token != claimed.lease_token:
                return
            tz = self._zones.known(op.company)
            if tz is None:  # first run for this company: a read that may wait out faults
                tz = await asyncio.to_thread(self._zone, op.company, run)
                if tz is None:
                    return
            began = time.monotonic()
            try:
                result = await execute_async(claimed, self.registry, self.clock, tz, run)
            except Exception as exc:
                result = self._crashed(claimed, exc)
            self._record(run, result, began)
        finally:
            self._work.done(sync=False)

    def _crashed(self, claimed: ClaimedRun, exc: Exception) -> RunResult:
        # Not the task's failure (that is classified inside execute) but ours, e.g.
        # the database was unreachable: record it rather than leave the run hanging.
        log.exception("run could not be executed", extra={"action": "run_crashed"})
        return result_for(
            claimed,
            RunOutcome(Outcome.ERROR, error_message=f"worker error: {exc!r}"[:2048]),
            task=None,
            clock=self.clock,
            tz=_UTC,
        )

    def _record(self, run: RunControl, result: RunResult, began: float) -> None:
        claimed = run.claimed
        # A run whose lease was lost leaves its operation to the rescuer: no result.
        keep = run.cause is not StopCause.FENCED
        # Out of the running set and into the unwritten one in one step, so the
        # dispatcher's comparison with the database never misses the lease.
        if self.table.finish(run, result if keep else None) and keep:
            self.completer.enqueue(result)
            log_failed_result(claimed.operation.task, claimed, result, self.options.log_classes)
        self._ran(time.monotonic() - began)
        if self.dispatcher.refill_due():
            self._slot_freed.set()

    def _zone(self, company: str, run: RunControl) -> ZoneInfo | None:
        """The company's time zone, waiting out database faults (the run has not started:
        it waits too, rather than fail for the database's sake); None once handed back."""
        delay = 0.05
        while True:
            try:
                return self._zones(company)
            except Exception as exc:
                if not is_fault(exc):
                    raise
            if run.abandoned or self._stopped.is_set():
                return None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

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
        self.app_guard.attach(new)
        if self.services is not None:
            self.services.session_id = new
        # The old session's runs were (or will be) handed to other workers: their code must
        # stop now, by force where it can be (child processes, asyncio tasks).
        for run in self.table.running().values():
            run.ask_to_stop(
                StopCause.FENCED, f"session {old} was declared lost", grace=0, force=True
            )
        self.monitor.wake.set()
        log.warning(
            "session declared lost; rejoined as a new session",
            extra={"action": "session_rejoined", "old": str(old), "new": str(new)},
        )

    def monitor_once(self) -> None:
        """One round of the monitor (public so tests can drive it with a frozen clock)."""
        self.monitor.monitor_once()


_UTC = ZoneInfo("UTC")
SHORT_RUN = 0.1
"""Seconds under which runs count as short: the worker then claims ahead (``_prefetch``)."""
PREFETCH = 32
"""Runs claimed ahead while runs are short, at least (``concurrency`` if more): about the
number of no-op runs a runner gets through while one claim makes its round trip on a
loaded machine, so a claim and a commit serve many runs. 32, not 16: a claim's fixed
costs (its round trip, the claim statement's start, one commit and WAL flush, the client's
query conversion) spread over twice the runs cut the worker's CPU per no-op operation by
about a fifth in-process (``benchmarks/results/profile-notes.md``, hot path v3). With the
reserve (``_reserve``: the next batch is claimed while a batch still waits) at most
``SHORT_RUN`` x 64 = 6.4 s of work waits in one worker's queue."""


def _reserve(prefetch: int) -> int:
    """Runs claimed ahead that still wait for a slot when the dispatcher claims the next
    batch: a whole batch, which keeps the runner busy through the claim (the dispatcher's
    wait for the interpreter and for the database's write turn, its transaction). With
    none, a worker ran its batch dry before it claimed again and its runner idled through
    every claim; with half a batch, a runner of no-op tasks still ran dry in a third of the
    claims of a 2-process SQLite drain (``benchmarks/results/profile-notes.md``, the SQLite
    drain)."""
    return prefetch


DRAIN_WRITE_WINDOW = 5.0
"""Seconds a drain still waits for the database to record results after its grace."""
JOIN_TIMEOUT = 10.0
"""How long the stop waits, at most, for the session's loops to end."""
RUNNER_JOIN_TIMEOUT = 1.0
"""How long it waits for its runner threads: one may still run an abandoned thread task,
which nothing can stop (its run was handed back already)."""
