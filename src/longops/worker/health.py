"""A worker's health, and a tiny HTTP endpoint that serves it to supervisors.

``longops worker --health-port N`` serves two paths (see docs/deploy.md):

- ``/livez``: 200 while every loop of the worker runs; 503 once one stopped by a bug or is
  stuck (a supervisor should restart the process);
- ``/readyz``: 200 while the database answers and the worker claims work; 503 while it
  cannot reach the database, before it started, and while it drains.

Both answer with a small JSON body (``{"status": "ok", "alive": true, "ready": true,
"loops": {...}}``). The server is the standard library's ``http.server`` on a daemon
thread: no dependency, and it never keeps the process up.

Example::

    server = HealthServer(worker.health, host="127.0.0.1", port=8081).start()
    ...
    server.close()
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("longops.worker")


@dataclass(frozen=True, slots=True)
class Health:
    """One reading of a worker's loops (see :meth:`longops.worker.session.Worker.health`)."""

    alive: bool
    """Every loop running; False once a loop stopped by a bug or is stuck."""
    ready: bool
    """Database reachable (no loop is backing off on a fault) and claiming (not draining)."""
    loops: dict[str, str]
    """Loop name -> state text, e.g. "ok", "backing off: OperationalError", "stopped: bug ..."."""


PATHS = ("/livez", "/readyz")
"""What the health server answers (anything else: 404)."""


class HealthServer:
    """Serves ``/livez`` and ``/readyz`` from ``health()`` on a daemon thread.

    ``port`` 0 asks the system for a free port (:attr:`port` tells which); the worker's
    ``--health-port 0`` means no server at all.

    Example::

        server = HealthServer(lambda: Health(True, True, {}), port=0).start()
        server.port        # e.g. 43117
        server.close()
    """

    def __init__(
        self, health: Callable[[], Health], *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        from longops.domain.errors import ValidationError

        if not 0 <= port <= 65535:
            raise ValidationError("health_port", "must be between 0 and 65535", port)
        self.health = health
        self.host = host
        self._server = ThreadingHTTPServer((host, port), _handler(health))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="longops-health", daemon=True
        )
        self._thread.start()
        log.info(
            "health endpoint on http://%s:%d (/livez, /readyz)",
            self.host,
            self.port,
            extra={"action": "health_started"},
        )
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()


def answer(path: str, health: Callable[[], Health]) -> tuple[int, dict[str, Any]]:
    """The status code and JSON body for a request of ``path``.

    Example::

        answer("/livez", lambda: Health(True, False, {"dispatcher": "running"}))
        # (200, {"status": "ok", "alive": True, "ready": False, "loops": {...}})
    """
    if path not in PATHS:
        return 404, {"status": "not found", "paths": list(PATHS)}
    try:
        now = health()
    except Exception as exc:
        # A health check that cannot tell is not healthy: say why.
        return 503, {"status": "unhealthy", "error": f"{type(exc).__name__}: {exc}"}
    good = now.alive if path == "/livez" else now.ready
    return (200 if good else 503), {
        "status": "ok" if good else "unhealthy",
        "alive": now.alive,
        "ready": now.ready,
        "loops": dict(now.loops),
    }


def _handler(health: Callable[[], Health]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._reply(send_body=True)

        def do_HEAD(self) -> None:
            self._reply(send_body=False)

        def _reply(self, *, send_body: bool) -> None:
            code, body = answer(self.path.split("?", 1)[0], health)
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if send_body:
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            # Probes come every few seconds: their lines would drown the worker's log.
            log.debug("health request: " + format, *args)

    return Handler
