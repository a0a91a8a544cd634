"""A worker's health, as a supervisor (systemd, Kubernetes) asks for it.

``alive`` answers "should this process be restarted?" (liveness); ``ready`` answers "is it
doing its job right now?" (readiness). See :meth:`longops.worker.session.Worker.health`.

Example::

    health = worker.health()
    if not health.alive:
        print("restart me:", health.loops)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Health:
    """One reading of a worker's loops."""

    alive: bool
    """Every loop running; False once a loop stopped by a bug or is stuck."""
    ready: bool
    """Database reachable (no loop is backing off on a fault) and claiming (not draining)."""
    loops: dict[str, str]
    """Loop name -> state text, e.g. "ok", "backing off: OperationalError", "stopped: bug ..."."""
