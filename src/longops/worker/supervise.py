"""One shape for every background loop of a worker (dispatcher, completer, monitor,
heartbeat, cancel listener, leader services).

A loop is a ``step`` called again and again until its stop event is set; the step does one
round, including its own wait. Around each step the supervisor applies one rule:

- **a fault is ordinary** (``store.faults.is_fault``: the database or the way to it
  failed): the loop logs once when it starts failing (again only if the kind of failure
  changes) and once when it recovers, backs off with jitter (0.05 s doubling, capped at
  ``backoff_cap``, 1 s by default, so a loop is back at work within about a second of the
  database's return) and goes on, however long the fault lasts;
- **anything else is a bug**: the loop stops at once, logs the exception with its
  traceback, and ``on_fatal`` stops the whole worker, which exits with
  :data:`EXIT_LOOP_DIED`. Retrying a bug would only hide it; a supervisor restarts the
  process and the log says why;
- **a step that does not return** within its ``stuck_after`` seconds marks the loop stuck.

:meth:`Supervisor.alive` is False once a loop died or is stuck: the heartbeat stops
beating then, so the rescuer hands the session's runs to other workers.

Example::

    sup = Supervisor(on_fatal=lambda name, exc: worker.drain())
    sup.spawn("heartbeat", beat_once, stop_event, stuck_after=60)
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from longops import telemetry
from longops.store.faults import is_fault

log = logging.getLogger("longops.worker")

EXIT_LOOP_DIED = 70
"""Exit code of a worker stopped because one of its loops died of a bug (EX_SOFTWARE)."""

BACKOFF_START = 0.05
BACKOFF_CAP = 1.0


@dataclass(slots=True)
class _Loop:
    name: str
    stuck_after: float | None
    state: str = "starting"
    failures: int = 0
    failing_since: float | None = None
    step_started: float | None = None
    dead: bool = False
    done: bool = False


class Supervisor:
    """Runs loops by the rule in the module docstring and reports their states."""

    def __init__(
        self,
        *,
        on_fatal: Callable[[str, BaseException], None] | None = None,
        on_recovered: Callable[[str], None] | None = None,
        backoff_cap: float = BACKOFF_CAP,
        logger: logging.Logger = log,
    ) -> None:
        self.on_fatal = on_fatal
        self.on_recovered = on_recovered
        self.backoff_cap = backoff_cap
        self.log = logger
        self._loops: dict[str, _Loop] = {}
        self._lock = threading.Lock()
        self.fatal: tuple[str, BaseException] | None = None

    def spawn(
        self,
        name: str,
        step: Callable[[], object],
        stop: threading.Event,
        *,
        stuck_after: float | None = None,
    ) -> threading.Thread:
        """Run ``step`` in a daemon thread named ``longops-<name>`` until ``stop`` is set."""
        self.register(name, stuck_after=stuck_after)
        # Daemon: a loop blocked in a call that never returns must not keep the process up.
        thread = threading.Thread(
            target=self.run, args=(name, step, stop), name=f"longops-{name}", daemon=True
        )
        thread.start()
        return thread

    def register(self, name: str, *, stuck_after: float | None = None) -> None:
        with self._lock:
            self._loops[name] = _Loop(name, stuck_after)

    def run(self, name: str, step: Callable[[], object], stop: threading.Event) -> None:
        """The loop itself (in the calling thread); returns when ``stop`` is set or the
        step died of a bug."""
        if name not in self._loops:
            self.register(name)
        loop = self._loops[name]
        while not stop.is_set():
            loop.step_started = time.monotonic()
            try:
                step()
            except BaseException as exc:
                loop.step_started = None
                if isinstance(exc, Exception) and is_fault(exc):
                    stop.wait(self._fault(loop, exc))
                    continue
                self._died(loop, exc)
                return
            loop.step_started = None
            if loop.failures:
                self._recovered(loop)
            elif loop.state != "ok":
                loop.state = "ok"
        loop.done = True
        loop.state = "stopped"

    def _fault(self, loop: _Loop, exc: Exception) -> float:
        loop.failures += 1
        state = f"backing off: {type(exc).__name__}"
        if loop.failing_since is None:
            loop.failing_since = time.monotonic()
        changed = state != loop.state
        telemetry.loop_fault(loop.name, type(exc).__name__, changed)
        if changed:
            # Once per change of state, not once per try: an outage of an hour is one line.
            self.log.warning(
                "%s: %s; retrying until it comes back: %s",
                loop.name,
                "database fault" if loop.failures == 1 else "fault changed",
                _first_line(exc),
                extra={"action": "loop_backing_off", "loop": loop.name},
            )
            loop.state = state
        else:
            self.log.debug("%s: still failing (%d tries)", loop.name, loop.failures)
        delay = min(self.backoff_cap, BACKOFF_START * 2.0 ** min(loop.failures - 1, 20))
        return float(delay * random.uniform(0.5, 1.0))

    def _recovered(self, loop: _Loop) -> None:
        since = loop.failing_since or time.monotonic()
        telemetry.loop_recovered(loop.name, loop.failures, time.monotonic() - since)
        self.log.info(
            "%s: recovered after %d failed tries in %.1f s",
            loop.name,
            loop.failures,
            time.monotonic() - since,
            extra={"action": "loop_recovered", "loop": loop.name},
        )
        loop.failures, loop.failing_since, loop.state = 0, None, "ok"
        if self.on_recovered is not None:
            self.on_recovered(loop.name)

    def _died(self, loop: _Loop, exc: BaseException) -> None:
        loop.dead = True
        loop.done = True
        loop.state = f"stopped: bug {type(exc).__name__}: {_first_line(exc)}"[:300]
        telemetry.loop_died(loop.name, type(exc).__name__)
        self.log.critical(
            "%s loop stopped by a bug (%s); the worker stops and exits with code %d",
            loop.name,
            type(exc).__name__,
            EXIT_LOOP_DIED,
            exc_info=exc,
            extra={"action": "loop_died", "loop": loop.name},
        )
        with self._lock:
            first = self.fatal is None
            if first:
                self.fatal = (loop.name, exc)
        if first and self.on_fatal is not None:
            self.on_fatal(loop.name, exc)

    # -- reading ------------------------------------------------------------------------------
    def states(self) -> dict[str, str]:
        """Loop name -> "ok", "backing off: <error>", "stuck: ...", "stopped: bug ..."."""
        now = time.monotonic()
        with self._lock:
            loops = list(self._loops.values())
        out: dict[str, str] = {}
        for loop in loops:
            started = loop.step_started
            if (
                not loop.done
                and loop.stuck_after is not None
                and started is not None
                and now - started > loop.stuck_after
            ):
                out[loop.name] = f"stuck: one round has run for {now - started:.0f} s"
            else:
                out[loop.name] = loop.state
        return out

    def alive(self) -> bool:
        """No loop died of a bug and none is stuck."""
        return self.fatal is None and not any(
            s.startswith(("stuck", "stopped: bug")) for s in self.states().values()
        )

    def reachable(self) -> bool:
        """No loop is backing off on a fault (the database answers)."""
        return not any(s.startswith("backing off") for s in self.states().values())

    def not_alive(self) -> str | None:
        """The first loop that is dead or stuck, with its state, or None."""
        for name, state in self.states().items():
            if state.startswith(("stuck", "stopped: bug")):
                return f"{name} {state}"
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
