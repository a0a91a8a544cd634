"""Live streams of what happens to operations, for the REST API's and the pages' SSE.

One :class:`EventHub` per server process reads the timeline of every operation
(``Store.events_since``) and the operations created since its last look
(``Store.last_entry_no``), a few times a second, and, while someone listens for them, new
notifications (``Store.notifications_since``); it hands each new item to the subscribers
whose filter it passes. However many browsers and clients listen, the database sees one
reader.

Ids follow commit order only roughly on PostgreSQL: a transaction that took an event id
early may commit after one that took a later id (notifications alike). The hub therefore
reads each sequence from a watermark below which every id has been seen, skips the ids it
has already delivered, and gives up on a missing id (a rolled-back transaction) after
:data:`GAP_TIMEOUT`.

Example::

    hub = EventHub(store)
    await hub.start()
    async with hub.subscribe(operation_id=op.id) as feed:
        async for item in feed:
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from longops.domain.operation import Operation, OperationEvent
from longops.domain.pages import Notification
from longops.store.base import OperationQuery, Store

log = logging.getLogger("longops.streams")

POLL_INTERVAL = 0.2
"""Seconds between the hub's reads when nothing new came."""
GAP_TIMEOUT = 5.0
"""Seconds a missing event id is waited for before it is taken as a rolled-back write."""
QUEUE_LIMIT = 10_000
"""Items buffered per subscriber; a subscriber that falls this far behind is dropped (its
client reconnects with ``Last-Event-ID`` and replays from the timeline)."""


@dataclass(frozen=True, slots=True)
class Created:
    """An operation was created (the list streams show it)."""

    operation: Operation


Item = OperationEvent | Created
"""What :meth:`EventHub.subscribe` yields."""
PageItem = OperationEvent | Created | Notification
"""What :meth:`EventHub.subscribe_with_notifications` yields: also the user's new
notifications (the pages' toasts)."""
T = TypeVar("T", Item, PageItem)


@dataclass(eq=False)
class Subscription(Generic[T]):
    """One listener: what it wants, and the items waiting for it."""

    operation_id: uuid.UUID | None = None
    companies: frozenset[str] | None = None
    """Only these companies' items (None: all)."""
    notifications_for: str | None = None
    """Also this user's notifications (None: no notifications at all)."""
    queue: asyncio.Queue[T | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    dropped: bool = False

    def wants(self, item: PageItem) -> bool:
        if isinstance(item, Notification):
            if self.notifications_for is None or item.user != self.notifications_for:
                return False
            return self.companies is None or item.company in self.companies
        if isinstance(item, Created):
            op = item.operation
            if self.operation_id is not None:
                return False
            return self.companies is None or op.company in self.companies
        if self.operation_id is not None and item.operation_id != self.operation_id:
            return False
        return self.companies is None or item.company in self.companies

    def offer(self, item: T) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped = True
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(None)  # tells the reader it fell behind

    async def __aiter__(self) -> AsyncIterator[T]:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            yield item


class EventHub:
    """Reads new timeline events and new operations once for every subscriber."""

    def __init__(
        self,
        store: Store,
        *,
        poll_interval: float = POLL_INTERVAL,
        gap_timeout: float = GAP_TIMEOUT,
    ) -> None:
        self.store = store
        self.poll_interval = poll_interval
        self.gap_timeout = gap_timeout
        self._subscribers: set[Subscription[Any]] = set()
        self._events = _Marks(gap_timeout)
        self._notes = _Marks(gap_timeout)
        self._notes_live = False
        """Whether notifications are being read (someone subscribed to them)."""
        self._notes_lock = asyncio.Lock()
        self._entry_no = 0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.reads = 0
        """How many times the hub has read the database (one read serves everyone)."""

    @property
    def watermark(self) -> int:
        """Every event id at or below this has been delivered or given up on."""
        return self._events.mark

    @property
    def notification_watermark(self) -> int:
        """Notifications above this id may not have reached any listener yet: newer than
        the last one delivered, or written while nobody listened (the pages toast those a
        new page has not seen: ``longops.web.stream``)."""
        return self._notes.mark

    async def start(self) -> None:
        """Start reading from now on (what happened before is read from the timeline)."""
        if self._task is not None:
            return
        self._events.mark = await asyncio.to_thread(self.store.last_event_id)
        self._entry_no = await asyncio.to_thread(self.store.last_entry_no)
        self._task = asyncio.create_task(self._run(), name="longops-event-hub")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sub in list(self._subscribers):
            sub.queue.put_nowait(None)

    @contextlib.asynccontextmanager
    async def subscribe(
        self,
        *,
        operation_id: uuid.UUID | None = None,
        companies: Iterable[str] | None = None,
    ) -> AsyncIterator[Subscription[Item]]:
        """Items from now on that pass the filter, until the context ends."""
        sub: Subscription[Item] = Subscription(
            operation_id, None if companies is None else frozenset(companies)
        )
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)

    @contextlib.asynccontextmanager
    async def subscribe_with_notifications(
        self,
        user: str,
        *,
        operation_id: uuid.UUID | None = None,
        companies: Iterable[str] | None = None,
    ) -> AsyncIterator[Subscription[PageItem]]:
        """As :meth:`subscribe`, and also ``user``'s new notifications of ``companies``
        (:class:`~longops.domain.pages.Notification` items): the pages' toasts.

        Example::

            async with hub.subscribe_with_notifications("alice", companies=["CRONUS"]) as feed:
                async for item in feed:
                    if isinstance(item, Notification):
                        toast(item.title, item.kind.caption)
        """
        sub: Subscription[PageItem] = Subscription(
            operation_id, None if companies is None else frozenset(companies), user
        )
        self._subscribers.add(sub)
        try:
            async with self._notes_lock:
                if not self._notes_live:
                    # The first listener since none: notifications from now on, not the
                    # backlog since the last listener left.
                    mark = await asyncio.to_thread(self.store.last_notification_id)
                    self._notes.skip_to(mark)
                    self._notes_live = True
            yield sub
        finally:
            self._subscribers.discard(sub)

    def poke(self) -> None:
        """Read again now (something was written by this process)."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                busy = await self.read_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("event hub read failed", exc_info=True)
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                self._wake.clear()

    async def read_once(self) -> bool:
        """One read of new events and operations; True when there may be more to read."""
        if not self._subscribers:
            # Nobody listens: keep the watermarks current without reading everything.
            self._events.skip_to(await asyncio.to_thread(self.store.last_event_id))
            self._notes_live = False
            self._entry_no = max(self._entry_no, await asyncio.to_thread(self.store.last_entry_no))
            return False
        self.reads += 1
        events = await asyncio.to_thread(self.store.events_since, self._events.mark, 1000)
        created = await asyncio.to_thread(self._new_operations)
        for op in created:
            self._dispatch(Created(op))
        for event in events:
            if self._events.take(event.id):
                self._dispatch(event)
        self._events.advance([e.id for e in events])
        more = len(events) == 1000
        if not any(sub.notifications_for is not None for sub in self._subscribers):
            self._notes_live = False  # nobody wants them: no reads
            return more
        if not self._notes_live:
            return more  # a first listener is setting the mark (subscribe_with_notifications)
        notes = await asyncio.to_thread(self.store.notifications_since, self._notes.mark, 1000)
        for note in notes:
            if self._notes.take(note.id):
                self._dispatch(note)
        self._notes.advance([n.id for n in notes])
        return more or len(notes) == 1000

    def _new_operations(self) -> list[Operation]:
        ops = self.store.list_operations(OperationQuery(after_entry_no=self._entry_no, limit=1000))
        if ops:
            self._entry_no = max(op.entry_no for op in ops)
        return ops

    def _dispatch(self, item: PageItem) -> None:
        for sub in list(self._subscribers):
            if sub.wants(item):
                sub.offer(item)


class _Marks:
    """Delivery bookkeeping of one id sequence (timeline events, notifications): the
    watermark below which every id was delivered or given up on, the ids delivered above
    it, and since when each missing id has been waited for."""

    def __init__(self, gap_timeout: float) -> None:
        self.gap_timeout = gap_timeout
        self.mark = 0
        self._delivered: set[int] = set()
        self._gaps: dict[int, float] = {}

    def take(self, item_id: int) -> bool:
        """True the first time an id is seen (deliver it); False for a repeat."""
        if item_id in self._delivered:
            return False
        self._delivered.add(item_id)
        return True

    def skip_to(self, mark: int) -> None:
        """Nobody listens: everything up to ``mark`` counts as seen."""
        self.mark = max(self.mark, mark)
        self._delivered.clear()
        self._gaps.clear()

    def advance(self, ids: list[int]) -> None:
        """Move the watermark past every id that is delivered or long missing."""
        now = time.monotonic()
        top = max(ids, default=self.mark)
        mark = self.mark
        while mark < top:
            nxt = mark + 1
            if nxt in self._delivered:
                self._delivered.discard(nxt)
                mark = nxt
                continue
            first_missed = self._gaps.setdefault(nxt, now)
            if now - first_missed < self.gap_timeout:
                break  # wait for it: its transaction may still commit
            self._gaps.pop(nxt, None)
            mark = nxt
        self.mark = mark


def snapshot_id(events: list[OperationEvent]) -> int:
    """The id a snapshot of an operation stands for: its latest event's (0 if none)."""
    return max((e.id for e in events), default=0)


Waker = Callable[[], None]
