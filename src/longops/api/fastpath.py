"""The common poll, answered without the framework's per-request work: ``GET
/v1/companies/{company}/operations/{id}`` with a bearer token this process verified lately,
no ``If-None-Match`` and no ``Prefer``. It is most of an API's load (clients poll their
operations), and FastAPI's routing, dependency solving and response validation cost more
CPU than reading and presenting the operation.

The answer is the route's own (``reads.get_operation``): the same ``OperationModel``, made
by the same functions and serialized as FastAPI serializes a route's response model, with
the same headers. Anything else (no token or one not verified lately, a malformed path, a
company the caller has no permission set in, an error of any kind before the answer
starts) goes to the route itself, which decides as always (a GET may be read twice).

Example::

    api.add_middleware(Polls, services=api.state.longops, route=route_named(api, "get_operation"))
"""

from __future__ import annotations

import re
from typing import Any

from starlette.datastructures import URLPath
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from longops.api.deps import NAME_PATTERN, Services, call, known_company
from longops.api.models import OPERATION_ID_PATTERN, OperationModel
from longops.api.presenting import found_and_presented, operation_headers
from longops.app import ActorView

_PATH = re.compile(r"^/v1/companies/([^/]+)/operations/([^/:]+)$")
_NAME = re.compile(NAME_PATTERN)
_ID = re.compile(OPERATION_ID_PATTERN)
_SKIP = (b"if-none-match", b"prefer")


class Polls:
    """ASGI middleware: the common poll of one operation, answered here (see the module)."""

    def __init__(self, app: ASGIApp, *, services: Services, route: Any) -> None:
        self.app = app
        self.services = services
        self.route = route

    def _caller(self, scope: Scope) -> tuple[ActorView, str, str] | None:
        """The cached caller and the path's company and operation id, when this request is
        the common poll; None sends it to the route."""
        if scope["type"] != "http" or scope["method"] != "GET" or scope.get("query_string"):
            return None
        found = _PATH.match(scope["path"])
        if found is None:
            return None
        company, operation_id = found.group(1), found.group(2)
        if _NAME.match(company) is None or _ID.match(operation_id) is None:
            return None
        token = None
        for key, value in scope["headers"]:
            if key == b"authorization" and token is None:
                token = value
            elif key in _SKIP:
                return None
        if token is None:
            return None
        scheme, _, text = token.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not text:
            return None
        view = self.services.tokens.get(text.strip())
        if view is None or not known_company(view, company):
            return None
        return view, company, operation_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        caller = self._caller(scope)
        if caller is None:
            await self.app(scope, receive, send)
            return
        view, company, operation_id = caller
        try:
            op, body = await call(found_and_presented, view, company, operation_id)
        except Exception:
            await self.app(scope, receive, send)  # the route answers (404, 403, ...)
            return
        content = _json(body)
        path = URLPath(f"/v1/companies/{company}/operations/{op.id}")
        location = str(path.make_absolute_url(base_url=Request(scope).base_url))
        headers = operation_headers(location, op, body, view.app.clock.now())
        raw = [
            (b"content-length", str(len(content)).encode()),
            (b"content-type", b"application/json"),
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
        ]
        scope["route"] = self.route  # what tracing names the request by
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        await send({"type": "http.response.body", "body": content})


def _json(body: OperationModel) -> bytes:
    """The bytes FastAPI sends for the route's response model (``exclude_unset``)."""
    return body.__pydantic_serializer__.to_json(body, exclude_unset=True, by_alias=True)
