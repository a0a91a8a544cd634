"""``longops serve``: the REST API and the pages on uvicorn, and optionally worker slots
beside them."""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from longops.api import create_api
from longops.app import Longops
from longops.core.streams import EventHub
from longops.domain.errors import ValidationError
from longops.web import create_pages

log = logging.getLogger("longops.serve")

API_PATHS = ("/v1/", "/docs", "/healthz", "/readyz")
"""What the REST API answers; every other path is one of the pages."""


class Server:
    """The API and the pages as one ASGI application, sharing one event hub.

    The API runs the lifespan (it starts and stops the hub); a path under ``/v1``,
    ``/docs`` or ``/healthz`` goes to the API, everything else to the pages.

    Example::

        uvicorn.run(Server(app))
    """

    def __init__(self, app: Longops, *, secret: bytes | None = None) -> None:
        self.hub = EventHub(app.store)
        self.api = create_api(app, hub=self.hub)
        self.pages = create_pages(app, self.hub, secret=secret)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target: ASGIApp = self.api
        if scope["type"] in ("http", "websocket"):
            path: str = scope.get("path", "")
            if not (path == "/v1" or path.startswith(API_PATHS)):
                target = self.pages
        await target(scope, receive, send)


def secret_key() -> bytes | None:
    """The key that signs session cookies (``LONGOPS_SECRET_KEY``); None: a random one,
    so sign-ins end when the server restarts."""
    text = os.environ.get("LONGOPS_SECRET_KEY")
    if not text:
        return None
    key = text.encode()
    if len(key) < 32:
        raise ValidationError("LONGOPS_SECRET_KEY", "must be at least 32 characters")
    return key


def _after_shutdown(signum: int, frame: FrameType | None) -> None:
    log.info("signal %s: shut down", signum)


def serve(
    app: Longops,
    *,
    host: str,
    port: int,
    workers: int,
    log_level: str,
    worker_options: dict[str, Any] | None = None,
) -> int:
    """Serve the API and the pages until SIGINT/SIGTERM; with ``workers`` > 0 a worker
    session with that many slots runs in this process too (single-machine use), drained on
    the way out."""
    import uvicorn

    server_app = Server(app, secret=secret_key())
    worker = None
    thread = None
    if workers > 0:
        worker = app.worker(concurrency=workers, **(worker_options or {}))
        thread = threading.Thread(
            target=worker.run, kwargs={"install_signals": False}, name="longops-serve-worker"
        )
        thread.start()
    config = uvicorn.Config(
        server_app, host=host, port=port, log_level=log_level.lower(), lifespan="on"
    )
    server = uvicorn.Server(config)
    # uvicorn shuts down on SIGTERM/SIGINT and then raises the signal again against the
    # handlers it found: with the default ones the process would die there, before the
    # embedded worker is drained. Handlers that do nothing let the drain below run.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _after_shutdown)
    try:
        server.run()
    finally:
        if worker is not None and thread is not None:
            worker.drain()
            thread.join(timeout=worker.options.grace_period + 30)
    return 0
