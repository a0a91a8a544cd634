"""The worker's one table of runs, shared by its parts, and why a run is asked to stop.

A run is in the table from the moment its claim returns until its result is written (or
given up): first *running* (its :class:`RunControl`), then *unwritten* (its result waits for
the completer). So the table knows every lease this session holds, which is what the
dispatcher compares with the database to find runs it never got (a lost claim reply).

Example::

    table = RunTable()
    table.add(control)
    table.finish(control, result)     # running -> unwritten, in one step
    table.written([result])           # unwritten -> gone
"""

from __future__ import annotations

import enum
import threading
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from longops.store.base import RunResult

if TYPE_CHECKING:
    from longops.worker.executor import RunControl


class StopCause(enum.StrEnum):
    """Why a run was asked to stop before it ended by itself."""

    CANCEL = "cancel"
    """A person (or an expiry) asked to cancel the operation."""
    TIMEOUT = "timeout"
    """The run outlived its operation's timeout."""
    FENCED = "fenced"
    """The run no longer holds its operation (its session was declared lost, or the lease
    was taken over): whatever it does is discarded."""


class RunTable:
    """Running runs by operation id, and results not yet written, under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[uuid.UUID, RunControl] = {}
        self._unwritten: dict[uuid.UUID, RunResult] = {}  # by lease token
        self._changed = threading.Condition(self._lock)

    def __len__(self) -> int:
        with self._lock:
            return len(self._running)

    def add(self, run: RunControl) -> None:
        with self._lock:
            self._running[run.operation.id] = run

    def get(self, operation_id: uuid.UUID) -> RunControl | None:
        with self._lock:
            return self._running.get(operation_id)

    def running(self) -> dict[uuid.UUID, RunControl]:
        """A snapshot of the running runs."""
        with self._lock:
            return dict(self._running)

    def finish(self, run: RunControl, result: RunResult | None) -> bool:
        """The run ended: out of the running set and, with a result, into the unwritten
        one, atomically (no moment where the table forgets the lease). False (and nothing
        changed) when the entry is no longer this run's (a drain handed it back)."""
        with self._changed:
            op_id = run.operation.id
            if self._running.get(op_id) is not run:
                return False
            del self._running[op_id]
            if result is not None:
                self._unwritten[result.lease_token] = result
            self._changed.notify_all()
            return True

    def take_running(self) -> list[RunControl]:
        """Empty the running set (a drain hands these back)."""
        with self._changed:
            runs = list(self._running.values())
            self._running.clear()
            self._changed.notify_all()
            return runs

    def take_unstarted(self) -> list[RunControl]:
        """Take out the runs whose code has not begun (claimed ahead, waiting for a runner);
        each is abandoned in the same step, so it can no longer begin."""
        with self._changed:
            runs = [run for run in self._running.values() if run.abandon_unstarted()]
            for run in runs:
                del self._running[run.operation.id]
            self._changed.notify_all()
            return runs

    def unwritten(self, result: RunResult) -> None:
        """A result to be written that no running entry stood for (a hand-back)."""
        with self._changed:
            self._unwritten[result.lease_token] = result

    def written(self, results: Iterable[RunResult]) -> None:
        """These results were written (or given up): the table forgets their leases."""
        with self._changed:
            for r in results:
                self._unwritten.pop(r.lease_token, None)
            self._changed.notify_all()

    def pending_writes(self) -> int:
        with self._lock:
            return len(self._unwritten)

    def known_leases(self) -> set[uuid.UUID]:
        """Every lease this worker holds: its running runs' and its unwritten results'."""
        with self._lock:
            leases = {run.claimed.lease_token for run in self._running.values()}
            return leases | set(self._unwritten)

    def wait_idle(self, timeout: float, *, writes: bool) -> bool:
        """Wait until nothing runs (``writes``: and nothing waits to be written)."""
        with self._changed:
            return self._changed.wait_for(
                lambda: not self._running and (not writes or not self._unwritten),
                timeout=timeout,
            )
