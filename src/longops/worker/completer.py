"""The completer: writes finished runs back in batches (one round trip for many); nothing
else.

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
import queue
import threading
from collections.abc import Sequence

from longops.store.base import RunResult, Store
from longops.worker.runs import RunTable

log = logging.getLogger("longops.worker")

BATCH = 500


class Completer:
    def __init__(self, store: Store, table: RunTable) -> None:
        self.store = store
        self.table = table
        self._queue: queue.Queue[RunResult | None] = queue.Queue()
        self._batch: list[RunResult] = []
        self.stopping = threading.Event()

    def submit(self, result: RunResult) -> None:
        """Write ``result`` (the table learns its lease now, if it did not already)."""
        self.table.unwritten(result)
        self._queue.put(result)

    def enqueue(self, result: RunResult) -> None:
        """Write a result the table already holds as unwritten (``RunTable.finish``)."""
        self._queue.put(result)

    def close(self) -> None:
        """Stop after what was submitted so far is written."""
        self._queue.put(None)

    def abandon(self) -> list[RunResult]:
        """Stop now; the results not written (the database stayed away)."""
        self.stopping.set()
        left = list(self._batch)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                left.append(item)
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
        try:
            first = self._queue.get(timeout=0.5)
        except queue.Empty:
            return False
        if first is None:
            self.stopping.set()
            return False
        batch = [first]
        while len(batch) < BATCH:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                self._queue.put(None)
                break
            batch.append(nxt)
        self._batch = batch
        return True

    def _write(self, batch: Sequence[RunResult]) -> None:
        # A fault raises out of here: the batch stays, the supervisor backs off and the
        # next step writes it again. If the first try committed and only its reply was
        # lost, the retry matches no lease and changes nothing.
        applied = self.store.finish_runs(batch)
        for res, ok in zip(batch, applied, strict=True):
            if not ok:
                log.warning(
                    "run result not recorded: the run no longer holds its operation "
                    "(it was rescued, or this result was already written)",
                    extra={"action": "run_fenced", "operation_id": str(res.operation_id)},
                )
