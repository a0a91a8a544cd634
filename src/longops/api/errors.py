"""Request-level errors: one envelope for every refusal, with a stable ``code``.

The body is Azure's ``ErrorResponse`` with AIP-193's fields added
(``{"error": {code, message, target, details[ErrorInfo], innererror, status, httpCode}}``)
and the ``code`` is echoed in the ``Error-Code`` header (conventions §7.6).

Example::

    raise ApiError(404, "OperationNotFound", "operation 0190... not found")
"""

from __future__ import annotations

import contextlib
import logging
import math
import typing
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Scope

from longops.domain.errors import (
    ConfigurationError,
    Conflict,
    DatabaseBusy,
    InvalidTransition,
    LongopsError,
    NotFound,
    PermissionDenied,
    TooManyRequests,
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
    413: "INVALID_ARGUMENT",
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
    if isinstance(exc, DatabaseBusy):
        return 503, "DatabaseBusy", str(exc), None
    if isinstance(exc, TooManyRequests):
        return 429, "TooManyRequests", str(exc), None
    return 400, "InvalidArgument", str(exc), None


PATTERN_RULES = {
    r"^[\x21-\x7e]{1,128}$": "must be a UUID, or 1 to 128 printable ASCII characters "
    "without spaces",
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$": (
        "must be a UUID"
    ),
    r"^(?:[0-9]{1,18}|[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
    r"[0-9a-fA-F]{12})$": "must be an operation id (a UUID) or an entry number",
    r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$": "must be a name: 1 to 100 letters, digits, '_', "
    "'.', ':' or '-', starting with a letter or digit",
    r"^[^\x00]*$": "must not contain NUL characters",
}
"""The rule, in words, of each pattern the request models use (a regex is no message)."""

TYPE_RULES = {
    "missing": "is required",
    "extra_forbidden": "is not a field of this request",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "datetime_type": "must be an RFC 3339 time with an offset",
    "datetime_parsing": "must be an RFC 3339 time with an offset",
    "datetime_from_date_parsing": "must be an RFC 3339 time with an offset",
    "timezone_aware": "must be an RFC 3339 time with an offset",
    "finite_number": "must be a finite number",
    "none_required": "must be null",
}
"""pydantic's error types that need no context, as core words its rules."""


def _range(request: Request, loc: tuple[Any, ...]) -> tuple[Any, Any] | None:
    """The inclusive bounds of a top-level body field or a query parameter, when the route
    declares both (so a message can say "between 0 and 3600", as core's do)."""
    route = request.scope.get("route")
    if route is None or len(loc) != 2:
        return None
    with contextlib.suppress(Exception):  # a shape not foreseen: the one-sided wording
        if loc[0] == "body" and getattr(route, "body_field", None) is not None:
            model = route.body_field.field_info.annotation
            models = [m for m in (typing.get_args(model) or (model,)) if m is not type(None)]
            prop = models[0].model_json_schema()["properties"][loc[1]]
            for choice in [prop, *prop.get("anyOf", ())]:
                if "minimum" in choice and "maximum" in choice:
                    return choice["minimum"], choice["maximum"]
        if loc[0] == "query":
            for param in route.dependant.query_params:
                if param.alias == loc[1]:
                    found = {
                        k: getattr(m, k) for m in param.field_info.metadata for k in ("ge", "le")
                        if hasattr(m, k)
                    }  # fmt: skip
                    if len(found) == 2:
                        return found["ge"], found["le"]
    return None


def _rule(error: Mapping[str, Any], bounds: tuple[Any, Any] | None = None) -> str:
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    if kind in TYPE_RULES:
        return TYPE_RULES[kind]
    if bounds is not None and kind in ("less_than_equal", "greater_than_equal"):
        return f"must be between {bounds[0]} and {bounds[1]}"
    one_sided = {
        "less_than_equal": ("must be at most", "le"),
        "greater_than_equal": ("must be at least", "ge"),
        "less_than": ("must be less than", "lt"),
        "greater_than": ("must be greater than", "gt"),
    }
    if kind in one_sided:
        words, key = one_sided[kind]
        return f"{words} {ctx.get(key)}"
    if kind in ("string_too_long", "string_too_short", "too_long", "too_short"):
        limit = ctx.get("min_length" if kind.endswith("short") else "max_length")
        unit = "characters" if kind.startswith("string") else "items"
        if limit == 1 and kind.endswith("short"):
            return "must not be empty"
        return f"must have at {'least' if kind.endswith('short') else 'most'} {limit} {unit}"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        return PATTERN_RULES.get(pattern, f"must match the pattern {pattern}")
    if kind in ("literal_error", "enum"):
        return f"must be one of {ctx.get('expected')}"
    # A validator's own sentence (pydantic prefixes it with "Value error, ").
    return str(error.get("msg", "is not valid")).removeprefix("Value error, ")


def _shown(value: Any) -> str:
    """The value in the message, as core shows it, when it is short and plain."""
    if isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) <= 40):
        return f" (got {value!r})"
    return ""


def translate(
    error: Mapping[str, Any], bounds: tuple[Any, Any] | None = None
) -> tuple[str | None, str]:
    """The field (in the request's spelling: ``rerunDelay``, ``status[0]``,
    ``filter.colour``) and message of one of pydantic's errors, worded like core's;
    ``bounds`` are the field's range when it has both ends.

    Example::

        translate({"type": "less_than_equal", "loc": ("body", "rerunDelay"),
                   "ctx": {"le": 3600}, "input": 4000}, (0, 3600))
        # ('rerunDelay', 'rerunDelay: must be between 0 and 3600 (got 4000)')
    """
    target = ""
    where = tuple(error.get("loc", ()))
    for part in where:
        if part in ("body", "query", "path", "header") and not target:
            continue
        if isinstance(part, int):
            target += f"[{part}]"
        else:
            target += f".{part}" if target else str(part)
    ctx = error.get("ctx") or {}
    named = ctx.get("field")
    if isinstance(named, str):  # a rule across fields names the one it is about
        target = named
    if not target and where[:1] == ("body",):
        target = "body"  # a rule across a body's fields (ids or filter) has no field of its own
    rule = _rule(error, bounds)
    kind = str(error.get("type", ""))
    shown = "" if kind in ("missing", "extra_forbidden") else _shown(error.get("input"))
    if kind == "string_pattern_mismatch" and len(str(error.get("input", ""))) > 40:
        shown = ""
    message = f"{target}: {rule}{shown}" if target else f"{rule}{shown}"
    return target or None, message


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


def too_large(scope: Scope, limit: int) -> ASGIApp:
    """The 413 envelope for a request body over the limit (``asgi.BodyLimit``)."""
    return error_response(
        413,
        "PayloadTooLarge",
        f"body: must be at most {limit} bytes",
        "body",
        {"Connection": "close"},
    )


def install(app: FastAPI) -> None:
    """Render every error the routes can meet as the envelope."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.http, exc.code, exc.message, exc.target, exc.headers)

    @app.exception_handler(LongopsError)
    async def _longops(request: Request, exc: LongopsError) -> JSONResponse:
        http, code, message, target = from_longops(exc)
        headers = None
        if isinstance(exc, DatabaseBusy):
            # Nothing was written: the same request may be sent again after this.
            headers = {"Retry-After": str(math.ceil(exc.retry_after))}
        elif isinstance(exc, TooManyRequests):
            headers = {"Retry-After": str(exc.retry_after)}
        return error_response(http, code, message, target, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            return error_response(400, "InvalidArgument", "body: is not valid JSON", "body")
        target, message = translate(first, _range(request, tuple(first.get("loc", ()))))
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
