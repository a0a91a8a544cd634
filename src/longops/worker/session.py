"""A worker process's session: claims operations, runs them, records how they ended.

Threads, each with one job:

- the dispatcher claims batches of ready operations for free slots and waits for wake-ups;
- ``concurrency`` runner threads run one operation at a time each;
- the completer writes finished runs back in batches (one round trip for many);
- the heartbeat keeps the session alive and picks up cancel requests for running work;
- the service runner does the leader-elected maintenance duties.

``SIGTERM`` (or :meth:`Worker.drain`) stops claiming, lets running work finish within the
grace period and hands the rest back as *interrupted* without spending an attempt; a second
signal hands everything back at once.

Example::

    worker = app.worker(queues=["default"], concurrency=4)
    worker.run()          # blocks until SIGTERM/SIGINT
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import FrameType
from typing import Protocol
from zoneinfo import ZoneInfo

from longops.domain.classification import LOGGED_BY_DEFAULT, DataClass, loggable
from longops.domain.clock import Clock
from longops.domain.ids import new_id
from longops.domain.operation import Outcome, Session, SessionEventType, SessionState
from longops.store.base import ClaimedRun, ClaimParams, RunResult, Store
from longops.worker.executor import RunOutcome, execute, result_for
from longops.worker.registry import TaskRegistry
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
    companies: tuple[str, ...] | None = None
    """Serve only these companies' operations (None: every active company)."""
    log_classes: frozenset[DataClass] = LOGGED_BY_DEFAULT
    """Data classes the worker's own log lines may carry (error text is CustomerContent)."""

    def __post_init__(self) -> None:
        from longops.domain.errors import ValidationError

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


@dataclass(slots=True)
class _Run:
    claimed: ClaimedRun
    cancel: threading.Event = field(default_factory=threading.Event)


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
        self._runs: dict[uuid.UUID, _Run] = {}
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
            op = run.claimed.operation
            outcome = RunOutcome(
                Outcome.INTERRUPTED,
                error_message=f"worker session {self.session_id} shut down before the run ended",
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
        self._wakeups.close()
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
            self._wakeups.wait(self._idle_wait())

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
                self._runs[c.operation.id] = _Run(c)
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
                    claimed, self.registry, self.clock, self._zones(op.company), run.cancel
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
            if result.outcome is Outcome.ERROR and run.cancel.is_set():
                # It failed while being cancelled: honour the cancel rather than retry.
                result = result_for(
                    claimed,
                    RunOutcome(Outcome.CANCELLED, error_message=result.error_message),
                    task=None,
                    clock=self.clock,
                    tz=self._zones(op.company),
                    started_at=result.started_at,
                )
            with self._lock:
                mine = self._runs.pop(op.id, None) is run
            if mine:
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
            self._poll_cancel_requests()

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
        log.warning(
            "session declared lost; rejoined as a new session",
            extra={"action": "session_rejoined", "old": str(old), "new": str(new)},
        )

    def _poll_cancel_requests(self) -> None:
        with self._lock:
            if not self._runs:
                return
            runs = dict(self._runs)
        for op_id in self.store.cancel_requested(list(runs)):
            run = runs.get(op_id)
            if run is not None:
                run.cancel.set()


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
