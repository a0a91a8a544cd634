"""``longops serve``: the REST API and the pages on uvicorn, and optionally worker slots
beside them."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn
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


class _Uvicorn(uvicorn.Server):
    """uvicorn, except that SIGTERM and SIGINT only stop the server: uvicorn raises the
    signal again once it has shut down, which would end the process before the embedded
    worker drains (and exit with -15 instead of 0, as ``longops worker`` does)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


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
    server = _Uvicorn(config)
    try:
        server.run()
    finally:
        if worker is not None and thread is not None:
            worker.drain()
            thread.join(timeout=worker.options.grace_period + 30)
    return 0
