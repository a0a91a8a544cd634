"""A live API for the HTTP tests: ``longops.api.create_api`` served by a real uvicorn on a
free loopback port, in a background thread, once per test module and database dialect.

The database is seeded through core (never the store): companies A and B, a user for each
permission set (granted in A; SUPER is global), a user ``other`` who holds JOBQUEUE-USER in
both companies (the owner of "someone else's" operations), and API tokens for each of them,
plus tokens that must be refused: revoked, expired, and one of a disabled user.

Example::

    def test_it(live: Live) -> None:
        with live.client("SUPER") as http:
            assert http.get("/v1/companies/A/operations").status_code == 200
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from longops import EnqueueRequest, FrozenClock, Longops, RunContext
from longops.api import create_api
from longops.domain.operation import Operation
from longops.domain.security import PermissionSet
from longops.notify.secrets import SecretBox
from longops.store.base import open_store
from procs import wait_for

OWN, OTHER = "A", "B"
OTHER_USER = "other"
USERS = {
    PermissionSet.VIEW: "u-view",
    PermissionSet.USER: "u-user",
    PermissionSet.ADMIN: "u-admin",
    PermissionSet.SUPER: "u-super",
}
TASK = "t"


def build_app(url: str) -> Longops:
    """The application the server runs: a few tasks with typed arguments (their schemas
    are part of the OpenAPI-described responses) and one that needs JOBQUEUE-ADMIN."""
    app = Longops(url, secret_key=SecretBox.generate_key())  # notification channels

    @app.task(name=TASK)
    def t(n: int = 0, label: str = "x") -> int:
        return n

    @app.task(name="steps", description="Counts to n, reporting progress.")
    def steps(ctx: RunContext, n: int, names: list[str] | None = None) -> dict[str, int]:
        return {"n": n}

    @app.task(name="close_year", requires="JOBQUEUE-ADMIN")
    def close_year(year: int) -> None: ...

    return app


@dataclass
class Live:
    """A served API: its base URL, the application behind it (for seeding and checking
    through core) and the API tokens of the seeded users."""

    url: str
    app: Longops
    api: FastAPI
    dialect: str
    tokens: dict[str, str] = field(default_factory=dict)
    """By permission set value (``JOBQUEUE-VIEW`` ... ``SUPER``), ``other``, and the
    refused ones: ``revoked``, ``expired``, ``disabled``."""

    clients: dict[str | None, httpx.Client] = field(default_factory=dict)

    def http(self, who: str | None = None) -> httpx.Client:
        """A kept-open client with ``who``'s token (making one costs a TLS context, even
        for plain HTTP: the matrix sends a thousand requests)."""
        if who not in self.clients:
            self.clients[who] = self.client(who)
        return self.clients[who]

    def close(self) -> None:
        for c in self.clients.values():
            c.close()
        self.clients.clear()

    def client(self, who: str | None = None, **kwargs: Any) -> httpx.Client:
        """An HTTP client with ``who``'s bearer token (None: no token)."""
        headers = dict(kwargs.pop("headers", {}))
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def op(self, company: str = OWN, owner: str | None = None, **options: Any) -> Operation:
        """A new operation (on hold unless told otherwise), enqueued through core."""
        options.setdefault("on_hold", True)
        options.setdefault("task", TASK)
        return self.app.service.enqueue(
            EnqueueRequest(company=company, user=owner or OTHER_USER, **options)
        )

    def done_op(self, company: str = OWN, owner: str | None = None) -> Operation:
        """A new operation that is done (cancelled before it ran)."""
        op = self.op(company, owner)
        return self.app.service.cancel(op.id, reason="seeded as done")


def seed(app: Longops, url: str) -> dict[str, str]:
    """Companies, users and tokens through core; the tokens' texts by role."""
    for company in (OWN, OTHER):
        app.add_company(company)
        app.set_category("CAT", company=company)
        app.service.enqueue(EnqueueRequest(task=TASK, company=company, on_hold=True))
    security = app.security
    tokens: dict[str, str] = {}
    for s, name in USERS.items():
        if s is PermissionSet.SUPER:
            security.add_user(name, is_super=True)
        else:
            security.add_user(name, grants=[(OWN, s)])
        tokens[s.value] = security.create_token(name, name="api-tests", expires=None)[1]
    security.add_user(OTHER_USER, grants=[(OWN, PermissionSet.USER), (OTHER, PermissionSet.USER)])
    tokens[OTHER_USER] = security.create_token(OTHER_USER, name="api-tests", expires=None)[1]

    security.add_user("u-revoked", grants=[(OWN, PermissionSet.ADMIN)])
    tokens["revoked"] = security.create_token("u-revoked", name="gone", expires=None)[1]
    security.revoke_token("u-revoked", "gone")

    security.add_user("u-disabled", grants=[(OWN, PermissionSet.ADMIN)])
    tokens["disabled"] = security.create_token("u-disabled", name="k", expires=None)[1]
    security.disable_user("u-disabled")

    # An expired token: made an hour's lifetime ago by a clock two hours behind.
    security.add_user("u-expired", grants=[(OWN, PermissionSet.ADMIN)])
    past = Longops(url, clock=FrozenClock(datetime.now(UTC) - timedelta(hours=2)))
    try:
        tokens["expired"] = past.security.create_token(
            "u-expired", name="old", expires=timedelta(hours=1)
        )[1]
    finally:
        past.close()
    return tokens


@contextlib.contextmanager
def serving(app: Longops) -> Iterator[tuple[str, FastAPI]]:
    """Serve ``create_api(app)`` with uvicorn on a free loopback port in a thread; the base
    URL while the block runs. The socket is bound before the thread starts, so the port
    cannot be taken in between."""
    api = create_api(app)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # asyncio turns Nagle off only for sockets made with proto=IPPROTO_TCP (as uvicorn's own
    # bind does); this one is proto 0, and without this each keep-alive answer waits ~40 ms
    # for a delayed ACK. Accepted sockets inherit the option.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(api, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    failed: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # reported by the fixture, not lost in the thread
            failed.append(exc)

    thread = threading.Thread(target=run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    wait_for(lambda: server.started or failed, timeout=30, what="uvicorn to start")
    if failed:
        raise failed[0]
    try:
        yield f"http://127.0.0.1:{port}", api
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"
        if failed:
            raise failed[0]


@contextlib.contextmanager
def database(request: pytest.FixtureRequest, dialect: str, tmp: Path) -> Iterator[str]:
    """A migrated database of ``dialect`` for one module."""
    if dialect == "sqlite":
        url = f"sqlite:///{tmp / 'api.db'}"
        store = open_store(url)
        store.migrate()
        store.close()
        yield url
        return
    databases = request.getfixturevalue("pg_databases")
    name = databases.take()
    try:
        yield databases.url(name)
    finally:
        databases.release(name)
