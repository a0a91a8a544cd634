"""A worker session's default timings, apart from the session itself so that the command
line can show them in ``longops worker --help`` without loading the worker.

Example::

    app.worker(heartbeat_interval=HEARTBEAT_INTERVAL, session_timeout=SESSION_TIMEOUT)
"""

from __future__ import annotations

HEARTBEAT_INTERVAL = 2.0
SESSION_TIMEOUT = 15.0
RESCUER_INTERVAL = 5.0
"""Defaults chosen so that a crashed worker's runs are ready again within 30 s (usually
about 20 s): see docs/design.md, "Recovery timings"."""
