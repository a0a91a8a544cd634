"""The signed-in user's own sign-ins (``/c/{company}/account``): where they are signed in,
and ending one or all of them."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from longops.domain.users import parse_session
from longops.web.deps import Csrf, PagesDep
from longops.web.session import SessionData

router = APIRouter()


@router.get("/c/{company}/account", response_class=HTMLResponse)
def account(request: Request, company: str, pages: PagesDep) -> Response:
    ctx = pages.context(request, company)
    security = pages.app.security
    listed = ctx.view.security.list_web_sessions(ctx.user)
    live = [s for s in listed if s.usable_at(pages.app.clock.now(), security.sessions.idle)]
    current = parse_session(ctx.session.sid or "")
    return pages.render("account.html", ctx, title="Your sign-ins", sign_ins=live, current=current)


@router.post("/c/{company}/account/end")
def end_sign_ins(
    request: Request,
    company: str,
    pages: PagesDep,
    _: Csrf,
    session_id: Annotated[str, Form()] = "",
) -> Response:
    ctx = pages.context(request, company, header=False)
    chosen = session_id or None
    ended = ctx.view.security.end_web_sessions(ctx.user, chosen)
    if chosen is None or parse_session(ctx.session.sid or "") == uuid.UUID(chosen):
        response = RedirectResponse("/login", status_code=303)
        pages.set_cookie(response, SessionData.anonymous())
        return response
    return pages.back(ctx, None, f"{ctx.base}/account", f"{ended} sign-in ended.")
