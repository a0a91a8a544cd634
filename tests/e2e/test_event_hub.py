"""The event hub on PostgreSQL with real concurrent transactions: ids that commit out of
order are handed out in id order and none is skipped while its transaction is open; an id
that never commits (rolled back) is given up on after the gap timeout, and only then.

The hub is driven one read at a time (``read_once``) and its gap timeout reads a clock the
test moves, so nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from longops import Longops
from longops.core.streams import Created, EventHub, Item, Subscription
from longops.domain.operation import OperationEvent

pytestmark = pytest.mark.postgres


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def app(pg_url: str) -> Iterator[Longops]:
    application = Longops(pg_url)
    application.registry.add(lambda: None, name="noop")
    yield application
    application.close()


def insert_event(conn: psycopg.Connection[Any], op_id: uuid.UUID, note: str) -> int:
    row = conn.execute(
        "INSERT INTO longops_operation_events (operation_id, company, at, type, run_no, data)"
        " VALUES (%s, 'default', now(), 'checkpoint', 1, json_build_object('note', %s::text))"
        " RETURNING id",
        (op_id, note),
    ).fetchone()
    assert row is not None
    return int(row[0])


def drain(sub: Subscription) -> list[Item | None]:
    out: list[Item | None] = []
    while not sub.queue.empty():
        out.append(sub.queue.get_nowait())
    return out


def event_ids(items: list[Item | None]) -> list[int]:
    return [i.id for i in items if isinstance(i, OperationEvent)]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_ids_committed_out_of_order_come_out_in_order(app: Longops, pg_url: str) -> None:
    op = app.enqueue("noop").id

    async def scenario() -> None:
        hub = EventHub(app.store, clock=Clock())
        await hub.start()
        await hub.stop()  # driven by hand from here on
        async with hub.subscribe(operation_id=op) as sub:
            with psycopg.connect(pg_url) as early, psycopg.connect(pg_url) as late:
                first = insert_event(early, op, "takes its id first, commits last")
                second = insert_event(late, op, "commits first")
                late.commit()
                await hub.read_once()
                assert drain(sub) == []  # the second is held: the first may still commit
                assert hub.watermark == first - 1
                early.commit()
            await hub.read_once()
            assert event_ids(drain(sub)) == [first, second]
            assert hub.watermark == second
            assert hub.skipped == 0

    run(scenario())


def test_a_rolled_back_id_is_given_up_once_its_writer_has_ended(app: Longops, pg_url: str) -> None:
    """No need to wait out the gap timeout: the hub notes the transactions running while
    the gap waits, and once they have all ended the missing id can never commit."""
    op = app.enqueue("noop").id
    clock = Clock()

    async def scenario() -> None:
        hub = EventHub(app.store, gap_timeout=5.0, clock=clock)
        await hub.start()
        await hub.stop()
        async with hub.subscribe(operation_id=op) as sub:
            with psycopg.connect(pg_url) as doomed, psycopg.connect(pg_url) as other:
                insert_event(doomed, op, "rolled back")
                kept = insert_event(other, op, "kept")
                other.commit()
                await hub.read_once()
                clock.now += 0.3  # past WRITER_LAG: the hub notes the running writers
                await hub.read_once()
                await hub.read_once()
                assert drain(sub) == []  # the doomed writer is among them, still open
                doomed.rollback()
            # Other tests' transactions share the cluster's transaction ids: wait (in fake
            # time well below the 5 s timeout) until every noted writer has ended.
            got: list[int] = []
            for _ in range(300):
                clock.now += 0.01
                await hub.read_once()
                got += event_ids(drain(sub))
                if got:
                    break
                await asyncio.sleep(0.05)
            assert got == [kept]
            assert clock.now - 1000.0 < 5.0
            assert hub.skipped == 1

    run(scenario())


def test_a_missing_id_waits_out_the_gap_timeout_while_a_writer_runs(
    app: Longops, pg_url: str
) -> None:
    """A transaction that stays open (here an unrelated one) could be the missing id's
    writer: the id is given up on only after the gap timeout."""
    op = app.enqueue("noop").id
    clock = Clock()

    async def scenario() -> None:
        hub = EventHub(app.store, gap_timeout=5.0, clock=clock)
        await hub.start()
        await hub.stop()
        async with hub.subscribe(operation_id=op) as sub:
            with (
                psycopg.connect(pg_url) as lingering,
                psycopg.connect(pg_url) as doomed,
                psycopg.connect(pg_url) as other,
            ):
                lingering.execute("SELECT pg_current_xact_id()")  # holds a transaction id
                lost = insert_event(doomed, op, "rolled back")
                kept = insert_event(other, op, "kept")
                other.commit()
                doomed.rollback()
                await hub.read_once()
                for _ in range(49):
                    clock.now += 0.1
                    await hub.read_once()
                assert drain(sub) == []  # 4.9 s: the lingering writer may be the one
                clock.now += 0.2
                await hub.read_once()
                assert event_ids(drain(sub)) == [kept]
                assert hub.skipped == 1
                assert hub.watermark == kept > lost

    run(scenario())


def test_new_operations_committed_out_of_order_come_out_in_order(app: Longops, pg_url: str) -> None:
    async def scenario() -> None:
        hub = EventHub(app.store, clock=Clock())
        await hub.start()
        await hub.stop()
        async with hub.subscribe(companies=["default"]) as sub:
            with psycopg.connect(pg_url) as early:
                held = app.enqueue("noop", connection=early)
                quick = app.enqueue("noop")
                await hub.read_once()
                assert [i for i in drain(sub) if isinstance(i, Created)] == []
                early.commit()
            await hub.read_once()
            created = [i.operation.id for i in drain(sub) if isinstance(i, Created)]
            assert created == [held.id, quick.id]

    run(scenario())


def test_a_subscriber_that_falls_behind_ends_after_a_gap_free_prefix(
    app: Longops, pg_url: str
) -> None:
    op = app.enqueue("noop").id

    async def scenario() -> None:
        hub = EventHub(app.store, clock=Clock())
        await hub.start()
        await hub.stop()
        async with hub.subscribe(operation_id=op, limit=3) as sub:
            with psycopg.connect(pg_url) as conn:
                for n in range(5):
                    insert_event(conn, op, str(n))
            await hub.read_once()
            items = drain(sub)
            assert items[-1] is None  # the end: the client resumes with Last-Event-ID
            got = event_ids(items)
            assert len(got) == 3
            assert got == list(range(got[0], got[0] + 3))  # the first three, no hole
            assert sub.dropped

    run(scenario())


def test_the_hub_starts_once_the_writers_of_its_start_have_ended(app: Longops, pg_url: str) -> None:
    """An event in flight while the hub starts commits below the newest id: starting there
    at once would leave it out of every live stream and of every resume's backlog."""
    op = app.enqueue("noop").id

    async def scenario() -> None:
        hub = EventHub(app.store, clock=Clock())
        with psycopg.connect(pg_url) as early, psycopg.connect(pg_url) as late:
            first = insert_event(early, op, "in flight at the start")
            second = insert_event(late, op, "committed before the start")
            late.commit()
            starting = asyncio.create_task(hub.start())
            while hub.start_checks < 3:  # the start has looked, and found it running
                assert not starting.done()
                await asyncio.sleep(0.01)
            assert not starting.done()
            early.commit()
        await asyncio.wait_for(starting, 30)
        await hub.stop()
        assert hub.watermark == second
        # Both are in the timeline a resuming client reads up to the watermark.
        assert [e.id for e in app.store.list_events(op)] == [first, second]

    run(scenario())


def test_with_nobody_listening_the_hub_skips_ahead_only_past_ended_writers(
    app: Longops, pg_url: str
) -> None:
    """Idle, the hub does not read the rows: it moves to the newest ids once the
    transactions writing when it noted them have ended."""
    op = app.enqueue("noop").id
    clock = Clock()

    async def scenario() -> None:
        hub = EventHub(app.store, clock=clock)
        await hub.start()
        await hub.stop()
        start = hub.watermark
        with psycopg.connect(pg_url) as early, psycopg.connect(pg_url) as late:
            insert_event(early, op, "in flight")
            newest = insert_event(late, op, "committed")
            late.commit()
            for _ in range(10):
                clock.now += 0.3
                await hub.read_once()
            assert hub.watermark == start  # the writer of a lower id still runs
            early.commit()
        for _ in range(3):
            clock.now += 0.3
            await hub.read_once()
        assert hub.watermark == newest
        assert hub.reads == 0  # no rows were read

    run(scenario())
