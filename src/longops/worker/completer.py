"""The completer: writes finished runs back in batches (one round trip for many); nothing
else.

While the dispatcher claims full batches (there is more work), it takes the waiting results
into its claim's transaction (``ClaimParams.finished``: one commit for both), and the
completer leaves them to it for up to ``DEFER`` seconds. Otherwise (the queue ran dry, a
drain, the dispatcher in a fault) the completer writes them itself.

While the database cannot be reached the batch waits in memory and the completer retries
(the supervisor backs off). Each result is written under its run's lease: if the lease
still holds, the result lands; if the operation was rescued meanwhile, it is discarded
with a log line. A result is never recorded twice.

Example::

    completer = Completer(store, table)
    supervisor.spawn("completer", completer.step, completer.stopping)
    completer.submit(result)
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace

from longops.domain.classification import DataClass, loggable
from longops.domain.operation import Outcome
from longops.domain.status import Status
from longops.store.base import ClaimedRun, RunResult, Store
from longops.store.faults import is_data_error
from longops.worker.runs import RunTable

log = logging.getLogger("longops.worker")

BATCH = 500
DEFER = 0.05
"""Longest a result waits for the dispatcher's next claim before the completer writes it."""


class Completer:
    def __init__(self, store: Store, table: RunTable) -> None:
        self.store = store
        self.table = table
        self._ready = threading.Condition()
        self._pending: deque[tuple[float, RunResult]] = deque()
        self._closing = False
        self._batch: list[RunResult] = []
        self.stopping = threading.Event()
        self.defer = False
        """Set by the dispatcher while its claims come back full: it will take the results
        into its next claim, so the completer waits up to ``DEFER`` before writing them."""

    def submit(self, result: RunResult) -> None:
        """Write ``result`` (the table learns its lease now, if it did not already)."""
        self.table.unwritten(result)
        self.enqueue(result)

    def enqueue(self, result: RunResult) -> None:
        """Write a result the table already holds as unwritten (``RunTable.finish``)."""
        with self._ready:
            self._pending.append((time.monotonic(), result))
            if len(self._pending) == 1:
                self._ready.notify()

    def take(self, limit: int = BATCH) -> list[RunResult]:
        """The results waiting (at most ``limit``), for the caller to write under their
        leases; it must :meth:`requeue` them if its write fails, else mark them written."""
        with self._ready:
            n = min(limit, len(self._pending))
            return [self._pending.popleft()[1] for _ in range(n)]

    def requeue(self, results: Sequence[RunResult]) -> None:
        """Results :meth:`take` gave out that were not written: first in line again."""
        now = time.monotonic()
        with self._ready:
            self._pending.extendleft((now - DEFER, r) for r in reversed(results))
            self._ready.notify()

    def close(self) -> None:
        """Stop after what was submitted so far is written."""
        with self._ready:
            self._closing = True
            self._ready.notify()

    def abandon(self) -> list[RunResult]:
        """Stop now; the results not written (the database stayed away)."""
        self.stopping.set()
        with self._ready:
            left = list(self._batch) + [r for _, r in self._pending]
            self._pending.clear()
            self._closing = True
            self._ready.notify()
        self._batch = []
        self.table.written(left)
        return left

    def step(self) -> None:
        if not self._batch and not self._take():
            return
        self._write(self._batch)
        self.table.written(self._batch)
        self._batch = []

    def _take(self) -> bool:
        with self._ready:
            if not self._pending and not self._closing:
                self._ready.wait(0.5)
            if not self._pending:
                if self._closing:
                    self.stopping.set()
                return False
            if self.defer and not self._closing:
                # Leave them to the dispatcher's next claim, unless it is late.
                age = time.monotonic() - self._pending[0][0]
                if age < DEFER:
                    self._ready.wait(DEFER - age)
                    if not self._pending or (
                        self.defer
                        and not self._closing
                        and time.monotonic() - self._pending[0][0] < DEFER
                    ):
                        return False
            n = min(BATCH, len(self._pending))
            self._batch = [self._pending.popleft()[1] for _ in range(n)]
        return True

    def _write(self, batch: Sequence[RunResult]) -> None:
        # A fault raises out of here: the batch stays, the supervisor backs off and the
        # next step writes it again. If the first try committed and only its reply was
        # lost, the retry matches no lease and changes nothing.
        try:
            applied = self.store.finish_runs(batch)
        except Exception as exc:
            if not is_data_error(exc):
                raise
            # The database refused a value of one result (text it cannot hold): the batch
            # is one statement, so none was written. One by one, the others land; the one
            # refused is recorded without its text (never lost, never run again).
            applied = [self._write_alone(res) for res in batch]
        report_fenced(batch, applied)

    def _write_alone(self, res: RunResult) -> bool:
        """Write one result; if the database refuses its values, write it as an Error that
        says its text could not be stored. A fault raises (the batch is retried whole; a
        result already written is fenced the second time)."""
        try:
            [applied] = self.store.finish_runs([res])
        except Exception as exc:
            if not is_data_error(exc):
                raise
            log.error(
                "run result refused by the database (%s); recorded as an error without its text",
                type(exc).__name__,
                extra={"action": "run_result_refused", "operation_id": str(res.operation_id)},
            )
            [applied] = self.store.finish_runs([unstorable(res, exc)])
        return applied


def unstorable(res: RunResult, exc: BaseException) -> RunResult:
    """``res`` as an Error without the text the database refused (message, traceback,
    result, progress): its message says so and names the refusal."""
    return replace(
        res,
        outcome=Outcome.ERROR,
        status=Status.ERROR,
        status_reason=None,
        earliest_start_at=None,
        error_message=(
            f"the run's result could not be stored (the database refused its text: "
            f"{type(exc).__name__})"
        ),
        traceback=None,
        result_json=None,
        progress_json=None,
        clear_checkpoint=False,
    )


def report_fenced(batch: Sequence[RunResult], applied: Sequence[bool]) -> None:
    """Log each result of ``batch`` that did not apply (its run no longer held the lease)."""
    for res, ok in zip(batch, applied, strict=True):
        if not ok:
            log.warning(
                "run result not recorded: the run no longer holds its operation "
                "(it was rescued, or this result was already written)",
                extra={"action": "run_fenced", "operation_id": str(res.operation_id)},
            )


def log_failed_result(
    task: str, claimed: ClaimedRun, result: RunResult, allowed: frozenset[DataClass]
) -> None:
    """Log a failed attempt: its exception type always, its message only where
    ``allowed`` lets customer content into logs."""
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
