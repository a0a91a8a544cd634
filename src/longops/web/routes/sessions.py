"""The worker Sessions page (``/c/{company}/sessions``): every worker session with what it
runs now and its recent events; one may be asked to drain."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from longops.domain.security import Action, Verdict, decide
from longops.web.context import PageError
from longops.web.deps import Csrf, PagesDep

router = APIRouter()


@router.get("/c/{company}/sessions", response_class=HTMLResponse)
def sessions(request: Request, company: str, pages: PagesDep) -> Response:
    ctx = pages.context(request, company)
    svc = ctx.view.sessions
    # The Maintenance mode link only for who may start it (the others read the banner).
    may_maintain = decide(ctx.actor, Action.SET_MAINTENANCE) is Verdict.ALLOWED
    if decide(ctx.actor, Action.LIST_SESSIONS) is not Verdict.ALLOWED:
        return pages.render(
            "sessions.html", ctx, title="Sessions", allowed=False, may_maintain=may_maintain
        )
    listed = svc.list_sessions()
    by_session = svc.session_operations()
    events = svc.session_events()
    events_by: dict[uuid.UUID, list[Any]] = {}
    for e in events:
        events_by.setdefault(e.session_id, []).append(e)
    return pages.render(
        "sessions.html",
        ctx,
        title="Sessions",
        allowed=True,
        sessions=listed,
        current=by_session,
        events=events_by,
        can_drain=decide(ctx.actor, Action.DRAIN_SESSION) is Verdict.ALLOWED,
        may_maintain=may_maintain,
    )


@router.post("/c/{company}/sessions/{session_id}/drain")
def drain(request: Request, company: str, session_id: str, pages: PagesDep, _: Csrf) -> Response:
    ctx = pages.context(request, company, header=False)
    try:
        sid = uuid.UUID(session_id)
    except ValueError:
        raise PageError(404, f"Session {session_id} was not found.") from None
    ctx.view.sessions.drain_session(sid)
    return pages.back(ctx, None, f"{ctx.base}/sessions", f"Session {sid} asked to drain.")
