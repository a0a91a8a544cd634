"""Trace context for HTTP front ends: each request continues its caller's trace (the W3C
``traceparent`` header) in a SERVER span, so an operation enqueued by the request joins it.

A plain ASGI middleware (no web framework imported here)::

    api.add_middleware(TraceContextMiddleware)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from longops.telemetry import providers

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_PROPAGATOR = TraceContextTextMapPropagator()


class TraceContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        current = providers.get()
        if scope["type"] != "http" or not (current.enabled or current.idle):
            # Telemetry off (LONGOPS_TELEMETRY=off): no span to continue, none to start.
            # Idle (no provider set yet), the caller's context is still continued (by a
            # no-op span), so that an operation enqueued here carries the caller's trace.
            await self.app(scope, receive, send)
            return
        carrier = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope.get("headers", ())
            if key in (b"traceparent", b"tracestate")
        }
        method = scope.get("method", "HTTP")
        with current.tracer.start_as_current_span(
            method,
            context=_PROPAGATOR.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope.get("path", "")},
        ) as span:

            async def sending(message: Message) -> None:
                if message["type"] == "http.response.start" and span.is_recording():
                    span.set_attribute("http.response.status_code", message["status"])
                await send(message)

            try:
                await self.app(scope, receive, sending)
            finally:
                route = getattr(scope.get("route"), "path", None)
                if route and span.is_recording():
                    span.update_name(f"{method} {route}")  # low cardinality: the template
                    span.set_attribute("http.route", route)
