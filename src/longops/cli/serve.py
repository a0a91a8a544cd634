"""``longops serve``: the REST API on uvicorn, and optionally worker slots beside it."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

from longops.api import create_api
from longops.app import Longops

log = logging.getLogger("longops.serve")


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
    """Serve the API until SIGINT/SIGTERM; with ``workers`` > 0 a worker session with that
    many slots runs in this process too (single-machine use), drained on the way out."""
    import uvicorn

    api = create_api(app)
    worker = None
    thread = None
    if workers > 0:
        worker = app.worker(concurrency=workers, **(worker_options or {}))
        thread = threading.Thread(
            target=worker.run, kwargs={"install_signals": False}, name="longops-serve-worker"
        )
        thread.start()
    config = uvicorn.Config(api, host=host, port=port, log_level=log_level.lower(), lifespan="on")
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
