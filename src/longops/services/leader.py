"""Leader election and the loop that runs the services on the leader only.

Every worker runs a ``ServiceRunner``; each tick it tries to take or renew a lease on the
``maintenance`` row. Only the holder runs the services, so each duty runs once across the
fleet. A leader that dies stops renewing and another worker takes over after ``ttl``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta

from longops.domain.clock import Clock
from longops.services.base import Service
from longops.services.expiry import Expiry
from longops.services.pruner import Pruner
from longops.services.rescuer import Rescuer
from longops.services.scheduler import Scheduler
from longops.services.stall import StallDetector
from longops.store.base import Store
from longops.worker.registry import TaskRegistry

log = logging.getLogger("longops.services")

LEADER_NAME = "maintenance"


class ServiceRunner:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        session_id: uuid.UUID,
        services: Sequence[Service],
        *,
        tick: float = 1.0,
        ttl: timedelta = timedelta(seconds=15),
    ) -> None:
        self.store = store
        self.clock = clock
        self.session_id = session_id
        self.services = list(services)
        self.tick = min([tick, *(s.interval.total_seconds() for s in services)])
        self.ttl = ttl
        self.is_leader = False
        self._last_run: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """One tick: renew leadership, then run each service that is due."""
        self.is_leader = self.store.try_lead(
            LEADER_NAME, self.session_id, self.clock.now(), self.ttl
        )
        if not self.is_leader:
            return 0
        changed = 0
        mono = time.monotonic()
        for service in self.services:
            last = self._last_run.get(service.name)
            if last is not None and mono - last < service.interval.total_seconds():
                continue
            self._last_run[service.name] = mono
            try:
                changed += service.run_once()
            except Exception:
                log.exception(
                    "service failed", extra={"action": "service_failed", "service": service.name}
                )
        return changed

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="longops-services", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("service tick failed", extra={"action": "service_tick_failed"})
            self._stop.wait(self.tick)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.is_leader:
            try:
                self.store.resign(LEADER_NAME, self.session_id)
            except Exception:
                log.warning("could not resign leadership", exc_info=True)


def maintenance_for(
    store: Store,
    clock: Clock,
    registry: TaskRegistry,
    *,
    session_timeout: timedelta,
    rescuer_interval: timedelta,
    retention: timedelta,
    notifications: Sequence[Service] = (),
) -> Callable[[uuid.UUID], ServiceRunner]:
    """The standard duties of a worker session: rescuer, expiry, scheduler, stall detector,
    pruner and (given) the notification watch and delivery.

    Example::

        Worker(store, registry, clock, options, maintenance=maintenance_for(store, clock, ...))
    """

    def build(session_id: uuid.UUID) -> ServiceRunner:
        return ServiceRunner(
            store,
            clock,
            session_id,
            [
                Rescuer(
                    store,
                    clock,
                    registry,
                    session_timeout=session_timeout,
                    interval=rescuer_interval,
                ),
                Expiry(store, clock, interval=rescuer_interval),
                Scheduler(store, clock),
                StallDetector(store, clock, interval=rescuer_interval),
                Pruner(store, clock, retention=retention),
                # Notification watch and delivery (services.watch, services.delivery):
                # safe in any number of processes; run by the leader, they need no runner
                # of their own.
                *notifications,
            ],
            tick=min(1.0, rescuer_interval.total_seconds()),
            # A dead leader must not delay rescue past session_timeout + one interval: its
            # lease lapses no later than its session is declared lost.
            ttl=session_timeout,
        )

    return build
