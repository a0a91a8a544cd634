"""The worker's and the enqueuing process's OpenTelemetry metrics (no-op until a meter
provider is configured).

| instrument | kind | unit | attributes |
|---|---|---|---|
| ``messaging.client.sent.messages`` | counter (summed in process) | ``{message}`` | queue, task |
| ``longops.attempts.started`` | counter (summed in process) | ``{attempt}`` | queue, task |
| ``longops.attempts.ended`` | counter (summed in process) | ``{attempt}`` | queue, task, outcome |
| ``messaging.process.duration`` | histogram | ``s`` | queue, task, outcome |
| ``longops.queue.wait`` | histogram | ``s`` | queue, task |
| ``longops.progress.writes`` | counter (summed in process) | ``{write}`` | |
| ``longops.claim.batch_size`` | histogram | ``{operation}`` | |
| ``longops.pool.connections`` | observable counter | ``{connection}`` | state (PostgreSQL) |
| ``longops.worker.loop.errors`` | counter | ``{error}`` | loop, kind (fault, bug) |

The counters of every operation and attempt are summed here (:class:`Tally`, a dict under a
lock) and reported as asynchronous counters when a reader collects: the exported data is the
same monotonic sum as a synchronous counter's, for a fraction of the SDK's cost per call.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Protocol

from opentelemetry.metrics import CallbackOptions, Histogram, Meter, Observation


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


class Tally:
    """A monotonic counter summed in process, by a tuple of attribute values.

    ``add`` costs a lock and a dict update; the SDK's counter would cost a measurement
    object, an attribute set's hash and an aggregation lock per reader on every call, on
    the worker's hot threads. The totals since the process began are observed when a metric
    reader collects (cumulative; the SDK derives deltas for an exporter that wants them).
    """

    __slots__ = ("_keys", "_lock", "_totals", "before")

    def __init__(self, keys: tuple[str, ...]) -> None:
        self._keys = keys
        self._lock = threading.Lock()
        self._totals: dict[tuple[str, ...], int] = {}
        self.before: Callable[[], None] | None = None
        """Run before each observation (the lean path's recorder counts what it queued)."""

    def add(self, amount: int, values: tuple[str, ...] = ()) -> None:
        with self._lock:
            self._totals[values] = self._totals.get(values, 0) + amount

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        if self.before is not None:
            self.before()
        with self._lock:
            totals = list(self._totals.items())
        return [
            Observation(total, dict(zip(self._keys, values, strict=True)))
            for values, total in totals
        ]


class _SdkHistogram:
    """The SDK's histogram, recorded with a tuple of attribute values (as :class:`Tally`
    and the lean path's :class:`longops.telemetry.lean.Histogram` are)."""

    __slots__ = ("_histogram", "_keys")

    def __init__(self, histogram: Histogram, keys: tuple[str, ...]) -> None:
        self._histogram = histogram
        self._keys = keys

    def record(self, value: float, values: tuple[str, ...] = ()) -> None:
        self._histogram.record(value, dict(zip(self._keys, values, strict=True)))


class Recording(Protocol):
    def record(self, value: float, values: tuple[str, ...] = ()) -> None: ...


def _tally(meter: Meter, name: str, keys: tuple[str, ...], unit: str, description: str) -> Tally:
    tally = Tally(keys)
    callback: Callable[[CallbackOptions], Iterable[Observation]] = tally.observe
    meter.create_observable_counter(name, callbacks=[callback], unit=unit, description=description)
    return tally


DURATION = ("messaging.process.duration", "s", "How long an attempt ran")
QUEUE_WAIT = (
    "longops.queue.wait",
    "s",
    "From ready (and due) to started: how long an operation waited",
)


class Instruments:
    """longops's instruments on ``meter``; ``histograms``: the attempt duration and queue
    wait histograms aggregated elsewhere (the lean path's), instead of the meter's."""

    def __init__(self, meter: Meter, histograms: tuple[Recording, Recording] | None = None) -> None:
        self.sent = _tally(
            meter,
            "messaging.client.sent.messages",
            ("queue", "task"),
            unit="{message}",
            description="Operations enqueued",
        )
        self.started = _tally(
            meter,
            "longops.attempts.started",
            ("queue", "task"),
            unit="{attempt}",
            description="Attempts whose code began",
        )
        self.ended = _tally(
            meter,
            "longops.attempts.ended",
            ("queue", "task", "outcome"),
            unit="{attempt}",
            description="Attempts ended, by outcome",
        )
        self.duration: Recording
        self.queue_wait: Recording
        if histograms is None:
            name, unit, description = DURATION
            self.duration = _SdkHistogram(
                meter.create_histogram(name, unit=unit, description=description),
                ("queue", "task", "outcome"),
            )
            name, unit, description = QUEUE_WAIT
            self.queue_wait = _SdkHistogram(
                meter.create_histogram(name, unit=unit, description=description),
                ("queue", "task"),
            )
        else:
            self.duration, self.queue_wait = histograms
        self.progress_writes = _tally(
            meter,
            "longops.progress.writes",
            (),
            unit="{write}",
            description="Progress readings written",
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
