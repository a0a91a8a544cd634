"""The common polls, answered without the framework's per-request work: ``GET
/v1/companies/{company}/operations/{id}`` with no ``If-None-Match`` and no ``Prefer``, and
the first page of ``GET /v1/companies/{company}/operations`` (at most ``pageSize`` in the
query), each with a bearer token this process verified lately. They are most of an API's
load (clients poll their operations), and FastAPI's routing, dependency solving and
response validation cost more CPU than reading and presenting the operations.

The answer is the route's own: the same model (``OperationModel``, or ``OperationList`` made
by calling the list's route function itself with its defaults), serialized as FastAPI
serializes a route's response model (``exclude_unset``), with the same headers. Anything
else (no token or one not verified lately, a malformed path, other query parameters, a
company the caller has no permission set in, an error of any kind before the answer
starts) goes to the route itself, which decides as always (a GET may be read twice).

Example::

    api.add_middleware(Polls, services=api.state.longops, routes=routes_by_name)
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from starlette.datastructures import URLPath
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from longops.api.deps import NAME_PATTERN, Services, call, known_company
from longops.api.models import OPERATION_ID_PATTERN
from longops.api.presenting import found_and_presented, operation_headers
from longops.api.reads import list_operations
from longops.app import ActorView

_PATH = re.compile(r"^/v1/companies/([^/]+)/operations(?:/([^/:]+))?$")
_FIRST_PAGE = re.compile(rb"^(?:pageSize=([0-9]{1,4}))?$")
_NAME = re.compile(NAME_PATTERN)
_ID = re.compile(OPERATION_ID_PATTERN)
_SKIP = (b"if-none-match", b"prefer")
DEFAULT_PAGE = 50  # the list route's pageSize default and bound
MAX_PAGE = 1000


class Polls:
    """ASGI middleware: the common poll of one operation, answered here (see the module)."""

    def __init__(self, app: ASGIApp, *, services: Services, routes: dict[str, Any]) -> None:
        self.app = app
        self.services = services
        self.routes = routes

    def _caller(self, scope: Scope) -> tuple[ActorView, str, str | None, int] | None:
        """The cached caller, the path's company and operation id (None: the list) and the
        page size, when this request is a common poll; None sends it to the route."""
        if scope["type"] != "http" or scope["method"] != "GET":
            return None
        found = _PATH.match(scope["path"])
        if found is None:
            return None
        company, operation_id = found.group(1), found.group(2)
        if _NAME.match(company) is None:
            return None
        page_size = DEFAULT_PAGE
        query = scope.get("query_string", b"")
        if operation_id is not None:
            if query or _ID.match(operation_id) is None:
                return None
        else:
            page = _FIRST_PAGE.match(query)
            if page is None:
                return None
            page_size = DEFAULT_PAGE if page.group(1) is None else int(page.group(1))
            if not 1 <= page_size <= MAX_PAGE:
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
        return view, company, operation_id, page_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        caller = self._caller(scope)
        if caller is None:
            await self.app(scope, receive, send)
            return
        view, company, operation_id, page_size = caller
        if operation_id is None:
            await self._first_page(scope, receive, send, view, company, page_size)
            return
        try:
            op, body = await call(found_and_presented, view, company, operation_id)
        except Exception:
            await self.app(scope, receive, send)  # the route answers (404, 403, ...)
            return
        content = _json(body)
        location = _base(scope) + f"/v1/companies/{company}/operations/{op.id}"
        headers = operation_headers(location, op, body, view.app.clock.now())
        raw = [
            (b"content-length", str(len(content)).encode()),
            (b"content-type", b"application/json"),
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
        ]
        await self._send(scope, send, "get_operation", raw, content)

    async def _first_page(
        self, scope: Scope, receive: Receive, send: Send, view: ActorView, company: str, size: int
    ) -> None:
        answer = Response()
        try:
            page = await list_operations(
                company=company, request=Request(scope), response=answer, view=view, page_size=size
            )
        except Exception:
            await self.app(scope, receive, send)  # the route answers
            return
        content = _json(page)
        raw = [
            (b"content-length", str(len(content)).encode()),
            (b"content-type", b"application/json"),
            *((k, v) for k, v in answer.headers.raw if k != b"content-length"),
        ]
        await self._send(scope, send, "list_operations", raw, content)

    async def _send(
        self, scope: Scope, send: Send, route: str, raw: list[tuple[bytes, bytes]], content: bytes
    ) -> None:
        scope["route"] = self.routes[route]  # what tracing names the request by
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        await send({"type": "http.response.body", "body": content})


_BASES: dict[tuple[Any, ...], str] = {}
_BASES_LIMIT = 256


def _base(scope: Scope) -> str:
    """The scheme, host and root path an absolute URL of this request starts with, as
    Starlette's ``url_for`` makes it (from the scheme, the server, the first ``Host`` and
    the root path), computed once per such combination."""
    host = next((v for k, v in scope["headers"] if k == b"host"), None)
    root = scope.get("app_root_path", scope.get("root_path", ""))
    key = (scope.get("scheme"), scope.get("server"), host, root)
    found = _BASES.get(key)
    if found is None:
        found = str(URLPath("").make_absolute_url(base_url=Request(scope).base_url))
        if len(_BASES) >= _BASES_LIMIT:
            _BASES.clear()
        _BASES[key] = found
    return found


def _json(body: BaseModel) -> bytes:
    """The bytes FastAPI sends for the route's response model (``exclude_unset``)."""
    return body.__pydantic_serializer__.to_json(body, exclude_unset=True, by_alias=True)
