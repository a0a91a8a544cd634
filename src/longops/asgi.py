"""ASGI pieces both HTTP front ends (the REST API and the pages) share: a request body
limit enforced while the body streams in, and who the client is behind trusted proxies.

The limit is checked against ``Content-Length`` before anything is read and again on
every chunk, so a 100 MB body (declared or chunked) is refused with 413 after at most
``limit`` bytes; the server never buffers it. The application sees a disconnect and stops.

Example::

    app = BodyLimit(app, limit=lambda scope: 1_000_000, reject=too_large_response)
    scheme, address = client_of(scope, trusted=frozenset({"10.0.0.5"}))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

Reject = Callable[[Scope, int], ASGIApp]
"""Builds the 413 response (an ASGI app) for a request and its limit."""


class BodyTooLarge(Exception):
    """Raised to the application instead of the rest of a body over the limit."""


class BodyLimit:
    """Refuse (``reject``) an HTTP request whose body is larger than ``limit(scope)``."""

    def __init__(self, app: ASGIApp, *, limit: Callable[[Scope], int], reject: Reject) -> None:
        self.app = app
        self.limit = limit
        self.reject = reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self.reject(scope, limit)(scope, receive, send)
            return
        received = 0
        refused = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        await self.reject(scope, limit)(scope, receive, send)
                    raise BodyTooLarge(f"the body is larger than {limit} bytes")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 went out; whatever the application says now is moot
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            pass
        except Exception:
            if not refused:
                raise
            # The application failed on the cut-off body (a framework turning the
            # exception into its own); the 413 has been sent already.


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header, or None."""
    for key, value in scope.get("headers", ()):
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


def client_of(scope: Scope, trusted: Iterable[str]) -> tuple[str, str | None]:
    """The request's scheme and client address. ``X-Forwarded-Proto`` and
    ``X-Forwarded-For`` count only when the peer is one of the ``trusted`` proxies (anyone
    else could say anything); the address is then the nearest one that is not a proxy.

    Example::

        client_of(scope, {"127.0.0.1"})     # ("https", "203.0.113.9") behind a local proxy
    """
    proxies = set(trusted)
    scheme: str = scope.get("scheme", "http")
    peer = scope.get("client")
    address: str | None = peer[0] if peer else None
    if address is None or address not in proxies:
        return scheme, address
    proto = header(scope, b"x-forwarded-proto")
    if proto:
        first = proto.split(",")[0].strip().lower()
        if first in ("http", "https"):
            scheme = first
    forwarded = header(scope, b"x-forwarded-for")
    if forwarded:
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        for hop in reversed(hops):
            address = hop
            if hop not in proxies:
                break
    return scheme, address


def trusted_set(text: str) -> frozenset[str]:
    """The addresses of ``LONGOPS_TRUSTED_PROXIES`` (comma-separated)."""
    return frozenset(part.strip() for part in text.split(",") if part.strip())
