"""The REST API: long-running operations over HTTP (AIP-151 and Azure conventions), with
live SSE streams. ``create_api(app)`` builds the FastAPI application; ``longops serve``
runs it.

Example::

    from longops.api import create_api
    api = create_api(app)            # an ASGI application: uvicorn.run(api)
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from longops.api import errors
from longops.api.deps import (
    EndsCachedTokens,
    Services,
    TokenCache,
    WaitContexts,
    keep_wait_contexts,
)
from longops.api.fastpath import Polls
from longops.api.maintenance import router as maintenance_router
from longops.api.models import TEXT_PATTERN
from longops.api.notify import router as notify_router
from longops.api.operations import router as operations_router
from longops.api.resources import router as resources_router
from longops.app import Longops
from longops.asgi import BodyLimit
from longops.core.streams import EventHub
from longops.domain.errors import ValidationError
from longops.settings import ServerSettings, Settings
from longops.telemetry.asgi import TraceContextMiddleware

__all__ = ["create_api"]


def _without_native_telemetry() -> dict[str, Any]:
    """FastAPI 0.165 and later trace requests themselves once a tracer provider is set;
    with ours (``TraceContextMiddleware``, which every supported FastAPI gets) each request
    would be two SERVER spans, in two traces when the caller sent no ``traceparent``."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    off = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    return {"telemetry": off}


DESCRIPTION = """Durable, observable long-running operations.

Every operation resource can be driven by a Google (AIP-151) or an Azure long-running
operation client: enqueue answers **202** with `Operation-Location`, `Operation-Id` and
`Retry-After`; `GET` the operation until `done` (or `status` is Succeeded, Failed or
Canceled). Authenticate with `Authorization: Bearer <API token>` (`longops users token
create`). Another company's resources are not found (404).
"""


def create_api(
    app: Longops, *, hub: EventHub | None = None, max_body: int | None = None
) -> FastAPI:
    """The REST API of ``app`` (an ASGI application). A request body larger than
    ``max_body`` bytes (default ``LONGOPS_MAX_BODY_API``) is refused with 413 while it is
    read."""
    events = hub or EventHub(app.store, gap_timeout=_gap_timeout())
    limit = ServerSettings().max_body_api if max_body is None else max_body
    if limit < 1:
        raise ValidationError("max_body_api", "must be at least 1 byte", limit)

    @contextlib.asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        await events.start()
        try:
            yield
        finally:
            await events.stop()

    api = _Api(
        title="longops",
        version="1",
        description=DESCRIPTION,
        openapi_url="/v1/openapi.json",
        docs_url=None,  # served below from vendored files: FastAPI's default loads a CDN
        redoc_url=None,
        lifespan=lifespan,
        **_without_native_telemetry(),
    )
    settings = ServerSettings()
    tokens = TokenCache(settings.api_token_cache_seconds)
    keep_wait_contexts(app, WaitContexts(settings.api_wait_context_seconds, tokens))
    api.state.longops = Services(app, events, tokens)
    api.state.max_body = limit
    api.include_router(operations_router)
    api.include_router(resources_router)
    api.include_router(notify_router)
    api.include_router(maintenance_router)
    # Innermost (added first): the common poll answered without routing (api/fastpath.py).
    routes = {getattr(r, "name", ""): r for r in errors.flat_routes(api.routes)}
    api.add_middleware(Polls, services=api.state.longops, routes=routes)
    # The same polls before the middleware stack, when it has nothing to do for them.
    api.lean = Polls(api, services=api.state.longops, routes=routes).lean
    api.add_middleware(EndsCachedTokens, cache=tokens)
    api.add_middleware(BodyLimit, limit=lambda scope: limit, reject=errors.too_large)
    api.add_middleware(TraceContextMiddleware)  # continue the caller's trace (traceparent)
    errors.install(api)
    _docs(api)
    original = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = original()
            _drop_422(schema)
            _parameters_are_never_null(schema)
            _text_is_storable(schema)
            _body_limit_documented(schema, limit)
            api.openapi_schema = schema
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
    return api


class _Api(FastAPI):
    """FastAPI, except that the common polls are answered before its middleware stack
    when it has nothing to do for them (``fastpath.Polls.lean``)."""

    lean: Callable[[Scope, Receive, Send], Awaitable[bool]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lean = self.lean
        if lean is not None and not self.root_path:
            scope["app"] = self
            if await lean(scope, receive, send):
                return
        await super().__call__(scope, receive, send)


STATIC = Path(__file__).parent / "static"
"""Swagger UI, vendored (``static/VENDORED.md``): the docs work offline."""
DOCS_STATIC = "/docs/static"
"""Under ``/docs``, which ``longops serve`` routes to the API (the pages own ``/static``)."""


def _docs(api: FastAPI) -> None:
    """``/docs``: Swagger UI from the vendored files, never a CDN."""
    api.mount(DOCS_STATIC, StaticFiles(directory=STATIC), name="docs_static")

    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}/v1/openapi.json",
            title="longops - API",
            swagger_js_url=f"{root}{DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_STATIC}/favicon-32x32.png",
            oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
            # Swagger UI would send the document to validator.swagger.io for a badge.
            swagger_ui_parameters={"validatorUrl": None},
        )

    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    api.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
    api.add_api_route(
        "/docs/oauth2-redirect", oauth2_redirect, methods=["GET"], include_in_schema=False
    )


def _gap_timeout() -> float:
    value = Settings().stream_gap_timeout
    if not 0 < value <= 3600:
        raise ValidationError("stream_gap_timeout", "must be between 0 and 3600 seconds", value)
    return value


def _drop_422(schema: dict[str, Any]) -> None:
    """Bad input is 400 with the error envelope here, never FastAPI's 422."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            if isinstance(operation, dict):
                operation.get("responses", {}).pop("422", None)
    components = schema.get("components", {}).get("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)


STORABLE = "StorableJson"
STORABLE_REF = f"#/components/schemas/{STORABLE}"


def _text_is_storable(schema: dict[str, Any]) -> None:
    """Say what the server refuses: text with a NUL character (PostgreSQL cannot store
    it; ``models.unstorable``). Every free string of a request body and of a query
    parameter gets the pattern, so a client reads the rule from the document."""

    components = schema.setdefault("components", {}).setdefault("schemas", {})
    # Free JSON (a task's arguments) may nest anything storable: said once, recursively.
    components[STORABLE] = {
        "description": "Any JSON value whose text (keys too) holds no NUL character.",
        "anyOf": [
            {"type": "string", "pattern": TEXT_PATTERN},
            {"type": ["number", "boolean", "null"]},
            {"type": "array", "items": {"$ref": STORABLE_REF}},
            {
                "type": "object",
                "propertyNames": {"pattern": TEXT_PATTERN},
                "additionalProperties": {"$ref": STORABLE_REF},
            },
        ],
    }
    visited: set[str] = {STORABLE}

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            if name not in visited:  # request bodies' components only, each once
                visited.add(name)
                walk(components.get(name))
        if node.get("type") == "string" and not ({"pattern", "enum", "const"} & node.keys()):
            node["pattern"] = TEXT_PATTERN
        names = node.get("propertyNames")
        if isinstance(names, dict) and "pattern" not in names:
            names["pattern"] = TEXT_PATTERN
        if node.get("type") == "object" and node.get("additionalProperties") is True:
            node["additionalProperties"] = {"$ref": STORABLE_REF}
        if node.get("type") == "array" and node.get("items") == {}:
            node["items"] = {"$ref": STORABLE_REF}
        for key, value in node.items():
            if key not in ("example", "examples", "default", "enum", "const"):
                walk(value)

    for path in schema.get("paths", {}).values():
        for operation in path.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query":
                    walk(parameter.get("schema"))
            walk(operation.get("requestBody"))


def _body_limit_documented(schema: dict[str, Any], limit: int) -> None:
    """Every route that takes a body answers 413 for one over the limit (``asgi.BodyLimit``)."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation.setdefault("responses", {})["413"] = {
                    "description": f"The body is larger than {limit} bytes (read no further)",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/ErrorResponse"}
                        }
                    },
                }


def _parameters_are_never_null(schema: dict[str, Any]) -> None:
    """An optional parameter is one left out, never ``null`` (which a header or query
    string could only spell as the text "null")."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                inner = parameter.get("schema", {})
                choices = inner.get("anyOf")
                if not choices:
                    continue
                kept = [c for c in choices if c.get("type") != "null"]
                if len(kept) < len(choices) and inner.get("default", 0) is None:
                    inner.pop("default")
                if len(kept) == 1 and len(kept) < len(choices):
                    inner.pop("anyOf")
                    inner.update(kept[0])
                elif len(kept) < len(choices):
                    inner["anyOf"] = kept
