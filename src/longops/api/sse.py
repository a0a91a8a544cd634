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

``id`` is the timeline's event id. A client that reconnects with ``Last-Event-ID`` gets
every event after it from the timeline, then the live ones, each once (ids already sent
are skipped). A company's stream also sends ``created`` for new operations; its ids are
``<event id>.<entry number>``, both cursors at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request

from longops.api.deps import call, services
from longops.api.errors import ApiError
from longops.app import ActorView
from longops.core.streams import Created
from longops.domain.operation import EventType, Operation, OperationEvent
from longops.store.base import OperationQuery

KEEP_ALIVE = 15.0
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
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    text = json.dumps(data, default=str, separators=(",", ":"))
    lines.append(f"data: {text}")
    return "\n".join(lines) + "\n\n"


def event_data(e: OperationEvent) -> tuple[str, dict[str, Any]]:
    """The SSE event name and data of a timeline entry."""
    if e.type is EventType.PROGRESS:
        return "progress", {
            **dict(e.data),
            "operation": f"operations/{e.operation_id}",
            "runNo": e.run_no,
        }
    return "status", {
        "type": e.type.value,
        "operation": f"operations/{e.operation_id}",
        "at": e.at.isoformat(),
        "runNo": e.run_no,
        "data": dict(e.data),
    }


def _ends(e: OperationEvent) -> bool:
    status = e.data.get("status")
    return e.type in (EventType.ATTEMPT_ENDED, EventType.STATUS_CHANGED) and status in TERMINAL


async def _full(view: ActorView, op: Operation) -> dict[str, Any]:
    from longops.api.operations import present

    [body] = await call(present, view, [op])
    return body


async def operation_stream(
    request: Request, view: ActorView, op: Operation, after: int | None
) -> AsyncIterator[str]:
    hub = services(request).hub
    yield f"retry: {RETRY_MS}\n\n"
    async with hub.subscribe(operation_id=op.id) as sub:
        sent: set[int] = set()
        mark = hub.watermark
        if after is None:
            # The snapshot stands for everything up to the hub's watermark; newer events
            # arrive through the subscription made just before.
            current = await call(view.service.get, op.id)
            yield frame("snapshot", await _full(view, current), mark)
            if current.done:
                yield frame("done", await _full(view, current), mark)
                return
            floor = mark
        else:
            floor = after
            backlog = await call(view.service.events, op.id, after_id=after, limit=10_000)
            for e in backlog:
                sent.add(e.id)
                name, data = event_data(e)
                yield frame(name, data, e.id)
                if _ends(e):
                    final = await call(view.service.get, op.id)
                    if final.done:
                        yield frame("done", await _full(view, final), e.id)
                        return
            current = await call(view.service.get, op.id)
            if current.done and not backlog:
                yield frame("done", await _full(view, current), after)
                return
        queue = sub.queue
        while True:
            if await request.is_disconnected():
                return
            try:
                item = await asyncio.wait_for(queue.get(), KEEP_ALIVE)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if item is None:
                return  # fell behind (or the server stops): reconnect with Last-Event-ID
            if not isinstance(item, OperationEvent) or item.id <= floor or item.id in sent:
                continue
            sent.add(item.id)
            name, data = event_data(item)
            yield frame(name, data, item.id)
            if _ends(item):
                final = await call(view.service.get, op.id)
                if final.done:
                    yield frame("done", await _full(view, final), item.id)
                    return


def _cursor(value: str | None) -> tuple[int, int] | None:
    if value is None or not value.strip():
        return None
    try:
        event_part, _, entry_part = value.strip().partition(".")
        return int(event_part), int(entry_part or 0)
    except ValueError:
        raise ApiError(
            400,
            "InvalidArgument",
            "Last-Event-ID: must be <event id>.<entry number>",
            target="Last-Event-ID",
        ) from None


async def company_stream(
    request: Request, view: ActorView, company: str, last_event_id: str | None
) -> AsyncIterator[str]:
    hub = services(request).hub
    cursor = _cursor(last_event_id)
    yield f"retry: {RETRY_MS}\n\n"
    async with hub.subscribe(companies=[company]) as sub:
        sent_events: set[int] = set()
        sent_entries: set[int] = set()
        if cursor is None:
            event_mark = hub.watermark
            entry_mark = await call(view.app.store.last_entry_no)
            yield frame("ready", {"company": company}, f"{event_mark}.{entry_mark}")
        else:
            event_mark, entry_mark = cursor
            created = await call(
                view.service.list_operations,
                OperationQuery(company=company, after_entry_no=entry_mark, limit=1000),
            )
            for op in created:
                sent_entries.add(op.entry_no)
                entry_mark = max(entry_mark, op.entry_no)
                yield frame("created", await _full(view, op), f"{event_mark}.{entry_mark}")
            backlog = await call(
                view.service.company_events, company, after_id=event_mark, limit=10_000
            )
            for e in backlog:
                sent_events.add(e.id)
                event_mark = max(event_mark, e.id)
                name, data = event_data(e)
                yield frame(name, data, f"{event_mark}.{entry_mark}")
        floor = event_mark
        while True:
            if await request.is_disconnected():
                return
            try:
                item = await asyncio.wait_for(sub.queue.get(), KEEP_ALIVE)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if item is None:
                return
            if isinstance(item, Created):
                op = item.operation
                if op.entry_no in sent_entries or (op.entry_no <= entry_mark and cursor is None):
                    continue
                sent_entries.add(op.entry_no)
                entry_mark = max(entry_mark, op.entry_no)
                yield frame("created", await _full(view, op), f"{event_mark}.{entry_mark}")
                continue
            if item.id <= floor or item.id in sent_events:
                continue
            sent_events.add(item.id)
            event_mark = max(event_mark, item.id)
            name, data = event_data(item)
            yield frame(name, data, f"{event_mark}.{entry_mark}")
