"""The live stream a page connects to (``/c/{company}/stream``): what it shows is named in
the query (``view``, ``op``, ``rows``), the events are made by ``web/stream.py``."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from longops.domain.errors import ValidationError
from longops.web.context import safe_path
from longops.web.deps import PagesDep
from longops.web.operations import operation_uuid
from longops.web.stream import Watch, page_stream

router = APIRouter()


@router.get("/c/{company}/stream")
async def stream(
    request: Request,
    company: str,
    pages: PagesDep,
    view: str = "none",
    op: str | None = None,
    rows: str = "",
    next: str = "",
    since: Annotated[int | None, Query(ge=0)] = None,
    notes: Annotated[int | None, Query(ge=0)] = None,
    acts: str | None = None,
    notice: str = "",
) -> Response:
    ctx = await asyncio.to_thread(pages.context, request, company, header=False)
    card_id = operation_uuid(op) if op else None
    shown = {operation_uuid(i) for i in rows.split(",") if i.strip()} if view == "list" else set()
    if card_id is not None:
        shown.add(card_id)
    if len(shown) > 500:
        raise ValidationError("rows", "must name at most 500 operations", len(shown))
    watch = Watch(view, frozenset(shown), card_id, next if safe_path(next) else "")
    watch.since, watch.notes_after = since, notes
    watch.actions = acts  # the card's buttons as drawn: redrawn only when they change
    # The page was drawn with a notice awaiting this operation's end ("asked to stop").
    watch.notice_for = operation_uuid(notice) if notice else None
    return StreamingResponse(
        page_stream(pages, request, ctx, watch),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
