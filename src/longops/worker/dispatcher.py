"""The dispatcher: claims ready operations for free slots and waits for wake-ups; nothing
else. It also keeps the worker honest about what it runs (:meth:`Dispatcher.reconcile`).

Example::

    dispatcher = Dispatcher(store, clock, options, table, ...)
    supervisor.spawn("dispatcher", dispatcher.step, draining)
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from longops.domain.clock import Clock
from longops.domain.operation import Outcome
from longops.store.base import ClaimParams, RunResult, Store, Wakeups
from longops.store.faults import is_data_error
from longops.worker.completer import Completer, report_fenced
from longops.worker.executor import RunControl, RunOutcome, result_for
from longops.worker.handoff import Handoff
from longops.worker.registry import TaskRegistry
from longops.worker.runs import RunTable

if TYPE_CHECKING:
    from longops.worker.maintenance import MaintenanceWatch
    from longops.worker.session import WorkerOptions

log = logging.getLogger("longops.worker")

CONTENDED_RETRIES = 5
"""Claims in a row that come back short because a concurrent claim took their rows, after
which the dispatcher waits for a wake-up, at most ``CONTENDED_WAIT`` (doubling with each
further contended claim, up to its poll)."""
CONTENDED_WAIT = 0.05
"""The first wait after ``CONTENDED_RETRIES`` contended claims. Not the poll: a contended
claim means work is ready, and nothing will say so when the other claim commits (a plain
finish sends no notification). The retries' jitter adds up to 30 ms, less than one loaded
claim transaction (finish, claim, commit) can hold its rows, so a worker draining a backlog
beside another used to idle a whole poll (1 s) now and then."""


class Dispatcher:
    """Claims for free slots (one short transaction), hands the runs to the runner
    threads, and sleeps until woken, the next due start, or ``poll_interval``.

    A claim also writes the results waiting in the completer, in its own transaction (one
    commit for both). While runs are short (``prefetch()`` > 0) it claims ahead of the free
    slots in batches of ``prefetch`` runs, and claims the next batch while ``reserve()``
    runs (a batch) still wait in the runners' queue: one claim (and one wake-up) per
    batch, not per run, and a runner never waits for a claim's round trip (the reserve
    keeps it busy while the claim waits for the database and makes its trip). A claim
    takes exactly a batch then: never fewer (its fixed costs, a transaction, a commit and
    the claim statement's start, are the same for one run as for a batch), never more
    (a claim numbers its runs' attempts in entry order, see ``claim_once``).

    Every ``heartbeat_interval``, and at once after a failure (the connection may have
    broken after a claim committed), it compares the operations the database says this
    session runs with the worker's table and hands back, without spending an attempt, any
    the worker does not know. Claims happen only in this thread, so no claim is in flight
    while it compares."""

    def __init__(
        self,
        store: Store,
        registry: TaskRegistry,
        clock: Clock,
        options: WorkerOptions,
        table: RunTable,
        *,
        work: Handoff,
        session_id: Callable[[], uuid.UUID],
        slot_freed: threading.Event,
        wake_monitor: Callable[[], None],
        hand_back: Callable[[RunResult], None],
        completer: Completer | None = None,
        prefetch: Callable[[], int] = lambda: 0,
        reserve: Callable[[int], int] = lambda prefetch: 0,
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.options = options
        self.table = table
        self._work = work
        self._session_id = session_id
        self._slot_freed = slot_freed
        self._wake_monitor = wake_monitor
        self._hand_back = hand_back
        self._completer = completer
        self._contended = 0
        self.prefetch = prefetch
        self.reserve = reserve
        self._wakeups: Wakeups | None = None
        self._interrupted = False
        self._reconcile_due = True
        self._last_reconcile = 0.0
        self.handed_back = 0
        """Runs found in the database that this worker never got, handed back so far."""
        self.tasks: tuple[str, ...] | None = None
        """The tasks the claim takes (the worker's registry, set at start; None: any)."""
        self.held_by: str | None = None
        """Why claiming is stopped (the schema guard's message), or None."""
        self.maintenance: MaintenanceWatch | None = None
        """Maintenance mode as this worker follows it (set by the worker; None: not followed)."""

    def reconcile_soon(self) -> None:
        """Compare with the database before the next claim (after any reconnect)."""
        self._reconcile_due = True

    def interrupt(self) -> None:
        """End the idle wait now (a drain: the dispatcher leaves its loop at once)."""
        self._interrupted = True
        if self._completer is not None:
            self._completer.defer = False  # no claim will come to take the results
        wakeups = self._wakeups
        if wakeups is not None:
            wakeups.interrupt()
        self._slot_freed.set()

    def step(self) -> None:
        try:
            self._step()
        except BaseException:
            # A claim may have committed on the server while its reply was lost.
            self._reconcile_due = True
            raise

    def _step(self) -> None:
        opts = self.options
        if self._wakeups is None:
            self._wakeups = self.store.wakeups()
            if self._interrupted:  # interrupted before there was a wait to end
                self._wakeups.interrupt()
        mono = time.monotonic()
        if self._reconcile_due or mono - self._last_reconcile >= opts.heartbeat_interval:
            self.reconcile()
        # Maintenance mode (worker/maintenance.py): no claims; at the drain deadline the
        # runs still going are handed back.
        watch = self.maintenance
        if watch is not None:
            hold = watch.hold()
            if hold is not None:
                if self._completer is not None:
                    self._completer.defer = False  # no claim will take the results
                if self._wakeups.wait(hold):
                    watch.recheck()
                return
        if self.claim_once():
            return  # the claim filled what it asked for: claim again once there is room
        free, least = self.room()
        if free < least:
            # Woken once that many slots are free (see refill_due), or after a poll.
            self._slot_freed.wait(opts.poll_interval)
            self._slot_freed.clear()
            return
        self._wakeups.wait(self._idle_wait())

    def room(self) -> tuple[int, int]:
        """How many runs the next claim may take, and the fewest worth a claim.

        Runs long or not yet known: the free slots, and one. Runs short (``prefetch()`` >
        0): the worker holds up to ``concurrency + prefetch + reserve(prefetch)`` runs
        (running or waiting for a slot) and claims a batch of ``prefetch``."""
        prefetch = self.prefetch()
        held = len(self.table)
        if not prefetch:
            return self.options.concurrency - held, 1
        return self.options.concurrency + prefetch + self.reserve(prefetch) - held, prefetch

    def refill_due(self) -> bool:
        """Whether there is room for the next claim (a runner asks after a run)."""
        free, least = self.room()
        return free >= least

    def _current_tasks(self) -> tuple[str, ...] | None:
        """The tasks the claim takes: the registry's, which may grow after the start (a
        module imported later registers more); the session's record follows it."""
        tasks = self.tasks
        if tasks is not None and len(self.registry) != len(tasks):
            tasks = self.tasks = tuple(t.name for t in self.registry)
            self.store.set_session_tasks(self._session_id(), tasks)
        return tasks

    def claim_once(self) -> bool:
        """Claim for the room there is (:meth:`room`); True when the claim filled it."""
        free, least = self.room()
        if free < least or self.held_by is not None:
            return False
        want = min(free, self.options.claim_batch)
        if least > 1:
            # One batch per claim while claiming ahead, the next at once if there is room:
            # a claim's runs are numbered (their attempts) in entry order, so a claim of two
            # batches would number a second company's runs after the first's whole batch.
            want = least
        completer = self._completer
        # Only while claims come back full (more work): when the queue is idle the
        # completer writes results at once and a claim has none to carry.
        finished = tuple(completer.take()) if completer is not None and completer.defer else ()
        try:
            params = ClaimParams(
                self._session_id(),
                self.options.queues,
                want,
                self.clock.now(),
                clock=self.clock,
                companies=self.options.companies,
                tasks=self._current_tasks(),
            )
            # The results and the claim in one transaction (one commit), when there are any.
            if finished:
                claimed = self.store.finish_and_claim(finished, params)
            else:
                claimed = self.store.claim(params)
        except BaseException as exc:
            if completer is not None:
                completer.defer = False
                if finished:
                    # Not written (or written with the reply lost: the retry is fenced).
                    completer.requeue(finished)
                    if is_data_error(exc):
                        # A result's text the database refused: the completer writes them
                        # one by one (Completer._write); the claim is tried again.
                        return False
            raise
        if finished:
            report_fenced(finished, claimed.finished)
            self.table.written(finished)
        for c in claimed:
            self.table.add(
                RunControl(
                    c,
                    store=self.store,
                    clock=self.clock,
                    task=self.registry.get(c.operation.task)
                    if c.operation.task in self.registry
                    else None,
                    wake_monitor=self._wake_monitor,
                    kill_after=self.options.kill_after,
                )
            )
        self._work.put_batch(claimed)  # one hand-over for the batch
        full = len(claimed) == want
        if claimed.contended and not full:
            # Another worker's claim took rows this one chose: more is ready. Claim again
            # soon, a little apart (jitter) so the two do not meet on the same rows again;
            # a row held for long by someone else stops this after a few tries.
            self._contended += 1
            if self._contended <= CONTENDED_RETRIES:
                time.sleep(random.uniform(0, 0.002 * self._contended))
                full = True
        else:
            self._contended = 0
        if completer is not None:
            # More work is likely: the next claim comes soon and takes the results along.
            completer.defer = full and not self._interrupted
        return full

    def reconcile(self) -> int:
        """Hand back the runs the database says this session has and the worker does not
        (returns how many)."""
        # The table first: a lease it does not hold now cannot appear in it later except
        # by a claim, and claims happen only in this thread.
        known = self.table.known_leases()
        session_id = self._session_id()
        rows = self.store.session_runs(session_id)
        self._reconcile_due = False
        self._last_reconcile = time.monotonic()
        strays = [c for c in rows if c.lease_token not in known]
        for c in strays:
            op = c.operation
            log.warning(
                "operation %s is in process under this session but the worker never got "
                "the run (a claim whose reply was lost); handing it back",
                op.id,
                extra={"action": "run_unknown", "operation_id": str(op.id)},
            )
            outcome = RunOutcome(
                Outcome.INTERRUPTED,
                error_message=(
                    f"claimed by worker session {session_id}, which never got the run "
                    "(the claim's reply was lost); handed back"
                ),
            )
            # An interrupted run decides nothing by time zone or retry policy.
            self._hand_back(result_for(c, outcome, task=None, clock=self.clock, tz=_UTC))
        self.handed_back += len(strays)
        return len(strays)

    def _idle_wait(self) -> float:
        poll = self.options.poll_interval
        beyond = self._contended - CONTENDED_RETRIES
        if beyond > 0:
            # Work is ready but another claim held it: soon again, backing off (a row held
            # for long by someone else, an operator's open transaction, ends at the poll).
            return min(poll, CONTENDED_WAIT * float(2 ** (beyond - 1)))
        due = self.store.next_due_at(self.options.queues, self.options.companies)
        if due is None:
            return poll
        wait = (due - self.clock.now()).total_seconds()
        # Due already (held back by a busy category, say): a finish will wake us.
        return poll if wait <= 0 else min(poll, wait)

    def close(self) -> None:
        if self._wakeups is not None:
            self._wakeups.close()


_UTC = ZoneInfo("UTC")
