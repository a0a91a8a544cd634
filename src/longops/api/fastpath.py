"""The common polls, answered without the framework's per-request work: ``GET
/v1/companies/{company}/operations/{id}`` with no ``If-None-Match`` and no ``Prefer``, and
the first page of ``GET /v1/companies/{company}/operations`` (at most ``pageSize`` in the
query), each with a bearer token this process verified lately. They are most of an API's
load (clients poll their operations), and FastAPI's routing, dependency solving and
response validation cost more CPU than reading and presenting the operations.

The answer is the route's own: the same representation (``presenting.present``) and page
plan (``reads.page_plan``), written as the bytes FastAPI writes for the route's response
model (``presenting.operation_json``, without making the model), with the same headers.
Anything else (no token or one not verified lately, a malformed path, other query parameters, a
company the caller has no permission set in, an error of any kind before the answer
starts) goes to the route itself, which decides as always (a GET may be read twice).

Example::

    api.add_middleware(Polls, services=api.state.longops, routes=routes_by_name)
    lean = Polls(api, services=api.state.longops, routes=routes_by_name).lean
    # before the stack: if not await lean(scope, receive, send): await api(scope, ...)
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.datastructures import URLPath
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from longops.api.deps import NAME_PATTERN, Services, call, known_company
from longops.api.models import OPERATION_ID_PATTERN
from longops.api.presenting import found_and_shown, operation_headers, operation_json
from longops.api.reads import NO_FILTER, listed_and_shown, page_plan
from longops.app import ActorView
from longops.telemetry import providers

_PATH = re.compile(r"^/v1/companies/([^/]+)/operations(?:/([^/:]+))?$")
_FIRST_PAGE = re.compile(rb"^(?:pageSize=([0-9]{1,4}))?$")
_NAME = re.compile(NAME_PATTERN)
_ID = re.compile(OPERATION_ID_PATTERN)
_SKIP = (b"if-none-match", b"prefer")
_BODY = (b"content-length", b"transfer-encoding")
DEFAULT_PAGE = 50  # the list route's pageSize default and bound
MAX_PAGE = 1000


class Polls:
    """ASGI middleware: the common poll of one operation, answered here (see the module).

    ``lean`` (``create_api`` wraps the application in it) answers the same polls before
    any middleware: Starlette's error layer, trace context, the body limit and the token
    ending have nothing to do for them when telemetry records nothing (a trace-context
    span is a no-op then), the request carries no body (a GET that declares one goes the
    whole way) and the method is GET (which ends no tokens). With telemetry recording, the
    middleware stack runs and this one answers the poll innermost, inside its span."""

    def __init__(self, app: ASGIApp, *, services: Services, routes: dict[str, Any]) -> None:
        self.app = app
        self.services = services
        self.routes = routes

    def _caller(self, scope: Scope) -> tuple[ActorView, str, str | None, int] | None:
        """The cached caller, the path's company and operation id (None: the list) and the
        page size, when this request is a common poll; None sends it to the route."""
        if scope["type"] != "http" or scope["method"] != "GET" or TRIED in scope:
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
            elif key in _BODY and (key != b"content-length" or value.strip() != b"0"):
                return None  # a body declared: the whole stack (its limit) reads it
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
        if not await self.answer(scope, send):
            await self.app(scope, receive, send)

    async def lean(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer a common poll before the middleware stack (see the class); False: the
        caller sends the request through the whole application."""
        if scope["type"] != "http" or providers.get().enabled:
            return False
        return await self.answer(scope, send)

    async def answer(self, scope: Scope, send: Send) -> bool:
        """Answer the request if it is a common poll; False (nothing sent): the route
        answers it (the request is marked, so no layer tries it again)."""
        caller = self._caller(scope)
        if caller is None:
            return False
        view, company, operation_id, page_size = caller
        try:
            if operation_id is None:
                raw, content = await self._first_page(scope, view, company, page_size)
                route = "list_operations"
            else:
                raw, content = await self._operation(scope, view, company, operation_id)
                route = "get_operation"
        except Exception:
            scope[TRIED] = True
            return False  # the route answers (404, 403, ...)
        scope["route"] = self.routes[route]  # what tracing names the request by
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        await send({"type": "http.response.body", "body": content})
        return True

    async def _operation(
        self, scope: Scope, view: ActorView, company: str, operation_id: str
    ) -> tuple[list[tuple[bytes, bytes]], bytes]:
        op, body = await call(found_and_shown, view, company, operation_id)
        content = operation_json(body)
        location = _base(scope) + f"/v1/companies/{company}/operations/{op.id}"
        headers = operation_headers(location, op, body, view.app.clock.now())
        raw = [
            (b"content-length", str(len(content)).encode()),
            (b"content-type", b"application/json"),
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
        ]
        return raw, content

    async def _first_page(
        self, scope: Scope, view: ActorView, company: str, size: int
    ) -> tuple[list[tuple[bytes, bytes]], bytes]:
        """The list route's answer with no filter and no page token (``reads``' own plan
        and presenting, the JSON written here as ``operation_json`` writes one)."""
        plan = page_plan(company, NO_FILTER, size, None)
        ops, shown = await call(listed_and_shown, view, plan.query, size)
        token = plan.next_token(ops)
        link = None
        if token is not None:
            link = str(Request(scope).url.include_query_params(pageToken=token))
        content = _page_json(shown, token, link)
        raw = [
            (b"content-length", str(len(content)).encode()),
            (b"content-type", b"application/json"),
            (b"cache-control", b"no-store"),
        ]
        return raw, content


TRIED = "longops.fastpath_tried"
"""Set in the scope of a request the fast path tried and left to the route."""


def _page_json(shown: list[dict[str, Any]], token: str | None, link: str | None) -> bytes:
    """The bytes FastAPI sends for the list route's ``OperationList`` of these."""
    parts = [operation_json(body) for body in shown]
    tail = orjson.dumps({"nextPageToken": token, "nextLink": link})
    return b'{"operations":[' + b",".join(parts) + b"]," + tail[1:]


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
