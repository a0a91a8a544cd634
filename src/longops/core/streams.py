"""Live streams of what happens to operations, for the REST API's and the pages' SSE.

One :class:`EventHub` per server process reads the timeline of every operation
(``Store.events_since``) and the operations created since its last look
(``Store.last_entry_no``), a few times a second, and hands each new item to the
subscribers whose filter it passes. However many browsers and clients listen, the
database sees one reader.

Ids follow commit order only roughly on PostgreSQL: a transaction that took an event id
early may commit after one that took a later id. The hub therefore reads from a watermark
below which every id has been seen, skips the ids it has already delivered, and gives up
on a missing id (a rolled-back transaction) after :data:`GAP_TIMEOUT`.

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

from longops.domain.operation import Operation, OperationEvent
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


@dataclass(eq=False)
class Subscription:
    """One listener: what it wants, and the items waiting for it."""

    operation_id: uuid.UUID | None = None
    companies: frozenset[str] | None = None
    """Only these companies' items (None: all)."""
    queue: asyncio.Queue[Item | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    dropped: bool = False

    def wants(self, item: Item) -> bool:
        if isinstance(item, Created):
            op = item.operation
            if self.operation_id is not None:
                return False
            return self.companies is None or op.company in self.companies
        if self.operation_id is not None and item.operation_id != self.operation_id:
            return False
        return self.companies is None or item.company in self.companies

    def offer(self, item: Item) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped = True
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(None)  # tells the reader it fell behind

    async def __aiter__(self) -> AsyncIterator[Item]:
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
        self._subscribers: set[Subscription] = set()
        self._watermark = 0
        """Every event id at or below this has been delivered or given up on."""
        self._delivered: set[int] = set()
        self._gaps: dict[int, float] = {}
        self._entry_no = 0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.reads = 0
        """How many times the hub has read the database (one read serves everyone)."""

    @property
    def watermark(self) -> int:
        return self._watermark

    async def start(self) -> None:
        """Start reading from now on (what happened before is read from the timeline)."""
        if self._task is not None:
            return
        self._watermark = await asyncio.to_thread(self.store.last_event_id)
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
    ) -> AsyncIterator[Subscription]:
        """Items from now on that pass the filter, until the context ends."""
        sub = Subscription(operation_id, None if companies is None else frozenset(companies))
        self._subscribers.add(sub)
        try:
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
            # Nobody listens: keep the watermark current without reading everything.
            self._watermark = max(
                self._watermark, await asyncio.to_thread(self.store.last_event_id)
            )
            self._entry_no = max(self._entry_no, await asyncio.to_thread(self.store.last_entry_no))
            self._delivered.clear()
            self._gaps.clear()
            return False
        self.reads += 1
        events = await asyncio.to_thread(self.store.events_since, self._watermark, 1000)
        created = await asyncio.to_thread(self._new_operations)
        for op in created:
            self._dispatch(Created(op))
        for event in events:
            if event.id in self._delivered:
                continue
            self._delivered.add(event.id)
            self._dispatch(event)
        self._advance(events)
        return len(events) == 1000

    def _new_operations(self) -> list[Operation]:
        ops = self.store.list_operations(OperationQuery(after_entry_no=self._entry_no, limit=1000))
        if ops:
            self._entry_no = max(op.entry_no for op in ops)
        return ops

    def _advance(self, events: list[OperationEvent]) -> None:
        """Move the watermark past every id that is delivered or long missing."""
        now = time.monotonic()
        top = max((e.id for e in events), default=self._watermark)
        mark = self._watermark
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
        self._watermark = mark

    def _dispatch(self, item: Item) -> None:
        for sub in list(self._subscribers):
            if sub.wants(item):
                sub.offer(item)


def snapshot_id(events: list[OperationEvent]) -> int:
    """The id a snapshot of an operation stands for: its latest event's (0 if none)."""
    return max((e.id for e in events), default=0)


Waker = Callable[[], None]
