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
- ``created``: how many operations were created since the list was shown;
- ``overview``: the Overview's cues, chart and longest running (``view=overview``), when
  an operation of the company changed status (at most every OVERVIEW_EVERY seconds) or,
  less often, progressed;
- ``card-actions``: the card's buttons, only when which buttons show changed (never
  replaced under the pointer otherwise); ``card-error``: its error on top;
- ``notice``: an action's notice once the card's operation is done ("asked to stop" is
  history then); on any page drawn with a notice awaiting an operation's end
  (``notice=<id>``: a row's Cancel of a running operation, say), once that one is done:
  read when the stream subscribes (it may have ended since the page's read), then on
  each of its transitions;
- ``facets``: the list's status facets and their counts, when a status in the company
  changed or an operation was created (at most every FACETS_EVERY seconds: one count
  query each time).

Changes are gathered for a moment and each operation is read once per flush, so a run
that reports progress many times a second costs one read per flush; and only what the
page shows is read: its rows (``rows=<id>,<id>,...``), its card, the user's own
operations for the header. Progress of anything else costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import Request

from longops.core.sse import frame
from longops.core.streams import Created, Item, Subscription
from longops.domain.errors import LongopsError, NotFound, PermissionDenied
from longops.domain.operation import EventType, Operation, OperationEvent
from longops.domain.read_models import Notification
from longops.domain.security import FrontEnd
from longops.web.context import Context
from longops.web.listing import entries_filter, facets_html
from longops.web.operations import (
    card_actions_html,
    card_details_html,
    card_error_html,
    card_live_html,
    row_html,
)
from longops.web.overview import overview_html
from longops.web.pages import Pages, running_of
from longops.web.present import actions_for, actions_key

FLUSH_EVERY = 0.25
"""Seconds changes are gathered before the changed operations are read and sent."""
KEEP_ALIVE = 15.0
RETRY_MS = 2000
OVERVIEW_EVERY = 1.0
"""Seconds at least between two redraws of the Overview after a status change..."""
OVERVIEW_PROGRESS_EVERY = 10.0
"""... and after progress only (its bars and "running for")."""
FACETS_EVERY = 2.0
"""Seconds at least between two recounts of a list page's status facets."""
RECHECK_EVERY = 30.0
"""Seconds between checks that the stream's user is still active and in the company."""


KEEP_ALIVE_FRAME = frame(comment="keep-alive")


def sse(event: str, html: str) -> str:
    """One SSE message whose data is an HTML fragment (one ``data:`` line per line)."""
    return frame(html, event=event)


@dataclass
class Watch:
    """What one page shows, so that only those operations are read when they change."""

    view: str
    shown: frozenset[uuid.UUID]
    """The rows on the list page, or the card's operation."""
    card_id: uuid.UUID | None
    next_path: str
    mine: set[uuid.UUID] = field(default_factory=set)
    """The user's running operations (their progress moves the header's mini bar)."""
    dirty: set[uuid.UUID] = field(default_factory=set)
    """Shown operations that changed since the last flush."""
    moved: set[uuid.UUID] = field(default_factory=set)
    """Operations with more than progress since the last flush (status, attempts)."""
    indicator: bool = False
    notes: list[Notification] = field(default_factory=list)
    fresh: int = 0
    created: int = 0
    since: int | None = None
    """The hub's event watermark before the page read anything (``Pages.context``)."""
    notes_after: int | None = None
    """The hub's notification watermark, taken with ``since``."""
    replayed: set[int] = field(default_factory=set)
    """Notifications toasted from the catch-up read (the feed may bring them again)."""
    facets_due: bool = False
    """A status changed or an operation was created since the facets were last counted."""
    facets_at: float = 0.0
    """When (monotonic) the facets were last sent."""
    actions: str | None = None
    """Which buttons the card shows now (``present.actions_key``)."""
    overview_due: float | None = None
    """The Overview page: how many seconds after its last redraw it is due again (a status
    changed: OVERVIEW_EVERY; only progress moved: OVERVIEW_PROGRESS_EVERY), None if not."""
    overview_at: float = 0.0
    notice_for: uuid.UUID | None = None
    """The page was drawn with a notice awaiting this operation's end ("asked to stop"):
    the stream reads it once subscribed and after each of its transitions, and replaces
    the notice once it is done."""
    notice_due: bool = False
    """``notice_for`` is to be read at the next flush."""

    def recount(self) -> None:
        if self.view == "list":
            self.facets_due = True

    def take(self, item: Item | Notification) -> None:
        if self.view == "overview" and not isinstance(item, Notification):
            progress = isinstance(item, OperationEvent) and item.type is EventType.PROGRESS
            due = OVERVIEW_PROGRESS_EVERY if progress else OVERVIEW_EVERY
            self.overview_due = min(self.overview_due or due, due)
        if isinstance(item, Created):
            self.fresh += 1
            self.recount()
        elif isinstance(item, Notification):
            if item.id not in self.replayed:
                self.notes.append(item)
        else:
            oid = item.operation_id
            if oid in self.shown:
                self.dirty.add(oid)
            if item.type is not EventType.PROGRESS:
                self.moved.add(oid)
                self.recount()
                if oid == self.notice_for:
                    self.notice_due = True
            elif oid in self.mine:
                self.indicator = True

    @property
    def pending(self) -> bool:
        return bool(
            self.dirty
            or self.moved
            or self.notes
            or self.fresh
            or self.indicator
            or self.facets_due
            or self.notice_due
            or self.overview_due is not None
        )


async def page_stream(
    pages: Pages,
    request: Request,
    ctx: Context,
    watch: Watch,
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
        yield frame(retry=RETRY_MS)
        watch.mine = {op.id for op in await asyncio.to_thread(running_of, ctx)}
        # The feed starts now, not when the page began to read: what moved in between (an
        # operation that changed during the page's reads, or ended while a form's redirect
        # loaded the page) would be lost. Event ids are the database's, so this holds
        # when another server process drew the page: its hub's mark is a lower bound too.
        if watch.since is not None and hub.watermark > watch.since:
            watch.dirty |= watch.shown
            if watch.card_id is not None:
                watch.moved.add(watch.card_id)
            watch.indicator = True
            watch.recount()
            if watch.view == "overview":
                watch.overview_due = OVERVIEW_EVERY
        if watch.notice_for is not None:
            # The run may have ended between the page's read and this subscription: one
            # read now, whatever the watermarks say (one operation, only on such a page).
            watch.notice_due = True
        if me is not None and watch.notes_after is not None:
            missed = await asyncio.to_thread(_missed_notes, ctx, watch.notes_after)
            watch.notes.extend(missed)
            watch.replayed = {n.id for n in missed}
        last_flush = checked = time.monotonic()
        while True:
            if await request.is_disconnected():
                return
            if me is not None and time.monotonic() - checked > RECHECK_EVERY:
                checked = time.monotonic()
                if not await asyncio.to_thread(_still_allowed, pages, ctx, me):
                    return  # signed out by a disable or a revoked grant: the page reloads
            pending = watch.pending
            try:
                item = await asyncio.wait_for(
                    sub.queue.get(), FLUSH_EVERY if pending else KEEP_ALIVE
                )
            except TimeoutError:
                if not pending:
                    yield KEEP_ALIVE_FRAME
                    continue
            else:
                if item is None:
                    return  # fell behind, or the server stops: the browser reconnects
                watch.take(item)
                if time.monotonic() - last_flush < FLUSH_EVERY:
                    continue
            last_flush = time.monotonic()
            for chunk in await asyncio.to_thread(_render, pages, ctx, watch, me):
                yield chunk
            if watch.fresh and watch.view == "list":
                watch.created += watch.fresh
                html = pages.fragment("_created.html", count=watch.created, base=ctx.base)
                yield sse("created", html)
            watch.fresh = 0


def _render(pages: Pages, ctx: Context, watch: Watch, me: str | None) -> list[str]:
    """The fragments for what changed since the last flush (runs in a worker thread)."""
    changed, watch.dirty = watch.dirty, set()
    moved, watch.moved = watch.moved, set()
    toasts, watch.notes = watch.notes, []
    refresh = watch.indicator or bool(toasts)
    watch.indicator = False
    out: list[str] = []
    read: dict[uuid.UUID, Operation | None] = {}

    def get(oid: uuid.UUID) -> Operation | None:
        if oid not in read:
            found: Operation | None = None
            with contextlib.suppress(LongopsError):
                found = ctx.view.service.get(oid)
            read[oid] = found if found is not None and found.company == ctx.company else None
        return read[oid]

    for oid in changed:
        op = get(oid)
        if op is None:
            continue
        if watch.view == "list":
            out.append(sse(f"row-{op.id}", row_html(pages, ctx, op, watch.next_path)))
        if watch.view == "card" and op.id == watch.card_id:
            out.extend(_card(pages, ctx, watch, op, op.id in moved))
    if me is not None and not refresh:
        # A status change of one of the user's operations (it started, say) moves the
        # header; whose it is takes a read, but status changes are rare beside progress.
        refresh = any(oid in watch.mine or _owner(get(oid)) == me for oid in moved)
    for note in toasts:
        # Named with its entry number: two operations of the same name are told apart.
        of = get(note.operation_id)
        entry_no = None if of is None else of.entry_no
        html = pages.fragment("_toast.html", note=note, entry_no=entry_no, base=ctx.base)
        out.append(sse("toast", html))
    if refresh:
        pages.fill_header(ctx)
        watch.mine = {op.id for op in ctx.running}
        out.append(sse("indicator", pages.fragment("_indicator.html", ctx=ctx, base=ctx.base)))
        out.append(sse("unread", pages.fragment("_unread.html", ctx=ctx)))
    if watch.notice_due and watch.notice_for is not None:
        watch.notice_due = False
        op = get(watch.notice_for)
        if op is None or op.done:
            # Done: the notice says what happened (sent once); gone: nothing to say.
            watch.notice_for = None
            if op is not None:
                out.append(sse("notice", pages.fragment("_notice.html", op=op)))
    due = watch.overview_due
    if due is not None and time.monotonic() - watch.overview_at >= due:
        # The cues, the chart and the longest running: one overview read, not per change.
        watch.overview_due = None
        watch.overview_at = time.monotonic()
        out.append(sse("overview", overview_html(pages, ctx)))
    if watch.facets_due and time.monotonic() - watch.facets_at >= FACETS_EVERY:
        # The counts are of the whole filter, not of the rows shown: any status change in
        # the company may move them, so they are recounted, but not more often than this.
        watch.facets_due = False
        watch.facets_at = time.monotonic()
        flt = entries_filter(dict(parse_qsl(urlsplit(watch.next_path).query)))
        out.append(sse("facets", facets_html(pages, ctx, flt)))
    return out


def _card(pages: Pages, ctx: Context, watch: Watch, op: Operation, moved: bool) -> list[str]:
    """A changed card: its live part; its buttons only when which buttons show changed (a
    button is never replaced under the pointer); the rest when more than progress moved."""
    out = [sse("card", card_live_html(pages, ctx, op, watch.next_path))]
    key = actions_key(actions_for(ctx.actor, op))
    if key != watch.actions:
        watch.actions = key
        out.append(sse("card-actions", card_actions_html(pages, ctx, op, watch.next_path)))
    if moved:  # more than progress: the fields, timeline and attempts, the error
        out.append(sse("card-details", card_details_html(pages, ctx, op)))
        out.append(sse("card-error", card_error_html(pages, ctx, op)))
        if op.done and op.id != watch.notice_for:
            # The notice of an action taken here is history now (the one awaiting this
            # end, ``notice_for``, is sent by ``_render`` alike, once).
            out.append(sse("notice", pages.fragment("_notice.html", op=op)))
    return out


MISSED_NOTES = 10
"""At most this many notifications are toasted from the catch-up read of a new page."""
MISSED_WITHIN = timedelta(minutes=1)
"""... and only those this recent (a restarted server's watermark starts at zero)."""


def _missed_notes(ctx: Context, after: int) -> list[Notification]:
    """The user's recent unread notifications above the page's watermark, oldest first:
    written after the page was drawn (or while no page listened), so no toast showed them."""
    unread = ctx.view.inbox.notifications(ctx.company, unread_only=True, limit=MISSED_NOTES)
    recent = ctx.view.app.clock.now() - MISSED_WITHIN
    missed = (n for n in unread if n.id > after and n.created_at >= recent)
    return sorted(missed, key=lambda n: n.id)


def _still_allowed(pages: Pages, ctx: Context, user: str) -> bool:
    """Re-read the user (a long stream must not outlive a disable or a revoked grant)."""
    try:
        view = pages.app.as_user(user, FrontEnd.WEB)
    except (NotFound, PermissionDenied):
        return False
    if not view.actor.is_super and ctx.company not in view.actor.companies:
        return False
    ctx.view = view  # later fragments use the current permission sets
    return True


def _owner(op: Operation | None) -> str | None:
    return None if op is None else op.user
