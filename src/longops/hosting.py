"""Running a worker as a process of its own (``longops worker``): its logs redacted to the
data classes they may carry, a memory limit, the defaults of its timings, and a health
endpoint for supervisors. The command line reaches the worker room through here, so that
the front ends import neither ``worker`` nor ``store`` (import-linter's ``forbidden``
contract in pyproject.toml).

Example::

    redact_logs(LOGGED_BY_DEFAULT)
    code = run_worker(app.worker(concurrency=4), health_host="127.0.0.1", health_port=8081)
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Set
from typing import TYPE_CHECKING

from longops.domain.classification import DataClass
from longops.domain.errors import LongopsError
from longops.worker.memory import EXIT_MEMORY, MEMORY_HAND_BACKS, parse_size
from longops.worker.timings import HEARTBEAT_INTERVAL, RESCUER_INTERVAL, SESSION_TIMEOUT

if TYPE_CHECKING:
    from longops.worker.session import Worker

SWITCH_INTERVAL = 0.0005
"""Seconds a thread of a worker process may hold the interpreter while another waits for
it (``sys.setswitchinterval``; Python's default 0.005)."""

# The health server and the log filter are imported where they are used: the command line
# imports this module to show the defaults above in ``longops worker --help``.


def redact_logs(classes: Set[DataClass]) -> None:
    """Let the root logger's handlers write only log fields of ``classes`` (the rest redacted)."""
    from longops.worker.logs import RedactingFilter

    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter(classes))


def run_worker(worker: Worker, *, health_host: str, health_port: int) -> int:
    """Run ``worker`` until it ends (SIGTERM drains it) and return its exit code, serving
    /livez and /readyz on ``health_port`` meanwhile (0: no endpoint)."""
    from longops.worker.health import HealthServer

    # The process is the worker's: its dispatcher must get the interpreter soon after it
    # is woken (a claim is due), or a runner busy with short tasks runs the claimed-ahead
    # runs dry while the dispatcher waits its turn, by default up to 5 ms
    # (``benchmarks/results/profile-notes.md``, the SQLite drain).
    sys.setswitchinterval(SWITCH_INTERVAL)
    server = None
    if health_port:
        try:
            server = HealthServer(worker.health, host=health_host, port=health_port)
        except OSError as exc:
            raise LongopsError(
                f"--health-port {health_port}: cannot listen on {health_host}: {exc}"
            ) from exc
        server.start()
    try:
        return worker.run()
    finally:
        if server is not None:
            server.close()


__all__ = [
    "EXIT_MEMORY",
    "HEARTBEAT_INTERVAL",
    "MEMORY_HAND_BACKS",
    "RESCUER_INTERVAL",
    "SESSION_TIMEOUT",
    "parse_size",
    "redact_logs",
    "run_worker",
]
