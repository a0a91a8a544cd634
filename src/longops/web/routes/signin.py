"""Signing in and out, and the way in: ``/`` sends the user to their first company's
overview, ``/switch`` to another company's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from longops.domain.errors import NotFound, PermissionDenied, TooManyRequests, ValidationError
from longops.domain.security import FrontEnd
from longops.web.context import PageError, safe_path
from longops.web.deps import Csrf, PagesDep
from longops.web.session import SessionData

router = APIRouter()


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, pages: PagesDep, next: str | None = None) -> Response:
    session = pages.session(request) or SessionData.anonymous()
    response = pages.render("login.html", None, csrf=session.csrf, next=next or "")
    pages.set_cookie(response, session)
    return response


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    pages: PagesDep,
    _: Csrf,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    session = pages.session(request) or SessionData.anonymous()
    address = pages.options.address(request)
    try:
        actor = pages.app.security.authenticate_password(
            username.strip(), password, FrontEnd.WEB, address=address
        )
    except TooManyRequests as exc:
        response = pages.render(
            "login.html",
            None,
            429,
            csrf=session.csrf,
            next=next,
            error=f"{str(exc)[:1].upper()}{str(exc)[1:]}.",
            username=username,
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        pages.set_cookie(response, session)
        return response
    except (PermissionDenied, ValidationError, NotFound):
        response = pages.render(
            "login.html",
            None,
            400,
            csrf=session.csrf,
            next=next,
            error="Wrong user name or password.",
            username=username,
        )
        pages.set_cookie(response, session)
        return response
    assert actor.user is not None
    target = next if next and safe_path(next) and next.startswith("/c/") else "/"
    done = RedirectResponse(target, status_code=303)
    agent = request.headers.get("user-agent", "")[:200]
    _record, sid = pages.app.security.start_session(actor.user, client=f"{address or '?'} {agent}")
    pages.set_cookie(done, session.signed_in(actor.user, sid))
    return done


@router.post("/logout")
def logout(request: Request, pages: PagesDep, _: Csrf) -> Response:
    session = pages.session(request)
    if session is not None and session.sid is not None:
        pages.app.security.end_session(session.sid)
    response = RedirectResponse("/login", status_code=303)
    pages.set_cookie(response, SessionData.anonymous())
    return response


@router.get("/")
def home(request: Request, pages: PagesDep) -> Response:
    view = pages.view_of(pages.session(request), request)
    names = sorted(view.actor.companies) or [c.name for c in view.companies.list_companies()]
    if not names:
        raise PageError(403, "You hold no permission set in any company.")
    return RedirectResponse(f"/c/{names[0]}/", status_code=303)


@router.get("/switch")
def switch(request: Request, pages: PagesDep, company: str = "") -> Response:
    ctx = pages.context(request, company, header=False)
    return RedirectResponse(f"{ctx.base}/", status_code=303)
