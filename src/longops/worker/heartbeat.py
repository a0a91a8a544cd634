"""The heartbeat: tells the database this session is alive, while it is.

It beats only while every loop of the worker is alive: a loop stopped by a bug, or stuck
in one round past ``stuck_after``, stops the beats, so the rescuer declares the session
lost and hands its runs to other workers (and the worker itself stops). A beat also
brings news: the session was declared lost (rejoin as a new one) or asked to drain.

Example::

    beat = Heartbeat(store, clock, supervisor, session_id=..., on_lost=..., on_drain=...,
                     on_not_alive=...)
    supervisor.spawn("heartbeat", beat.step, stopped)
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable

from longops.domain.clock import Clock
from longops.domain.operation import SessionState
from longops.store.base import Store
from longops.worker.supervise import Supervisor

log = logging.getLogger("longops.worker")


class Heartbeat:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        supervisor: Supervisor,
        *,
        interval: float,
        stop: threading.Event,
        session_id: Callable[[], uuid.UUID],
        on_lost: Callable[[], None],
        on_drain: Callable[[], None],
        on_not_alive: Callable[[str], None],
    ) -> None:
        self.store = store
        self.clock = clock
        self.supervisor = supervisor
        self.interval = interval
        self._stop = stop
        self._session_id = session_id
        self._on_lost = on_lost
        self._on_drain = on_drain
        self._on_not_alive = on_not_alive
        self.silenced: str | None = None
        """Why the heartbeat stopped beating (a loop dead or stuck), or None."""
        self.beats = 0

    def step(self) -> None:
        if self._stop.wait(self.interval):
            return
        broken = self.supervisor.not_alive()
        if broken is not None:
            if self.silenced is None:
                self.silenced = broken
                log.error(
                    "heartbeat stopped: loop %s; the rescuer will hand this session's runs "
                    "to other workers",
                    broken,
                    extra={"action": "heartbeat_stopped"},
                )
                self._on_not_alive(broken)
            return
        state = self.store.heartbeat(self._session_id(), self.clock.now())
        self.beats += 1
        if state is SessionState.LOST:
            self._on_lost()
        elif state is SessionState.DRAINING:
            self._on_drain()
