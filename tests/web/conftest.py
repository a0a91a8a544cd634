"""Fixtures of the pages' route tests: an application with two companies, a user of each
permission set, and a signed-in browser-like client per user (httpx through the real ASGI
application, API and pages together, on both databases)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest
import uvicorn
from web_support import PASSWORD, SECRET, USERS, Browser

from longops import Longops, RunContext
from longops.cli.serve import Server
from procs import wait_for


@pytest.fixture
def app(db_url: str) -> Iterator[Longops]:
    application = Longops(db_url)

    @application.task(name="report", description="Print a report")
    def report(ctx: RunContext, pages: int = 1) -> int:
        return pages

    @application.task(name="boom")
    def boom(ctx: RunContext) -> None:
        raise RuntimeError("the printer is on fire")

    application.add_company("CRONUS", time_zone="Europe/Amsterdam")
    application.add_company("FABRIKAM")
    application.set_category("POSTING", company="CRONUS", description="Posting")
    for name, (grants, is_super) in USERS.items():
        application.security.add_user(name, password=PASSWORD, grants=grants, is_super=is_super)
    yield application
    application.close()


@pytest.fixture
def server(app: Longops) -> Iterator[Server]:
    return Server(app, secret=SECRET)


@pytest.fixture
def served(server: Server) -> Iterator[str]:
    """The API and the pages on a real uvicorn, on a free loopback port; its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(server, lifespan="on", log_level="warning", timeout_graceful_shutdown=3)
    http = uvicorn.Server(config)
    thread = threading.Thread(target=http.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: http.started, timeout=20, what="uvicorn to start")
    yield f"http://127.0.0.1:{port}"
    http.should_exit = True
    thread.join(timeout=20)
    sock.close()


@pytest.fixture
def browser(served: str) -> Iterator[Callable[[str | None], Browser]]:
    """``browser("alice")``: a client signed in as alice; ``browser(None)``: signed out."""
    clients: list[httpx.Client] = []

    def make(user: str | None) -> Browser:
        client = httpx.Client(base_url=served, follow_redirects=False, timeout=30)
        clients.append(client)
        b = Browser(client)
        b.get("/login")
        if user is not None:
            r = b.post("/login", {"username": user, "password": PASSWORD})
            assert r.status_code == 303, r.text
        return b

    yield make
    for client in clients:
        client.close()
