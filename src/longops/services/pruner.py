"""The pruner: deletes finished and cancelled operations, attempts, and ended sessions
older than the retention period (default 30 days). Operations in error, and their attempts,
stay until a person restarts or removes them. The store deletes in batches of 5,000 rows
(``store._sql.runs.PRUNE_BATCH``), each its own short transaction, so a large history
never holds locks for one long one."""

from __future__ import annotations

from datetime import timedelta

from longops import telemetry
from longops.domain.clock import Clock
from longops.store.base import Store

RETENTION = timedelta(days=30)
INTERVAL = timedelta(minutes=10)


class Pruner:
    name = "pruner"

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        retention: timedelta = RETENTION,
        interval: timedelta = INTERVAL,
    ) -> None:
        self.store = store
        self.clock = clock
        self.retention = retention
        self.interval = interval

    def run_once(self) -> int:
        pruned = self.store.prune(self.clock.now() - self.retention)
        telemetry.maintenance(self.name, pruned)
        return pruned
