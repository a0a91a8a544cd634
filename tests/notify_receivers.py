"""Loopback receivers for the notification tests: a JSON webhook and an SMTP sink.

Both listen on 127.0.0.1 only, on a port the system picks, so tests run in parallel.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def key(self) -> str | None:
        return self.headers.get("Idempotency-Key")


@dataclass
class Webhook:
    """Records every POST; answers ``status`` (mutable). With ``hold`` set, each request
    waits until ``hold`` is cleared... (see ``block``)."""

    port: int = 0
    status: int = 200
    received: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    blocking: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    close: Any = None
    """Stops listening now: the port is closed, later sends are refused."""

    def url(self, path: str = "hook", auth: str = "") -> str:
        return f"json://{auth}127.0.0.1:{self.port}/{path}"

    def keys(self) -> list[str | None]:
        with self.lock:
            return [r.key for r in self.received]

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.body for r in self.received]


@contextmanager
def webhook() -> Iterator[Webhook]:
    hook = Webhook()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n)
            with hook.lock:
                hook.received.append(Received(self.path, dict(self.headers), json.loads(raw)))
            hook.arrived.set()
            if hook.blocking:
                hook.release.wait(60)
            self.send_response(hook.status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    hook.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    closed = threading.Event()

    def close() -> None:
        if not closed.is_set():
            closed.set()
            hook.release.set()
            server.shutdown()
            server.server_close()

    hook.close = close
    try:
        yield hook
    finally:
        close()


def refused_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SmtpSink:
    port: int = 0
    messages: list[Message] = field(default_factory=list)


@contextmanager
def smtp_sink() -> Iterator[SmtpSink]:
    from aiosmtpd.controller import Controller

    sink = SmtpSink()

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            sink.messages.append(message_from_bytes(envelope.original_content))
            return "250 OK"

    controller = None
    for _ in range(5):  # the free port may be taken between the probe and the bind
        port = refused_port()
        controller = Controller(Handler(), hostname="127.0.0.1", port=port)
        try:
            controller.start()
        except (OSError, RuntimeError):
            controller = None
            continue
        sink.port = port
        break
    assert controller is not None, "no free loopback port for the SMTP sink"
    try:
        yield sink
    finally:
        controller.stop()
