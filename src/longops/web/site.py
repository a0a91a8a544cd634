"""The pages as one ASGI application: the routes of ``web/routes/``, the static files, the
error pages, the security headers and the form size limit around them.

Every route is a plain function run in a worker thread (core calls block); every action
goes through core as the signed-in user (front end ``web``), so the permission table and
the company filter apply exactly as for the CLI and the REST API. Forms post and redirect
back (303), so every page works without JavaScript; htmx and its SSE extension only add
live updates.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from longops.app import Longops
from longops.asgi import BodyLimit
from longops.core.streams import EventHub
from longops.web.errors import install_error_pages
from longops.web.guard import WebOptions, secure_request, too_large
from longops.web.pages import HERE, Pages
from longops.web.routes import ROUTERS
from longops.web.session import CookieSigner

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def create_pages(
    app: Longops,
    hub: EventHub,
    *,
    secret: bytes | None = None,
    options: WebOptions | None = None,
) -> FastAPI:
    """The pages of ``app`` as an ASGI application (``longops serve`` mounts it at ``/``).

    ``secret`` signs the session cookies (at least 32 bytes); without one a random key is
    made, so sign-ins last as long as the process.

    Example::

        hub = EventHub(app.store)
        pages = create_pages(app, hub, secret=os.environb[b"LONGOPS_SECRET_KEY"])
    """
    pages = Pages(app, hub, CookieSigner(secret or secrets.token_bytes(32)), options)
    web = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    web.state.pages = pages
    web.add_middleware(BodyLimit, limit=lambda _scope: pages.options.max_body, reject=too_large)
    web.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    install_error_pages(web)
    web.middleware("http")(security_headers)
    for router in ROUTERS:
        web.include_router(router)
    return web


async def security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Every answer's security headers; pages (not static files) are never cached."""
    pages: Pages = request.app.state.pages
    secure_request.set(pages.options.is_secure(request.scope))
    response = await call_next(request)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if not request.url.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response
