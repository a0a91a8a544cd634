"""Maintenance mode: start it (workers stop claiming, running work gets the drain timeout,
then is handed back without spending an attempt), stop it, and see whether it is on. Starting
and stopping is SUPER's (it stops every company's work); anyone signed in may see it, since
the pages show it as a banner and ready operations wait for it.

Example::

    svc = MaintenanceService(store, clock, actor=Actor.local())
    svc.start(reason="upgrade to 2.0", drain_timeout=120)
    svc.status().active          # True
    svc.stop()
"""

from __future__ import annotations

from longops.core.access import ActorBound, acting, require
from longops.domain.clock import Clock
from longops.domain.errors import Conflict
from longops.domain.maintenance import MaintenanceMode, check_drain_timeout, check_reason
from longops.domain.security import Action, Actor
from longops.store.base import Store


class MaintenanceService(ActorBound):
    """Maintenance mode, for the bound actor."""

    def __init__(self, store: Store, clock: Clock, *, actor: Actor) -> None:
        self.store = store
        self.clock = clock
        self.actor = actor

    @acting
    def status(self) -> MaintenanceMode:
        """Whether maintenance mode is on, why, and until when running work may finish."""
        require(self.actor, Action.READ_MAINTENANCE, target="")
        return self.store.maintenance_mode()

    @acting
    def start(
        self, *, reason: str | None = None, drain_timeout: float | None = None
    ) -> MaintenanceMode:
        """Turn maintenance mode on (audited). Raises ``Conflict`` (``MaintenanceActive``)
        when it is on already: the reason and drain timeout given would be lost.

        Example::

            svc.start(reason="contract migration 0014", drain_timeout=60)
        """
        who = self.actor
        require(who, Action.SET_MAINTENANCE, target="maintenance mode")
        text = check_reason(reason)
        timeout = check_drain_timeout(drain_timeout)
        audit = self._audit_entry(
            who,
            "start_maintenance",
            "maintenance mode",
            None,
            {"reason": text, "drain_timeout": timeout.total_seconds()},
        )
        started = self.store.start_maintenance(text, timeout, self.clock.now(), audit=audit)
        if started is None:
            now = self.store.maintenance_mode()
            since = "" if now.started_at is None else f" since {now.started_at.isoformat()}"
            raise Conflict(
                "MaintenanceActive",
                f"maintenance mode is already on{since}"
                f"{f' ({now.reason})' if now.reason else ''}; stop it first to change it",
            )
        return started

    @acting
    def stop(self) -> MaintenanceMode:
        """Turn maintenance mode off (audited): workers claim again at once. Stopping it
        when it is off changes nothing and records nothing."""
        who = self.actor
        require(who, Action.SET_MAINTENANCE, target="maintenance mode")
        audit = self._audit_entry(who, "stop_maintenance", "maintenance mode", None, {})
        stopped = self.store.stop_maintenance(self.clock.now(), audit=audit)
        return stopped if stopped is not None else self.store.maintenance_mode()
