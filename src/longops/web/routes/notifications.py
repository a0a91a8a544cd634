"""A person's notifications (``/c/{company}/notifications``): newest first, unread only on
request, with a Restart beside a failed operation's; marking some or all read."""

from __future__ import annotations

import contextlib
import uuid
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from longops.domain.errors import NotFound
from longops.domain.operation import Operation
from longops.domain.security import Action
from longops.web import present
from longops.web.deps import Csrf, PagesDep
from longops.web.forms import whole_number
from longops.web.pages import PAGE_SIZE, here

router = APIRouter()


@router.get("/c/{company}/notifications", response_class=HTMLResponse)
def notifications(
    request: Request,
    company: str,
    pages: PagesDep,
    unread: str = "",
    after: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    ctx = pages.context(request, company)
    items = ctx.view.inbox.notifications(
        company, unread_only=unread == "1", limit=PAGE_SIZE + 1, before_id=after
    )
    more = len(items) > PAGE_SIZE
    items = items[:PAGE_SIZE]
    ops: dict[uuid.UUID, Operation] = {}
    for n in items:
        if n.operation_id in ops:
            continue
        with contextlib.suppress(NotFound):  # deleted since: no actions then
            ops[n.operation_id] = ctx.view.service.get(n.operation_id)
    restartable = {
        oid: present.status_allows(Action.RESTART, op)
        and present.may(ctx.actor, Action.RESTART, op)
        for oid, op in ops.items()
    }
    next_link = None
    if more and items:
        query = {"after": str(items[-1].id)}
        if unread == "1":
            query["unread"] = "1"
        next_link = "?" + urlencode(query)
    return pages.render(
        "notifications.html",
        ctx,
        title="Notifications",
        items=items,
        ops=ops,
        restartable=restartable,
        unread_only=unread == "1",
        next_link=next_link,
        here=here(request),
    )


@router.post("/c/{company}/notifications/read")
def mark_read(
    request: Request,
    company: str,
    pages: PagesDep,
    _: Csrf,
    ids: Annotated[list[str] | None, Form()] = None,
) -> Response:
    ctx = pages.context(request, company, header=False)
    chosen = None if not ids else [whole_number("ids", i, 0) for i in ids]
    n = ctx.view.inbox.mark_notifications_read(company, chosen)
    return pages.back(
        ctx,
        None,
        f"{ctx.base}/notifications",
        f"{n:,} notification{'' if n == 1 else 's'} marked read.",
    )
