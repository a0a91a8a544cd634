"""The stall detector: flags running operations whose progress has not moved for their
task's ``stall_after`` (default 10 minutes).

Each flag is a ``stalled`` event on the operation's timeline; the worker's next progress
write that shows movement clears the flag and records ``unstalled``. The comparison is made
in the database with the operation's own ``stall_after`` and the time of its last movement
(set when it was claimed), so the detector needs nothing but the clock.
"""

from __future__ import annotations

from datetime import timedelta

from longops import telemetry
from longops.domain.clock import Clock
from longops.store.base import Store

INTERVAL = timedelta(seconds=5)


class StallDetector:
    name = "stall_detector"

    def __init__(self, store: Store, clock: Clock, *, interval: timedelta = INTERVAL) -> None:
        self.store = store
        self.clock = clock
        self.interval = interval

    def run_once(self) -> int:
        stalled = self.store.flag_stalled(self.clock.now())
        telemetry.stalled(stalled)
        return len(stalled)
