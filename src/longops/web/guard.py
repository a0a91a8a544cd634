"""What guards the pages besides the CSRF token: the Origin check, the ``Secure`` cookie
behind TLS, the client address for the sign-in throttle, and the form size limit.

A state-changing request (any method but GET, HEAD, OPTIONS) whose ``Origin`` (or, without
one, ``Referer``) is not the pages' own origin is refused with 403, even with a valid CSRF
token: a token leaked to another site is then worth nothing. The own origin is
``LONGOPS_BASE_URL`` when set, else the scheme and ``Host`` the request was made to. A
request with neither header (some privacy tools strip both) still needs the token.

Example::

    options = WebOptions(base_url="https://ops.example.com", trusted_proxies={"10.0.0.5"})
    pages = create_pages(app, hub, options=options)
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Scope

from longops.asgi import client_of, header

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

secure_request: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "longops_secure_request", default=False
)
"""Whether the request being answered came over HTTPS (the cookie is then Secure)."""


@dataclass(frozen=True)
class WebOptions:
    """The pages' guard settings (``longops serve`` reads them from ``ServerSettings``)."""

    base_url: str | None = None
    secure_cookies: bool | None = None
    """None: Secure exactly when the request came over HTTPS."""
    trusted_proxies: frozenset[str] = field(default_factory=frozenset)
    max_body: int = 256_000

    def own_origin(self, scope: Scope) -> str:
        if self.base_url:
            return origin_of(self.base_url) or ""
        scheme, _ = client_of(scope, self.trusted_proxies)
        host = header(scope, b"host") or ""
        return f"{scheme}://{host}".lower()

    def is_secure(self, scope: Scope) -> bool:
        if self.secure_cookies is not None:
            return self.secure_cookies
        scheme, _ = client_of(scope, self.trusted_proxies)
        return scheme == "https"

    def address(self, request: Request) -> str | None:
        return client_of(request.scope, self.trusted_proxies)[1]


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL, lower-cased; None for anything else ("null")."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def foreign_origin(options: WebOptions, scope: Scope) -> str | None:
    """The foreign origin a state-changing request came from, or None when it is ours
    (or says nothing)."""
    if scope.get("method", "GET") in SAFE_METHODS:
        return None
    sent = header(scope, b"origin")
    if sent is None:
        referer = header(scope, b"referer")
        if referer is None:
            return None
        sent = referer
    own = options.own_origin(scope)
    found = origin_of(sent)
    if found is not None and found == own:
        return None
    return sent[:200] or "null"


def too_large(scope: Scope, limit: int) -> ASGIApp:
    """The 413 page for a form post over the limit."""
    return HTMLResponse(
        "<!doctype html><title>Too large</title><h1>Too large</h1>"
        f"<p>The form is larger than {limit:,} bytes; nothing was saved.</p>",
        status_code=413,
        headers={"Cache-Control": "no-store", "Connection": "close"},
    )
