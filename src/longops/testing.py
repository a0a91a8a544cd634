"""Helpers for testing code that uses longops.

``Runner`` runs due operations synchronously in the calling thread (claim, execute, record),
with whatever clock the app has. With a :class:`FrozenClock` nothing runs before it is due,
so retry delays and schedules can be checked exactly.

Example::

    clock = FrozenClock()
    app = Longops("sqlite:///:memory:", clock=clock)
    ...
    runner = Runner(app)
    assert runner.run_until_idle() == 1
    clock.advance(seconds=61)
    runner.run_until_idle()
"""

from __future__ import annotations

from longops.app import Longops
from longops.store.base import ClaimParams, RunResult
from longops.worker.executor import RunControl, execute
from longops.worker.isolation import ChildPool
from longops.worker.session import active_session
from longops.worker.zones import CompanyZones

__all__ = ["Runner", "active_session"]


class Runner:
    """A session that runs operations in the caller's thread, one claim at a time."""

    def __init__(self, app: Longops, *, queues: tuple[str, ...] = ("default",)) -> None:
        self.app = app
        self.queues = queues
        session = active_session(app.clock.now(), queues)
        self.session_id = session.id
        app.store.register_session(session)
        self._zones = CompanyZones(app.store)
        self.results: list[RunResult] = []
        self._pool: ChildPool | None = None

    @property
    def pool(self) -> ChildPool:
        """Child processes for ``isolation="process"`` tasks, started on first use."""
        if self._pool is None:
            self._pool = ChildPool()
        return self._pool

    def close(self) -> None:
        """Stop the child processes, if any were started."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def run_once(self, limit: int = 1) -> int:
        """Claim up to ``limit`` due operations and run them; returns how many ran."""
        store = self.app.store
        store.heartbeat(self.session_id, self.app.clock.now())
        claimed = store.claim(
            ClaimParams(self.session_id, self.queues, limit, self.app.clock.now())
        )
        for c in claimed:
            control = RunControl(c, store=store, clock=self.app.clock)
            task = (
                self.app.registry.get(c.operation.task)
                if c.operation.task in self.app.registry
                else None
            )
            result = execute(
                c,
                self.app.registry,
                self.app.clock,
                self._zones(c.operation.company),
                control,
                self.pool if task is not None and task.isolation == "process" else None,
            )
            store.finish_runs([result])
            self.results.append(result)
        return len(claimed)

    def run_until_idle(self, max_runs: int = 10_000) -> int:
        """Run due operations until none is left due; returns how many ran."""
        total = 0
        while total < max_runs:
            ran = self.run_once()
            if not ran:
                break
            total += ran
        return total
