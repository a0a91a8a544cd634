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
from datetime import datetime, timedelta

from longops.domain.clock import Clock
from longops.services.base import Service
from longops.services.expiry import Expiry
from longops.services.pruner import Pruner
from longops.services.rescuer import Rescuer
from longops.services.scheduler import Scheduler
from longops.services.stall import StallDetector
from longops.store.base import Store
from longops.store.faults import is_fault
from longops.worker.registry import TaskRegistry
from longops.worker.supervise import Supervisor

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
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing: dict[str, str] = {}
        self._unreachable_since: datetime | None = None

    def run_once(self) -> int:
        """One tick: renew leadership, then run each service that is due."""
        try:
            self.is_leader = self.store.try_lead(
                LEADER_NAME, self.session_id, self.clock.now(), self.ttl
            )
        except Exception as exc:
            if is_fault(exc):
                self._unreachable_since = self._unreachable_since or self.clock.now()
            raise
        self._back_from_outage()
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
            except Exception as exc:
                if not is_fault(exc):
                    raise  # a bug: the loop dies and stops the worker (worker.supervise)
                self._unreachable_since = self._unreachable_since or self.clock.now()
                # A fault in one duty leaves the others their turn; logged once per change.
                state = type(exc).__name__
                if self._failing.get(service.name) != state:
                    self._failing[service.name] = state
                    log.warning(
                        "service %s: database fault (%s); retrying next round",
                        service.name,
                        exc,
                        extra={"action": "service_failed", "service": service.name},
                    )
            else:
                if self._failing.pop(service.name, None) is not None:
                    log.info(
                        "service %s recovered",
                        service.name,
                        extra={"action": "service_recovered", "service": service.name},
                    )
        return changed

    def _back_from_outage(self) -> None:
        """After an outage long enough to silence healthy sessions (a third of the lease,
        so a few missed beats), tell the duties that care (the rescuer) that the
        database is back, so they give everyone time to beat again."""
        since, self._unreachable_since = self._unreachable_since, None
        if since is None or self.clock.now() - since < self.ttl / 3:
            return
        for service in self.services:
            returned = getattr(service, "database_returned", None)
            if returned is not None:
                returned()

    def step(self) -> None:
        """One round of the services loop: a tick, then wait for the next."""
        self.run_once()
        self.stopping.wait(self.tick)

    def start(self) -> None:
        """Run the loop in a thread of its own (a worker runs :meth:`step` under its own
        supervisor instead)."""
        supervisor = Supervisor(logger=log)
        self._thread = supervisor.spawn("services", self.step, self.stopping)

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.is_leader:
            try:
                self.store.resign(LEADER_NAME, self.session_id)
            except Exception:
                log.warning("could not resign leadership", exc_info=True)


LEADER_TTL = timedelta(seconds=5)


def leader_ttl(session_timeout: timedelta) -> timedelta:
    """How long a leader's lease lasts without renewal (renewed every tick, about 1 s).

    Short, not as long as the session timeout: a leader that dies takes the rescue of
    *other* dead sessions with it until its lease lapses, so the lease adds to the time a
    crashed worker's runs wait. With 5 s the worst case for the defaults is the session
    timeout (15 s) + a rescuer interval (5 s) + this lease (5 s) + a tick = 26 s, under the
    30 s promised (docs/design.md). A lease lost to a pause only hands the duties over:
    each duty's writes are guarded, so two leaders for a moment change nothing twice.

    Example::

        leader_ttl(timedelta(seconds=15))   # timedelta(seconds=5)
    """
    return min(session_timeout, LEADER_TTL)


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
            ttl=leader_ttl(session_timeout),
        )

    return build
