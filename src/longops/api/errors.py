"""Request-level errors: one envelope for every refusal, with a stable ``code``.

The body is Azure's ``ErrorResponse`` with AIP-193's fields added
(``{"error": {code, message, target, details[ErrorInfo], innererror, status, httpCode}}``)
and the ``code`` is echoed in the ``Error-Code`` header (conventions §7.6).

Example::

    raise ApiError(404, "OperationNotFound", "operation 0190... not found")
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from longops.domain.errors import (
    ConfigurationError,
    Conflict,
    InvalidTransition,
    LongopsError,
    NotFound,
    PermissionDenied,
    ValidationError,
)

log = logging.getLogger("longops.api")

RPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    406: "INVALID_ARGUMENT",
    409: "ABORTED",
    412: "FAILED_PRECONDITION",
    415: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


CODE_STATUS = {"FailedPrecondition": "FAILED_PRECONDITION", "AlreadyExists": "ALREADY_EXISTS"}
"""Codes whose google.rpc status is not the HTTP status's usual one."""


class ApiError(Exception):
    """An HTTP refusal with a stable code (raised by routes; rendered by the handlers)."""

    def __init__(
        self,
        http: int,
        code: str,
        message: str,
        *,
        target: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.http = http
        self.code = code
        self.message = message
        self.target = target
        self.headers = headers or {}
        super().__init__(message)


def envelope(http: int, code: str, message: str, target: str | None = None) -> dict[str, Any]:
    status = CODE_STATUS.get(code) or RPC_STATUS.get(http, "UNKNOWN")
    return {
        "error": {
            "code": code,
            "message": message,
            "target": target,
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": _reason(code),
                    "domain": "longops.dev",
                    "metadata": {} if target is None else {"field": target},
                }
            ],
            "innererror": None,
            "status": status,
            "httpCode": http,
        }
    }


def _reason(code: str) -> str:
    out = []
    for i, ch in enumerate(code):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.upper())
    return "".join(out)


def error_response(
    http: int,
    code: str,
    message: str,
    target: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        envelope(http, code, message, target),
        status_code=http,
        headers={"Error-Code": code, "Cache-Control": "no-store", **(headers or {})},
    )


NOT_FOUND_CODES = {
    "operation": "OperationNotFound",
    "operation with entry number": "OperationNotFound",
    "task": "TaskNotFound",
    "company": "CompanyNotFound",
    "category": "CategoryNotFound",
    "user": "UserNotFound",
    "token": "TokenNotFound",
    "session": "SessionNotFound",
}


WIRE_NAMES = {
    "earliest_start_at": "scheduleTime",
    "expires_at": "expireTime",
    "max_attempts": "maxAttempts",
    "rerun_delay": "rerunDelay",
    "dedup_key": "dedupKey",
    "on_hold": "onHold",
    "max_concurrent": "maxConcurrent",
    "display_name": "displayName",
    "expires": "expiresInDays",
    "permission_set": "grants",
}
"""Core's name of an input → the request field that carried it (bad input names the field
the client sent)."""


def from_longops(exc: LongopsError) -> tuple[int, str, str, str | None]:
    """The HTTP status, code, message and target of a longops error."""
    if isinstance(exc, ValidationError):
        if exc.field == "company" and "existing company" in exc.rule:
            return 404, "CompanyNotFound", f"company {exc.value} not found", None
        wire = WIRE_NAMES.get(exc.field, exc.field)
        message = str(exc)
        if wire != exc.field and message.startswith(f"{exc.field}:"):
            message = wire + message[len(exc.field) :]
        return 400, "InvalidArgument", message, wire
    if isinstance(exc, Conflict):
        return 400, exc.code, str(exc), None
    if isinstance(exc, InvalidTransition):
        return 400, "FailedPrecondition", str(exc), None
    if isinstance(exc, NotFound):
        return 404, NOT_FOUND_CODES.get(exc.kind, "NotFound"), str(exc), None
    if isinstance(exc, PermissionDenied):
        return 403, "PermissionDenied", str(exc), None
    if isinstance(exc, ConfigurationError):
        return 503, "Unavailable", str(exc), None
    return 400, "InvalidArgument", str(exc), None


def flat_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, the included routers' too (FastAPI keeps those behind a wrapper).

    Example::

        paths = {r.path for r in flat_routes(api.routes)}
    """
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from flat_routes(inner.routes)
        else:
            yield route


def allowed_methods(request: Request) -> list[str]:
    """The methods of every route whose path matches the request's."""
    methods: set[str] = set()
    for route in flat_routes(request.app.routes):
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


def install(app: FastAPI) -> None:
    """Render every error the routes can meet as the envelope."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.http, exc.code, exc.message, exc.target, exc.headers)

    @app.exception_handler(LongopsError)
    async def _longops(request: Request, exc: LongopsError) -> JSONResponse:
        http, code, message, target = from_longops(exc)
        return error_response(http, code, message, target)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            return error_response(400, "InvalidArgument", "body: is not valid JSON", "body")
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
        # A rule across a body's fields (ids or filter) has no field of its own: the body.
        target = ".".join(loc) or ("body" if first.get("loc", ())[:1] == ("body",) else None)
        named = (first.get("ctx") or {}).get("field")
        if isinstance(named, str):  # a rule across fields names the one it is about
            target = named
        # pydantic prefixes a validator's own sentence with "Value error, ".
        text = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        message = f"{target}: {text}" if target else text
        return error_response(400, "InvalidArgument", message, target)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NotFound", 405: "MethodNotAllowed", 406: "NotAcceptable"}.get(
            exc.status_code, "InvalidArgument"
        )
        if exc.status_code == 400 and "body" in str(exc.detail):
            # FastAPI's own refusal of a body it could not read (not UTF-8, not JSON).
            return error_response(400, "InvalidArgument", "body: is not valid JSON", "body")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; RFC 9110 wants
            # every method the path takes (GET and DELETE of an operation are two routes).
            headers["Allow"] = ", ".join(allowed_methods(request))
        return error_response(exc.status_code, code, str(exc.detail), None, headers)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed", extra={"action": "api_error", "path": request.url.path})
        return error_response(500, "Internal", "the server failed to handle the request")
