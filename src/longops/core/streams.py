"""Live streams of what happens to operations, for the REST API's and the pages' SSE.

One :class:`EventHub` per server process reads the timeline of every operation
(``Store.events_since``) and the operations created since its last look
(``Store.last_entry_no``), a few times a second, and, while someone listens for them, new
notifications (``Store.notifications_since``); it hands each new item to the subscribers
whose filter it passes. However many browsers and clients listen, the database sees one
reader.

Ids follow commit order only roughly on PostgreSQL: a transaction that took an event id
early may commit after one that took a later id (notifications alike). The hub therefore
hands items out in id order only (a :class:`Cursor` each for event ids, entry numbers and
notification ids): an item waits while a lower id is missing. A missing id is given up on
(a rolled-back write, a number burned by ``ON CONFLICT DO NOTHING``, a deleted row) once
every transaction that was writing to the database while it was missing has ended
(``Store.writers_snapshot`` / ``writers_done``), or at the latest after
:data:`GAP_TIMEOUT`. So the id of the last event a client received is a complete cursor:
every lower id was sent to it or will never exist, and ``Last-Event-ID`` resumes exactly.

Limits, by design: a write whose transaction stays open longer than :data:`GAP_TIMEOUT`
after a later id committed is not streamed live (it is in the timeline); while a long
transaction runs in the database, every missing id holds the streams back for up to that
long, and the hub's start waits as long for the transactions writing when it begins.

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

from longops.domain.filters import OperationFilter
from longops.domain.operation import Operation, OperationEvent
from longops.domain.read_models import Notification
from longops.store.base import Store

log = logging.getLogger("longops.streams")

POLL_INTERVAL = 0.2
"""Seconds between the hub's reads when nothing new came."""
GAP_TIMEOUT = 5.0
"""Seconds a missing event id is waited for before it is taken as a rolled-back write."""
QUEUE_LIMIT = 10_000
"""Items buffered per subscriber; a subscriber that falls this far behind is ended (its
client reconnects with ``Last-Event-ID`` and replays from the timeline)."""
WRITER_LAG = 0.25
"""Seconds after a gap is seen before the running writers are noted: a transaction takes
its transaction id when it first writes, just after it took the event id (microseconds)."""
STARTUP_POLL = 0.05
"""Seconds between the start's looks at the transactions writing when it began."""
READ_LIMIT = 1000
"""Rows per read of the timeline (and of new operations)."""


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
    """One listener: what it wants, and the items waiting for it, in key order."""

    operation_id: uuid.UUID | None = None
    companies: frozenset[str] | None = None
    """Only these companies' items (None: all)."""
    notifications_for: str | None = None
    """Also this user's notifications (None: no notifications at all)."""
    limit: int = QUEUE_LIMIT
    queue: asyncio.Queue[T | None] = field(default_factory=asyncio.Queue)
    dropped: bool = False
    """It fell ``limit`` items behind: what is queued is a gap-free prefix, then the end."""

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
        if self.dropped:
            return
        if self.queue.qsize() >= self.limit:
            # Dropping an item from the middle would leave a hole the client could not see
            # (its Last-Event-ID would be past it); ending after the items it has keeps the
            # stream gap-free, and the client resumes from the timeline.
            self.dropped = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(item)

    async def __aiter__(self) -> AsyncIterator[T]:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            yield item


class Cursor:
    """Releases items in the order of their keys (event ids, entry numbers), each once.

    An item is held while a lower key is missing: the transaction that took that key may
    not have committed yet. The lowest held item above a missing key was committed after
    the key was taken, so the key's writer was running when that item was first read. The
    key is given up on (a rolled-back write, a burned number, a deleted row) once every
    writer of that time has ended (``cleared_before``: items first read up to then), or
    once that item was first read ``gap_timeout`` seconds ago.

    Example::

        cursor = Cursor(start=10, gap_timeout=5.0)
        cursor.offer(12, item12, now)       # 11 is missing: held
        cursor.release(now)                 # []
        cursor.offer(11, item11, now + 1)   # 11 committed late
        cursor.release(now + 1)             # [item11, item12]
    """

    def __init__(self, start: int, gap_timeout: float) -> None:
        self.watermark = start
        """Every key at or below this was released or given up on."""
        self.gap_timeout = gap_timeout
        self.skipped = 0
        """Keys given up on so far."""
        self._held: dict[int, tuple[PageItem, float]] = {}

    @property
    def held(self) -> int:
        return len(self._held)

    def offer(self, key: int, item: PageItem, now: float) -> None:
        if key > self.watermark and key not in self._held:
            self._held[key] = (item, now)

    def stuck_since(self) -> float | None:
        """When the item above the first missing key was first read (None: no gap)."""
        if not self._held or self.watermark + 1 in self._held:
            return None
        return self._held[min(self._held)][1]

    def skip_to(self, key: int) -> None:
        """Nobody listens: everything up to ``key`` counts as handed out."""
        self.watermark = max(self.watermark, key)
        self._held = {k: v for k, v in self._held.items() if k > self.watermark}

    def release(self, now: float, cleared_before: float = float("-inf")) -> list[PageItem]:
        out: list[PageItem] = []
        held = self._held
        while held:
            nxt = self.watermark + 1
            found = held.pop(nxt, None)
            if found is not None:
                out.append(found[0])
                self.watermark = nxt
                continue
            low = min(held)
            seen = held[low][1]
            if seen > cleared_before and now - seen < self.gap_timeout:
                break
            log.info("gave up waiting for ids %d..%d (rolled back or deleted)", nxt, low - 1)
            self.skipped += low - nxt
            self.watermark = low - 1
        return out


class EventHub:
    """Reads new timeline events and new operations once for every subscriber, and hands
    them out in id (entry number) order."""

    def __init__(
        self,
        store: Store,
        *,
        poll_interval: float = POLL_INTERVAL,
        gap_timeout: float = GAP_TIMEOUT,
        read_limit: int = READ_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.clock = clock
        """Seconds, for the gap timeout (a test may pass its own)."""
        self.poll_interval = poll_interval
        self.gap_timeout = gap_timeout
        self.read_limit = read_limit
        self._subscribers: set[Subscription[Any]] = set()
        self._events = Cursor(0, gap_timeout)
        self._entries = Cursor(0, gap_timeout)
        self._notes = Cursor(0, gap_timeout)
        self._notes_live = False
        """Whether notifications are being read (someone subscribed to them)."""
        self._notes_lock = asyncio.Lock()
        self._token: tuple[str, float] | None = None
        """A snapshot of the running writers and when it was taken, while a gap waits."""
        self._cleared_before = float("-inf")
        """Every writer running when an item first read up to this time has ended."""
        self._idle: tuple[int, int, str | None, float] | None = None
        """While nobody listens: the newest ids, the writers then, and when noted."""
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.reads = 0
        """How many times the hub has read the database (one read serves everyone)."""
        self.start_checks = 0
        """How many times :meth:`start` asked whether the writers of its start had ended."""

    @property
    def watermark(self) -> int:
        """Every event at or below this id has been handed out; a subscription made now
        receives exactly the events above it."""
        return self._events.watermark

    @property
    def entry_watermark(self) -> int:
        """The same for created operations, by entry number."""
        return self._entries.watermark

    @property
    def skipped(self) -> int:
        """Event ids and entry numbers given up on (never committed, or deleted unread)."""
        return self._events.skipped + self._entries.skipped + self._notes.skipped

    @property
    def notification_watermark(self) -> int:
        """Notifications above this id may not have reached any listener yet: newer than
        the last one delivered, or written while nobody listened (the pages toast those a
        new page has not seen: ``longops.web.stream``)."""
        return self._notes.watermark

    async def start(self) -> None:
        """Start reading from now on (what happened before is read from the timeline).

        It starts at the newest ids, once the transactions writing then have ended (at
        most :data:`GAP_TIMEOUT`): an id below them that commits later would be below
        the watermark, and neither streamed live nor in a resuming client's backlog."""
        if self._task is not None:
            return
        top_event = await asyncio.to_thread(self.store.last_event_id)
        top_entry = await asyncio.to_thread(self.store.last_entry_no)
        await self._await_writers()
        self._events = Cursor(top_event, self.gap_timeout)
        self._entries = Cursor(top_entry, self.gap_timeout)
        self._task = asyncio.create_task(self._run(), name="longops-event-hub")

    async def _await_writers(self) -> None:
        # Past the moment a writer has taken an id but not yet its transaction id.
        await asyncio.sleep(WRITER_LAG)
        token = await asyncio.to_thread(self.store.writers_snapshot)
        if token is None:
            return
        started = self.clock()
        while self.clock() - started < self.gap_timeout:
            self.start_checks += 1
            if await asyncio.to_thread(self.store.writers_done, token):
                return
            await asyncio.sleep(STARTUP_POLL)
        log.warning("started while a transaction stays open: its events may not stream live")

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
        limit: int = QUEUE_LIMIT,
    ) -> AsyncIterator[Subscription[Item]]:
        """Items above the current watermarks that pass the filter, until the context ends.

        Read :attr:`watermark` right after entering (before any ``await``): the
        subscription receives exactly the events above it."""
        sub: Subscription[Item] = Subscription(
            operation_id, None if companies is None else frozenset(companies), None, limit
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
        (:class:`~longops.domain.read_models.Notification` items): the pages' toasts.

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
            await self._skip_idle()
            return False
        self._idle = None  # someone listens: read on from the watermarks
        self.reads += 1
        await self._check_writers()
        # Re-read from the watermarks (not from the highest id seen): a missing id that
        # commits later is below ids already read.
        # New operations first, then events: an operation seen in this read was committed
        # before the events were read, so everything committed before it is among them
        # (the tests rely on it to know the hub has read an event).
        ops = await asyncio.to_thread(
            self.store.list_operations,
            OperationFilter(after_entry_no=self._entries.watermark, limit=self.read_limit),
        )
        events = await asyncio.to_thread(
            self.store.events_since, self._events.watermark, self.read_limit
        )
        now = self.clock()
        for op in ops:
            self._entries.offer(op.entry_no, Created(op), now)
        for event in events:
            self._events.offer(event.id, event, now)
        # Releasing and dispatching take no await: a subscription is made either before an
        # item is handed out (and receives it) or after the watermark passed it.
        cleared = self._cleared_before
        released = self._entries.release(now, cleared) + self._events.release(now, cleared)
        for item in released:
            self._dispatch(item)
        full = len(events) == self.read_limit or len(ops) == self.read_limit
        more = full and bool(released)
        if await self._read_notes(cleared):
            more = True
        await self._watch_writers(now)
        return more

    async def _read_notes(self, cleared: float) -> bool:
        """New notifications, while someone listens for them; True when there may be more.

        Nobody listening: none are read, and a first listener starts from the newest."""
        if not any(sub.notifications_for is not None for sub in self._subscribers):
            self._notes_live = False
            return False
        if not self._notes_live:
            return False  # a first listener is setting the mark (subscribe_with_notifications)
        notes = await asyncio.to_thread(
            self.store.notifications_since, self._notes.watermark, self.read_limit
        )
        now = self.clock()
        for note in notes:
            self._notes.offer(note.id, note, now)
        released = self._notes.release(now, cleared)
        for item in released:
            self._dispatch(item)
        return len(notes) == self.read_limit and bool(released)

    async def _skip_idle(self) -> None:
        """Nobody listens: move the watermarks to the newest ids without reading the rows,
        in three steps a poll apart: note the newest ids; note the transactions writing
        (by then every writer of a lower id has its transaction id); once those have
        ended, no id below the noted ones can still commit, so skip to them."""
        self._notes_live = False
        if self._idle is None:
            top_event = await asyncio.to_thread(self.store.last_event_id)
            top_entry = await asyncio.to_thread(self.store.last_entry_no)
            self._idle = (top_event, top_entry, None, self.clock())
            return
        top_event, top_entry, token, noted = self._idle
        if token is None:
            if self.clock() - noted < WRITER_LAG:
                return
            token = await asyncio.to_thread(self.store.writers_snapshot)
            if token is not None:
                self._idle = (top_event, top_entry, token, noted)
                return
        elif self.clock() - noted < self.gap_timeout and not await asyncio.to_thread(
            self.store.writers_done, token
        ):
            return
        self._events.skip_to(top_event)
        self._entries.skip_to(top_entry)
        self._idle = None

    async def _check_writers(self) -> None:
        """Before a read: have the writers of the waiting snapshot all ended? Then every
        id missing when it was taken and still missing after this read never commits."""
        if self._token is None:
            return
        token, taken = self._token
        if await asyncio.to_thread(self.store.writers_done, token):
            self._cleared_before = max(self._cleared_before, taken - WRITER_LAG)
            self._token = None
        elif self.clock() - taken > self.gap_timeout:
            self._token = None  # a long transaction somewhere: the timeout decides

    async def _watch_writers(self, now: float) -> None:
        """After a read: while a gap waits, note the writers running now (once the gap is
        :data:`WRITER_LAG` old, so its writer surely has its transaction id)."""
        if self._token is not None:
            return
        cursors = (self._events, self._entries, self._notes)
        since = [s for s in (c.stuck_since() for c in cursors) if s is not None]
        if not any(self._cleared_before < s <= now - WRITER_LAG for s in since):
            return
        token = await asyncio.to_thread(self.store.writers_snapshot)
        if token is None:
            # One writer at a time (SQLite): a missing id below a visible one is gone.
            self._cleared_before = now
        else:
            self._token = (token, now)

    def _dispatch(self, item: PageItem) -> None:
        for sub in list(self._subscribers):
            if sub.wants(item):
                sub.offer(item)
