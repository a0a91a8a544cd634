"""Errors become pages: PermissionDenied 403, NotFound (or another company) 404, bad input
400, a refused transition 409, too many requests 429; nobody signed in sends the browser
to the sign-in page (a stream gets a bare 401: the page reloads itself).

Example::

    install_error_pages(web)      # web.state.pages must be set
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import unquote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from longops.domain.errors import (
    Conflict,
    InvalidTransition,
    LongopsError,
    NotFound,
    PermissionDenied,
    TooManyRequests,
)
from longops.web.context import Context, PageError, SignIn
from longops.web.pages import Pages

_TITLES = {
    400: "That did not work",
    403: "Not allowed",
    404: "Not found",
    409: "Not possible now",
    429: "Too many requests",
}


async def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """The error page, with the header of the signed-in user when one was found."""
    pages: Pages = request.app.state.pages
    ctx: Context | None = getattr(request.state, "ctx", None)
    if ctx is None and request.method == "GET":
        # No route took the request (an unknown path): the page still has the header of
        # whoever is signed in, in the path's company or their first one.
        ctx = await asyncio.to_thread(_someone, pages, request)
    if ctx is not None and not ctx.header_read:
        # A form's route skips the header's reads; its error page shows the header.
        with contextlib.suppress(LongopsError):
            await asyncio.to_thread(pages.fill_header, ctx)
    return pages.render(
        "error.html", ctx, status, title=_TITLES.get(status, "Error"), message=message
    )


def _someone(pages: Pages, request: Request) -> Context | None:
    """The signed-in user's context for an error page no route made, or None."""
    parts = unquote(request.url.path).split("/")
    try:
        session = pages.session(request)
        view = pages.view_of(session, request)
        companies = [c.name for c in view.companies.list_companies()]
        allowed = [c for c in companies if view.actor.is_super or c in view.actor.companies]
        wanted = parts[2] if len(parts) > 2 and parts[1] == "c" else None
        company = wanted if wanted in allowed else (allowed[0] if allowed else None)
        if company is None:
            return None
        return pages.context(request, company)
    except (SignIn, PageError, LongopsError):
        return None


async def _sign_in(request: Request, exc: SignIn) -> Response:
    if request.url.path.endswith("/stream"):
        return Response(status_code=401)
    return RedirectResponse(exc.location, status_code=303)


async def _page(request: Request, exc: PageError) -> Response:
    return await error_page(request, exc.status, exc.message)


async def _longops(request: Request, exc: LongopsError) -> Response:
    if isinstance(exc, TooManyRequests):
        busy = await error_page(request, 429, str(exc))
        busy.headers["Retry-After"] = str(exc.retry_after)
        return busy
    if isinstance(exc, PermissionDenied):
        return await error_page(request, 403, str(exc))
    if isinstance(exc, NotFound):
        return await error_page(request, 404, str(exc))
    if isinstance(exc, (InvalidTransition, Conflict)):
        return await error_page(request, 409, str(exc))
    return await error_page(request, 400, str(exc))


async def _invalid(request: Request, exc: RequestValidationError) -> Response:
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "input"
    return await error_page(request, 400, f"{where}: {first.get('msg', 'is not valid')}")


async def _http(request: Request, exc: StarletteHTTPException) -> Response:
    message = "There is no such page." if exc.status_code == 404 else str(exc.detail)
    return await error_page(request, exc.status_code, message)


def install_error_pages(web: FastAPI) -> None:
    """Answer the pages' errors with pages (see the module's docstring)."""
    web.exception_handler(SignIn)(_sign_in)
    web.exception_handler(PageError)(_page)
    web.exception_handler(LongopsError)(_longops)
    web.exception_handler(RequestValidationError)(_invalid)
    web.exception_handler(StarletteHTTPException)(_http)
