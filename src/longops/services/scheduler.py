"""The scheduler: keeps ready recurring operations' start times inside their run windows.

A recurring operation's next start is computed when its run ends. If its window or
weekdays are edited afterwards (or it was set ready by hand), its start may fall outside
them; the scheduler moves such a start to the next allowed time so no worker claims it
only to put it back.
"""

from __future__ import annotations

from datetime import timedelta

from longops.domain.clock import Clock
from longops.domain.recurrence import adjust_to_run_window
from longops.store.base import Store
from longops.worker.zones import CompanyZones

INTERVAL = timedelta(seconds=10)
BATCH = 500


class Scheduler:
    name = "scheduler"

    def __init__(self, store: Store, clock: Clock, *, interval: timedelta = INTERVAL) -> None:
        self.store = store
        self.clock = clock
        self.interval = interval
        self._zones = CompanyZones(store)

    def run_once(self) -> int:
        now = self.clock.now()
        moved = 0
        for op in self.store.ready_recurring(now, BATCH):
            assert op.recurrence is not None
            if op.recurrence.cron or op.recurrence.date_formula:
                continue  # these are not window-adjusted (Business Central rule)
            target = adjust_to_run_window(op.recurrence, now, self._zones(op.company))
            if target > now and self.store.move_start(op.id, op.earliest_start_at, target, now):
                moved += 1
        return moved
