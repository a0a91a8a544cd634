"""A worker's side of maintenance mode: it stops claiming, and hands back at the drain
deadline what still runs (attempt not spent).

The claim statement already refuses while the mode is on, so a worker that has not read
it yet takes nothing; this lets the dispatcher stop asking (it waits instead) and enforces
the drain timeout. The dispatcher asks :meth:`MaintenanceWatch.hold` before each claim; the
mode is read every ``interval`` seconds (the heartbeat interval) while off, every ``poll``
seconds while on, and at once after a wake-up while on (``stop_maintenance`` wakes idle
dispatchers), so claiming resumes as soon as it stops.

Example::

    watch = MaintenanceWatch(store, clock, table, interval=2.0, poll=1.0, hand_back=...)
    wait = watch.hold()         # None: claim as usual; else seconds to wait without claiming
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from longops.domain.clock import Clock
from longops.domain.maintenance import MaintenanceMode
from longops.store.base import Store
from longops.worker.executor import RunControl
from longops.worker.runs import RunTable

log = logging.getLogger("longops.worker")


class MaintenanceWatch:
    """Follows the database's maintenance mode for one worker (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        table: RunTable,
        *,
        interval: float,
        poll: float,
        hand_back: Callable[[list[RunControl], MaintenanceMode], None],
    ) -> None:
        self.store = store
        self.clock = clock
        self.table = table
        self.interval = interval
        self.poll = poll
        self._hand_back = hand_back
        self._next_read = 0.0
        self.mode = MaintenanceMode(False)
        self._seen: datetime | None = None
        """``started_at`` of the maintenance mode this worker is holding for, if any."""
        self.handed_back = 0
        """Runs handed back at a drain deadline (or claimed ahead and not begun) so far."""

    def recheck(self) -> None:
        """Read the mode at the next :meth:`hold` (a wake-up may mean it stopped)."""
        if self.mode.active:
            self._next_read = 0.0

    def hold(self) -> float | None:
        """None when the worker may claim; else how long to wait before asking again.
        While the mode is on: runs claimed ahead go back at once, running ones at the
        drain deadline."""
        mono = time.monotonic()
        if mono >= self._next_read:
            self.mode = self.store.maintenance_mode()
            self._next_read = mono + (self.poll if self.mode.active else self.interval)
        mode = self.mode
        if not mode.active:
            if self._seen is not None:
                self._seen = None
                log.info(
                    "maintenance mode stopped: claiming again",
                    extra={"action": "maintenance_stopped"},
                )
            return None
        deadline = mode.drain_deadline
        if self._seen != mode.started_at:
            self._seen = mode.started_at
            log.info(
                "maintenance mode: no new claims; %d run(s) may finish until %s",
                len(self.table),
                "now" if deadline is None else deadline.isoformat(),
                extra={"action": "maintenance_started"},
            )
            # Claimed ahead, code not begun: they would start during maintenance.
            self._give_back(self.table.take_unstarted(), mode)
        now = self.clock.now()
        if deadline is None or now >= deadline:
            self._give_back(self.table.take_running(), mode)
            return self.poll
        return min(self.poll, max((deadline - now).total_seconds(), 0.0))

    def _give_back(self, runs: list[RunControl], mode: MaintenanceMode) -> None:
        if not runs:
            return
        log.info(
            "maintenance mode: handing back %d run(s), attempts not spent",
            len(runs),
            extra={"action": "maintenance_hand_back", "count": len(runs)},
        )
        self.handed_back += len(runs)
        self._hand_back(runs, mode)
