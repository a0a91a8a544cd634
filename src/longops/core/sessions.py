"""Worker sessions: who runs, what they run, draining one, the fleet's figures, and whether
an actor may run a worker. Sessions serve many companies, so all of it is SUPER's.

Example::

    sessions = SessionService(store, clock, actor=Actor.local())
    [live] = sessions.list_sessions(active_only=True)
    sessions.drain_session(live.id)
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence

from longops.core.access import ActorBound, acting, no_company, require
from longops.domain.clock import Clock
from longops.domain.errors import NotFound, ValidationError
from longops.domain.operation import Operation, Session, SessionEvent, _check_name
from longops.domain.security import Action, Actor
from longops.store.base import Store
from longops.telemetry.prometheus import render

METRICS_FRESH_FOR = 5.0
"""Seconds the fleet's /metrics figures are reused (one query per period, however many
scrapers)."""


class SessionService(ActorBound):
    """Worker sessions, for the bound actor."""

    def __init__(self, store: Store, clock: Clock, *, actor: Actor) -> None:
        self.store = store
        self.clock = clock
        self.actor = actor
        # A dict, not an attribute: actor-bound copies (as_actor) share it.
        self._metrics: dict[str, tuple[float, str]] = {}
        self._metrics_lock = threading.Lock()

    @acting
    def list_sessions(self, *, active_only: bool = False) -> list[Session]:
        """Worker sessions, newest first (they serve many companies: SUPER only)."""
        require(self.actor, Action.LIST_SESSIONS, target="")
        return self.store.list_sessions(active_only=active_only)

    @acting
    def session_events(self, session_id: uuid.UUID | None = None) -> list[SessionEvent]:
        require(self.actor, Action.LIST_SESSIONS, target="")
        return self.store.list_session_events(session_id)

    @acting
    def session_operations(self) -> dict[uuid.UUID, list[Operation]]:
        """The operations each live session is running now, by session id."""
        require(self.actor, Action.LIST_SESSIONS, target="")
        out: dict[uuid.UUID, list[Operation]] = {}
        for op in self.store.list_running(limit=10_000):
            if op.session_id is not None:
                out.setdefault(op.session_id, []).append(op)
        return out

    @acting
    def fleet_metrics(self) -> str:
        """The fleet's figures in Prometheus's text format (SUPER: they span companies),
        read at most once per ``METRICS_FRESH_FOR`` seconds however often it is scraped."""
        require(self.actor, Action.LIST_SESSIONS, target="")
        now = time.monotonic()
        with self._metrics_lock:
            cached = self._metrics.get("fleet")
        if cached is not None and now - cached[0] < METRICS_FRESH_FOR:
            return cached[1]
        text = render(self.store.fleet_metrics(self.clock.now()))
        with self._metrics_lock:
            self._metrics["fleet"] = (now, text)
        return text

    @acting
    def drain_session(self, session_id: uuid.UUID | str) -> Session:
        """Ask a live worker session to drain: it stops claiming at its next heartbeat, lets
        running work finish within its grace period and ends."""
        who = self.actor
        sid = session_id if isinstance(session_id, uuid.UUID) else _session_id(session_id)
        require(who, Action.DRAIN_SESSION, target=f"session {sid}")
        audit = self._audit_entry(who, "drain_session", f"session {sid}", None, {})
        drained = self.store.request_drain(
            sid, self.clock.now(), f"drain requested by {who.name}", audit=audit
        )
        if drained is None:
            raise NotFound("session", f"{sid} (live)")
        return drained

    @acting
    def check_worker(self, companies: Sequence[str] | None = None) -> tuple[str, ...] | None:
        """May the actor run a worker session, serving ``companies`` (None: all)? Returns
        the companies, checked to exist, sorted."""
        require(self.actor, Action.RUN_WORKER, target="")
        if companies is None:
            return None
        names = sorted(set(companies))
        if not names:
            raise ValidationError("companies", "must name at least one company (or none: all)")
        for name in names:
            _check_name("company", name)
            if self.store.get_company(name) is None:
                raise no_company(name)
        return tuple(names)


def _session_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationError("id", "must be a session id (a UUID)", value) from None
