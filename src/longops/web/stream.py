"""The pages' live stream: the same EventHub as the REST API's SSE, sent as HTML.

Each page connects once (htmx SSE extension, ``sse-connect`` on ``<body>``) to
``/c/{company}/stream``. The stream sends named events whose data is an HTML fragment the
page swaps in where an element listens for that name (``sse-swap``); a name nobody on the
page listens for is ignored, so no event can point at a missing element:

- ``row-<id>``: a changed row of the Job Queue Entries list (``view=list``);
- ``card``: the live part of an entry card, status, progress and actions (``view=card``),
  and ``card-details`` (its fields, timeline and attempts) when more than progress moved;
- ``indicator``: the header's background indicator, when one of the user's operations moves;
- ``toast``: one of the user's operations finished, failed or was cancelled (its new
  notification, which the hub fans out to that user only);
- ``unread``: the header's count of unread notifications;
- ``created``: how many operations were created since the list was shown.

Changes are gathered for a moment and each operation is read once per flush, so a run
that reports progress many times a second costs one read per flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request

from longops.core.streams import Created, Subscription
from longops.domain.errors import LongopsError
from longops.domain.operation import EventType, Operation
from longops.domain.pages import Notification
from longops.web.context import Context
from longops.web.pages import Pages, card_details_html, card_live_html, row_html

FLUSH_EVERY = 0.25
"""Seconds changes are gathered before the changed operations are read and sent."""
KEEP_ALIVE = 15.0
RETRY_MS = 2000


def sse(event: str, html: str) -> str:
    """One SSE message whose data is an HTML fragment (one ``data:`` line per line)."""
    lines = [f"event: {event}"]
    lines.extend(f"data: {line}" for line in html.splitlines() or [""])
    return "\n".join(lines) + "\n\n"


async def page_stream(
    pages: Pages,
    request: Request,
    ctx: Context,
    view: str,
    card_id: uuid.UUID | None,
    next_path: str,
) -> AsyncIterator[str]:
    """The events of one page, until the browser goes away or the server stops."""
    hub = pages.hub
    me = ctx.view.actor.user
    feed: contextlib.AbstractAsyncContextManager[Subscription[Any]]
    if me is None:
        feed = hub.subscribe(companies=[ctx.company])
    else:
        feed = hub.subscribe_with_notifications(me, companies=[ctx.company])
    async with feed as sub:
        # Subscribed before the first byte: whatever happens once the page sees the
        # stream open reaches it.
        yield f"retry: {RETRY_MS}\n\n"
        dirty: set[uuid.UUID] = set()
        moved: set[uuid.UUID] = set()
        notes: list[Notification] = []
        created = 0
        fresh = 0
        last_flush = time.monotonic()
        while True:
            if await request.is_disconnected():
                return
            pending = dirty or notes or fresh
            try:
                item = await asyncio.wait_for(
                    sub.queue.get(), FLUSH_EVERY if pending else KEEP_ALIVE
                )
            except TimeoutError:
                if not pending:
                    yield ": keep-alive\n\n"
                    continue
            else:
                if item is None:
                    return  # fell behind, or the server stops: the browser reconnects
                if isinstance(item, Created):
                    fresh += 1
                elif isinstance(item, Notification):
                    notes.append(item)
                else:
                    dirty.add(item.operation_id)
                    if item.type is not EventType.PROGRESS:
                        moved.add(item.operation_id)
                if time.monotonic() - last_flush < FLUSH_EVERY:
                    continue
            last_flush = time.monotonic()
            changed, dirty = dirty, set()
            stepped, moved = moved, set()
            toasts, notes = notes, []
            for chunk in await asyncio.to_thread(
                _render, pages, ctx, view, card_id, next_path, changed, stepped, toasts, me
            ):
                yield chunk
            if fresh and view == "list":
                created += fresh
                html = pages.fragment("_created.html", count=created, base=ctx.base)
                yield sse("created", html)
            fresh = 0


def _render(
    pages: Pages,
    ctx: Context,
    view: str,
    card_id: uuid.UUID | None,
    next_path: str,
    changed: set[uuid.UUID],
    stepped: set[uuid.UUID],
    toasts: list[Notification],
    me: str | None,
) -> list[str]:
    """The fragments for the operations that changed (runs in a worker thread)."""
    out: list[str] = []
    mine = bool(toasts)
    for oid in changed:
        op: Operation | None = None
        with contextlib.suppress(LongopsError):
            op = ctx.view.service.get(oid)
        if op is None or op.company != ctx.company:
            continue
        if view == "list":
            out.append(sse(f"row-{op.id}", row_html(pages, ctx, op, next_path)))
        if view == "card" and op.id == card_id:
            out.append(sse("card", card_live_html(pages, ctx, op, next_path)))
            if op.id in stepped:  # more than progress: the fields, timeline and attempts
                out.append(sse("card-details", card_details_html(pages, ctx, op)))
        if me is not None and op.user == me:
            mine = True
    for note in toasts:
        out.append(sse("toast", pages.fragment("_toast.html", note=note, base=ctx.base)))
    if mine:
        pages.fill_header(ctx)
        out.append(sse("indicator", pages.fragment("_indicator.html", ctx=ctx, base=ctx.base)))
        out.append(sse("unread", pages.fragment("_unread.html", ctx=ctx)))
    return out
