"""Server-Sent Events: an operation's live timeline, and a company's list of operations.

An operation's stream (conventions §7.7)::

    retry: 2000
    id: 17
    event: snapshot        the whole operation (first, unless resuming)
    id: 18
    event: progress        a progress reading
    id: 19
    event: status          anything else on the timeline (attempt started or ended,
                           cancel requested, stalled, ...)
    event: done            the final operation; the server then closes the stream

``id`` is the timeline's event id, and ids only grow: the event hub hands events out in id
order (core/streams.py), so the last id a client received is a complete cursor. A client
that reconnects with ``Last-Event-ID`` gets every event after it from the timeline up to
the hub's watermark, then the live ones above it: each once, none missing. A company's
stream also sends ``created`` for new operations; its ids are
``<event id>.<entry number>``, both cursors at once.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request

from longops.api.deps import call, services
from longops.api.errors import ApiError
from longops.api.presenting import present
from longops.api.representation import camel, operation_name
from longops.app import ActorView
from longops.core.sse import frame as sse_frame
from longops.core.streams import Created, Item
from longops.domain.filters import OperationFilter
from longops.domain.operation import EventType, Operation, OperationEvent

KEEP_ALIVE = 15.0
KEEP_ALIVE_FRAME = sse_frame(comment="keep-alive")
RETRY_MS = 2000
TERMINAL = frozenset({"finished", "error", "cancelled"})


def parse_last_event_id(value: str | None) -> int | None:
    if value is None or value.strip() == "":
        return None
    try:
        number = int(value.strip().split(".")[0])
    except ValueError:
        raise ApiError(
            400, "InvalidArgument", "Last-Event-ID: must be an event id", target="Last-Event-ID"
        ) from None
    if number < 0:
        raise ApiError(
            400, "InvalidArgument", "Last-Event-ID: must be >= 0", target="Last-Event-ID"
        )
    return number


def frame(event: str, data: Any, event_id: str | int | None = None) -> str:
    text = json.dumps(data, default=str, separators=(",", ":"))
    return encoded_frame(event, text, event_id)


def encoded_frame(event: str, text: str, event_id: str | int | None = None) -> str:
    return sse_frame(text, event=event, event_id=event_id)


def event_data(e: OperationEvent) -> tuple[str, dict[str, Any]]:
    """The SSE event name and data of a timeline entry."""
    name = operation_name(e.company, e.operation_id)
    if e.type is EventType.PROGRESS:
        return "progress", {
            "at": e.at.isoformat(),
            **camel(dict(e.data)),
            "operation": name,
            "runNo": e.run_no,
        }
    return "status", {
        "type": e.type.value,
        "operation": name,
        "at": e.at.isoformat(),
        "runNo": e.run_no,
        "data": camel(dict(e.data)),
    }


_ENCODED: OrderedDict[int, tuple[str, str]] = OrderedDict()
_ENCODED_LIMIT = 20_000


def _encoded_event(e: OperationEvent) -> tuple[str, str]:
    """The event's name and JSON text, encoded once for every stream that sends it."""
    found = _ENCODED.get(e.id)
    if found is None:
        name, data = event_data(e)
        found = (name, json.dumps(data, default=str, separators=(",", ":")))
        _ENCODED[e.id] = found
        if len(_ENCODED) > _ENCODED_LIMIT:
            _ENCODED.popitem(last=False)
    return found


def event_frame(e: OperationEvent, event_id: str | int) -> str:
    name, text = _encoded_event(e)
    return encoded_frame(name, text, event_id)


def _ends(e: OperationEvent) -> bool:
    status = e.data.get("status")
    return e.type in (EventType.ATTEMPT_ENDED, EventType.STATUS_CHANGED) and status in TERMINAL


async def _full(view: ActorView, op: Operation) -> dict[str, Any]:
    [body] = await call(present, view, [op])
    return body


_CREATED: OrderedDict[tuple[uuid.UUID, int], asyncio.Future[str]] = OrderedDict()
_CREATED_LIMIT = 2_000


async def _created_texts(view: ActorView, ops: list[Operation]) -> list[str]:
    """New operations' representations as JSON, each made once however many streams send
    it (it does not depend on who asks: every reader of the company may read it), and
    those not made yet in one call (one wait-reason read serves them all)."""
    loop = asyncio.get_running_loop()
    mine: list[tuple[Operation, asyncio.Future[str]]] = []
    futures: list[asyncio.Future[str]] = []
    for op in ops:
        key = (op.id, op.entry_no)
        found = _CREATED.get(key)
        if found is None:
            found = loop.create_future()
            _CREATED[key] = found
            mine.append((op, found))
        futures.append(found)
    while len(_CREATED) > _CREATED_LIMIT:
        _CREATED.popitem(last=False)
    if mine:
        try:
            bodies = await call(present, view, [op for op, _ in mine])
        except BaseException as exc:
            for op, future in mine:
                _CREATED.pop((op.id, op.entry_no), None)
                future.set_exception(exc)
                future.exception()  # retrieved: the waiting streams see it, not the log
            raise
        for (_, future), body in zip(mine, bodies, strict=True):
            future.set_result(json.dumps(body, default=str, separators=(",", ":")))
    return [await asyncio.shield(f) for f in futures]


BATCH = 500
"""Items taken from a subscription at once: a stream that has fallen behind catches up in
few writes (one per item would cost the server and the client a chunk each)."""
CHUNK = 32 * 1024
"""Characters per write at most, so the memory a slow client holds in its connection's
buffers stays small."""


class _Chunks:
    """Frames gathered into writes of about :data:`CHUNK` characters."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._size = 0

    def add(self, text: str) -> str | None:
        """Add a frame; a write to send now when enough has gathered."""
        self._parts.append(text)
        self._size += len(text)
        return self.take() if self._size >= CHUNK else None

    def take(self) -> str | None:
        """What has gathered (None if nothing)."""
        if not self._parts:
            return None
        text = "".join(self._parts)
        self._parts, self._size = [], 0
        return text


async def _batch(request: Request, queue: asyncio.Queue[Item | None]) -> list[Item | None] | None:
    """The subscription's waiting items (at least one; a ``None`` among them ends the
    stream), ``[]`` after a quiet spell (send a keep-alive), or None when the client left."""
    try:
        first = queue.get_nowait()
    except asyncio.QueueEmpty:
        if await request.is_disconnected():
            return None
        try:
            first = await asyncio.wait_for(queue.get(), KEEP_ALIVE)
        except TimeoutError:
            return []
    items = [first]
    while first is not None and len(items) < BATCH:
        try:
            item = queue.get_nowait()
        except asyncio.QueueEmpty:
            break
        items.append(item)
        if item is None:
            break
    return items


async def operation_stream(
    request: Request, view: ActorView, op: Operation, after: int | None
) -> AsyncIterator[str]:
    """An operation's events in id order, each once, from ``after`` (``Last-Event-ID``)
    or from a snapshot; then ``done`` with the final operation."""
    hub = services(request).hub
    yield sse_frame(retry=RETRY_MS)
    async with hub.subscribe(operation_id=op.id) as sub:
        # No await between subscribing and reading the watermark: the subscription
        # receives exactly the events above it, and the timeline has every one below.
        mark = hub.watermark
        if after is None:
            current = await call(view.service.get, op.id)
            yield frame("snapshot", await _full(view, current), mark)
            if current.done:
                yield frame("done", await _full(view, current), mark)
                return
            last = mark
        else:
            last = after
            while last < mark:
                page = await call(view.service.events, op.id, after_id=last, limit=1000)
                page = [e for e in page if e.id <= mark]
                if not page:
                    break
                for e in page:
                    last = e.id
                    yield event_frame(e, e.id)
                    if _ends(e):
                        final = await call(view.service.get, op.id)
                        if final.done:
                            yield frame("done", await _full(view, final), e.id)
                            return
            last = max(last, mark)
            current = await call(view.service.get, op.id)
            if current.done and not await _end_ahead(view, op, last):
                # The end was sent before the client went away, or was never written.
                yield frame("done", await _full(view, current), last)
                return
        while True:
            batch = await _batch(request, sub.queue)
            if batch is None:
                return  # gone, fell behind or the server stops: resume with Last-Event-ID
            if not batch:
                yield KEEP_ALIVE_FRAME
                current = await call(view.service.get, op.id)
                if current.done and not await _end_ahead(view, op, last):
                    yield frame("done", await _full(view, current), last)
                    return
                continue
            out = _Chunks()
            for item in batch:
                if item is None:
                    if (rest := out.take()) is not None:
                        yield rest
                    return
                if not isinstance(item, OperationEvent) or item.id <= last:
                    continue
                last = item.id
                if (chunk := out.add(event_frame(item, item.id))) is not None:
                    yield chunk
                if _ends(item):
                    final = await call(view.service.get, op.id)
                    if final.done:
                        out.add(frame("done", await _full(view, final), item.id))
                        if (rest := out.take()) is not None:
                            yield rest
                        return
            if (rest := out.take()) is not None:
                yield rest


async def _end_ahead(view: ActorView, op: Operation, after: int) -> bool:
    """Whether an ending event above ``after`` is in the timeline (the hub will send it)."""
    later = await call(view.service.events, op.id, after_id=after, limit=10_000)
    return any(_ends(e) for e in later)


def _cursor(value: str | None) -> tuple[int, int] | None:
    """A company stream's ``Last-Event-ID`` (``<event id>.<entry number>``); checked before
    the stream starts, so bad input is a 400, not a broken stream."""
    if value is None or not value.strip():
        return None
    try:
        event_part, _, entry_part = value.strip().partition(".")
        event_no, entry_no = int(event_part), int(entry_part or 0)
    except ValueError:
        event_no = entry_no = -1
    if event_no < 0 or entry_no < 0:
        raise ApiError(
            400,
            "InvalidArgument",
            "Last-Event-ID: must be <event id>.<entry number>",
            target="Last-Event-ID",
        )
    return event_no, entry_no


async def company_stream(
    request: Request, view: ActorView, company: str, last_event_id: str | None
) -> AsyncIterator[str]:
    """A company's new operations (``created``) and events, each once and in order; the
    id of every frame is ``<event id>.<entry number>``, a cursor of both."""
    hub = services(request).hub
    cursor = _cursor(last_event_id)
    yield sse_frame(retry=RETRY_MS)
    async with hub.subscribe(companies=[company]) as sub:
        event_top, entry_top = hub.watermark, hub.entry_watermark  # no await before this
        if cursor is None:
            event_mark, entry_mark = event_top, entry_top
            yield frame("ready", {"company": company}, f"{event_mark}.{entry_mark}")
        else:
            event_mark, entry_mark = cursor
            while entry_mark < entry_top:
                created = await call(
                    view.service.list_operations,
                    OperationFilter(company=company, after_entry_no=entry_mark, limit=500),
                )
                created = [op for op in created if op.entry_no <= entry_top]
                if not created:
                    break
                texts = await _created_texts(view, created)
                out = _Chunks()
                for op, text in zip(created, texts, strict=True):
                    entry_mark = op.entry_no
                    cursor_id = f"{event_mark}.{entry_mark}"
                    if (chunk := out.add(encoded_frame("created", text, cursor_id))) is not None:
                        yield chunk
                if (rest := out.take()) is not None:
                    yield rest
            entry_mark = max(entry_mark, entry_top)
            while event_mark < event_top:
                backlog = await call(
                    view.service.company_events, company, after_id=event_mark, limit=1000
                )
                backlog = [e for e in backlog if e.id <= event_top]
                if not backlog:
                    break
                out = _Chunks()
                for e in backlog:
                    event_mark = e.id
                    if (chunk := out.add(event_frame(e, f"{event_mark}.{entry_mark}"))) is not None:
                        yield chunk
                if (rest := out.take()) is not None:
                    yield rest
            event_mark = max(event_mark, event_top)
        while True:
            batch = await _batch(request, sub.queue)
            if batch is None:
                return
            if not batch:
                yield KEEP_ALIVE_FRAME
                continue
            fresh = [
                i.operation
                for i in batch
                if isinstance(i, Created) and i.operation.entry_no > entry_mark
            ]
            made = await _created_texts(view, fresh)
            shown = dict(zip([op.id for op in fresh], made, strict=True))
            out = _Chunks()
            for item in batch:
                if item is None:
                    if (rest := out.take()) is not None:
                        yield rest
                    return
                if isinstance(item, Created):
                    op = item.operation
                    if op.entry_no <= entry_mark:
                        continue
                    entry_mark = op.entry_no
                    text = encoded_frame("created", shown[op.id], f"{event_mark}.{entry_mark}")
                elif item.id <= event_mark:
                    continue
                else:
                    event_mark = item.id
                    text = event_frame(item, f"{event_mark}.{entry_mark}")
                if (chunk := out.add(text)) is not None:
                    yield chunk
            if (rest := out.take()) is not None:
                yield rest
