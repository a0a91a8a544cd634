"""The rescuer: declares silent sessions lost and recovers their running operations.

A session that has not heartbeated for ``session_timeout`` is marked lost (a session event
records it). Each operation it was running goes back to ``ready`` when attempts remain, or
to ``error`` when they are spent, by the same rules as a failed run. The write is fenced by
the run's lease token; once it lands, the lost session can no longer write to the row.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from longops.domain.clock import Clock
from longops.domain.operation import Outcome
from longops.store.base import Store
from longops.worker.executor import RunOutcome, result_for
from longops.worker.registry import TaskRegistry
from longops.worker.session import SESSION_TIMEOUT as WORKER_SESSION_TIMEOUT
from longops.worker.zones import CompanyZones

# One default for one setting: the worker's (a session silent this long is lost).
SESSION_TIMEOUT = timedelta(seconds=WORKER_SESSION_TIMEOUT)
INTERVAL = timedelta(seconds=5)


class Rescuer:
    name = "rescuer"

    def __init__(
        self,
        store: Store,
        clock: Clock,
        registry: TaskRegistry,
        *,
        session_timeout: timedelta = SESSION_TIMEOUT,
        interval: timedelta = INTERVAL,
    ) -> None:
        self.store = store
        self.clock = clock
        self.registry = registry
        self.session_timeout = session_timeout
        self.interval = interval
        self._zones = CompanyZones(store)
        self._hold_until: datetime | None = None

    def database_returned(self) -> None:
        """This process could not reach the database for a while: neither could the other
        workers, so their silence says nothing. Declare no session lost until they have had
        a full ``session_timeout`` to beat again (orphans of sessions already lost or
        stopped are still recovered)."""
        self._hold_until = self.clock.now() + self.session_timeout

    def run_once(self) -> int:
        now = self.clock.now()
        if self._hold_until is not None and now < self._hold_until:
            lost: list[object] = []
        else:
            lost = list(self.store.mark_lost_sessions(now, self.session_timeout))
        orphans = self.store.orphaned_runs()
        results = []
        for claimed in orphans:
            op = claimed.operation
            task = self.registry.get(op.task) if op.task in self.registry else None
            message = (
                f"session {op.session_id} was lost (no heartbeat for "
                f"{self.session_timeout.total_seconds():g} s); the run did not finish"
            )
            run = RunOutcome(Outcome.LOST, error_message=message)
            results.append(
                result_for(claimed, run, task=task, clock=self.clock, tz=self._zones(op.company))
            )
        applied = self.store.finish_runs(results) if results else []
        return len(lost) + sum(applied)
