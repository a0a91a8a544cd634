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
from longops.worker.executor import execute
from longops.worker.session import active_session

__all__ = ["Runner", "active_session"]
from longops.worker.zones import CompanyZones


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

    def run_once(self, limit: int = 1) -> int:
        """Claim up to ``limit`` due operations and run them; returns how many ran."""
        store = self.app.store
        store.heartbeat(self.session_id, self.app.clock.now())
        claimed = store.claim(
            ClaimParams(self.session_id, self.queues, limit, self.app.clock.now())
        )
        for c in claimed:
            result = execute(c, self.app.registry, self.app.clock, self._zones(c.operation.company))
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
