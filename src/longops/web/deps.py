"""The FastAPI dependencies a page route declares: the application's :class:`Pages` (from
the app state) and the CSRF check of a form.

Example::

    @router.post("/c/{company}/categories")
    def save_category(request: Request, company: str, pages: PagesDep, _: Csrf) -> Response:
        ctx = pages.context(request, company, header=False)
        ...
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, Request

from longops.web.context import PageError
from longops.web.guard import foreign_origin
from longops.web.pages import Pages


async def pages_of(request: Request) -> Pages:
    """The pages of the application answering this request (``create_pages`` set it)."""
    pages: Pages = request.app.state.pages
    return pages


PagesDep = Annotated[Pages, Depends(pages_of)]


def check_csrf(request: Request, csrf_token: Annotated[str | None, Form()] = None) -> None:
    """Refuse (403) a form whose CSRF token is not the session's."""
    pages: Pages = request.app.state.pages
    if foreign_origin(pages.options, request.scope) is not None:
        raise PageError(403, "The form did not come from this site (its Origin is foreign).")
    session = pages.session(request)
    if session is None or not session.csrf_ok(csrf_token):
        raise PageError(
            403,
            "The form has expired or did not come from this site. "
            "Go back, reload the page and try again.",
        )


Csrf = Annotated[None, Depends(check_csrf)]
