"""The worker's and the enqueuing process's OpenTelemetry metrics (no-op until a meter
provider is configured).

| instrument | kind | unit | attributes |
|---|---|---|---|
| ``messaging.client.sent.messages`` | counter | ``{message}`` | queue, task |
| ``longops.attempts.started`` | counter | ``{attempt}`` | queue, task |
| ``longops.attempts.ended`` | counter | ``{attempt}`` | queue, task, outcome |
| ``messaging.process.duration`` | histogram | ``s`` | queue, task, outcome |
| ``longops.queue.wait`` | histogram | ``s`` | queue, task |
| ``longops.progress.writes`` | counter | ``{write}`` | |
| ``longops.claim.batch_size`` | histogram | ``{operation}`` | |
| ``longops.pool.connections`` | observable counter | ``{connection}`` | state (PostgreSQL) |
| ``longops.worker.loop.errors`` | counter | ``{error}`` | loop, kind (fault, bug) |
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Protocol

from opentelemetry.metrics import CallbackOptions, Meter, Observation


class PooledStore(Protocol):
    def pool_stats(self) -> tuple[int, int, int] | None:
        """Connections in use, idle, and requests waiting for one (None: closed)."""
        ...


_pools: weakref.WeakSet[PooledStore] = weakref.WeakSet()


def watch_pool(store: PooledStore) -> None:
    """Report ``store``'s connection pool in ``longops.pool.connections`` while it lives."""
    _pools.add(store)


def _observe_pools(options: CallbackOptions) -> Iterable[Observation]:
    in_use = idle = waiting = 0
    for store in list(_pools):
        stats = store.pool_stats()
        if stats is not None:
            in_use, idle, waiting = in_use + stats[0], idle + stats[1], waiting + stats[2]
    return [
        Observation(in_use, {"state": "in_use"}),
        Observation(idle, {"state": "idle"}),
        Observation(waiting, {"state": "waiting"}),
    ]


class Instruments:
    def __init__(self, meter: Meter) -> None:
        self.sent = meter.create_counter(
            "messaging.client.sent.messages", unit="{message}", description="Operations enqueued"
        )
        self.started = meter.create_counter(
            "longops.attempts.started", unit="{attempt}", description="Attempts whose code began"
        )
        self.ended = meter.create_counter(
            "longops.attempts.ended", unit="{attempt}", description="Attempts ended, by outcome"
        )
        self.duration = meter.create_histogram(
            "messaging.process.duration", unit="s", description="How long an attempt ran"
        )
        self.queue_wait = meter.create_histogram(
            "longops.queue.wait",
            unit="s",
            description="From ready (and due) to started: how long an operation waited",
        )
        self.progress_writes = meter.create_counter(
            "longops.progress.writes", unit="{write}", description="Progress readings written"
        )
        self.claim_batch = meter.create_histogram(
            "longops.claim.batch_size", unit="{operation}", description="Operations per claim"
        )
        self.loop_errors = meter.create_counter(
            "longops.worker.loop.errors",
            unit="{error}",
            description="Failed rounds of a worker's loops: kind fault (backed off) or bug (died)",
        )
        self.sent_notifications = meter.create_counter(
            "longops.sent.notifications",
            unit="{notification}",
            description="Notification deliveries tried, by channel kind and outcome",
        )
        self.pool = meter.create_observable_up_down_counter(
            "longops.pool.connections",
            callbacks=[_observe_pools],
            unit="{connection}",
            description="Database connections of this process's pools, by state",
        )
