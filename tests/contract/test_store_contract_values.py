"""Store contract, part 5: value fidelity, categories, transactional enqueue and wake-ups.

Every test takes the ``store`` fixture and so runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest
from contract_support import add_company, build, claim, finish, get, insert, register

from longops.domain.clock import FrozenClock
from longops.domain.errors import ConfigurationError
from longops.domain.operation import Category, Company, NewOperation, Outcome
from longops.domain.status import Status, allowed_from
from longops.store.base import ActionParams, OperationQuery, Store, Wakeups

# -- values ----------------------------------------------------------------------------------


def test_times_in_other_zones_are_stored_as_the_same_instant(
    store: Store, clock: FrozenClock
) -> None:
    plus2 = timezone(timedelta(hours=2))
    start = datetime(2026, 1, 5, 12, 0, 0, 250_001, tzinfo=plus2)
    op = insert(store, clock, earliest_start_at=start)
    stored = get(store, op)
    assert stored.earliest_start_at == datetime(2026, 1, 5, 10, 0, 0, 250_001, tzinfo=UTC)
    sid = register(store, clock.now())
    assert claim(store, sid, datetime(2026, 1, 5, 10, 0, 0, 250_000, tzinfo=UTC)) == []
    [run] = claim(store, sid, datetime(2026, 1, 5, 12, 0, 0, 250_001, tzinfo=plus2))
    assert run.operation.id == op.id


def test_args_text_round_trips_exactly(store: Store, clock: FrozenClock) -> None:
    args = ["é☃ 𝄞", 'quote" back\\slash', "", "line\nbreak", 2**70, -(2**63), True, None]
    kwargs = {"ünïcode": "ok", "nested": {"list": [[], {}], "n": 0}}
    op = insert(store, clock, args=args, kwargs=kwargs)
    assert get(store, op).args == tuple(args)
    assert get(store, op).kwargs == kwargs


def test_args_floats_round_trip_exactly(store: Store, clock: FrozenClock) -> None:
    """A float argument comes back as the same float (value, type and sign)."""
    floats = [0.1, 2.5e-8, 1e16, 1e20, 1.7976931348623157e308, -0.0]
    op = insert(store, clock, args=floats, kwargs={"amount": 1e20})
    stored = get(store, op)
    # repr tells 1e+16 from 10000000000000000 and -0.0 from 0.0, which == does not
    assert [repr(a) for a in stored.args] == [repr(f) for f in floats]
    assert repr(stored.kwargs["amount"]) == "1e+20"


def test_args_with_nul_character_round_trip(store: Store, clock: FrozenClock) -> None:
    """NewOperation.build accepts any JSON-serialisable string, so the store must keep it."""
    new = build(clock, args=["before\x00after"], kwargs={"k": "\x00"})
    [op] = store.insert_operations([new])
    assert get(store, op).args == ("before\x00after",)
    assert get(store, op).kwargs == {"k": "\x00"}


def test_result_json_round_trips_exactly(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    op = insert(store, clock)
    [run] = claim(store, sid, clock.now())
    assert finish(store, run, clock.now(), result_json='{"rows": [1, "two", null], "ok": true}')
    assert get(store, op).result == {"rows": [1, "two", None], "ok": True}


# -- companies and categories ----------------------------------------------------------------


def test_categories_round_trip_and_upsert(store: Store) -> None:
    add_company(store, "acme")
    assert store.list_categories("default") == []
    assert store.get_category("default", "POSTING") is None
    made = store.upsert_category(Category("default", "POSTING", "Posting jobs", 2, False))
    assert made == Category("default", "POSTING", "Posting jobs", 2, False)
    store.upsert_category(Category("default", "ARCHIVE", max_concurrent=4, paused=True))
    store.upsert_category(Category("acme", "POSTING"))
    changed = store.upsert_category(Category("default", "POSTING", "Renamed", 7, True))
    assert changed == Category("default", "POSTING", "Renamed", 7, True)
    assert store.get_category("default", "POSTING") == changed
    assert store.list_categories("default") == [
        Category("default", "ARCHIVE", "", 4, True),
        changed,
    ]
    assert store.list_categories("acme") == [Category("acme", "POSTING", "", 1, False)]
    assert [c.name for c in store.list_companies()] == ["acme", "default"]


# -- transactional enqueue -------------------------------------------------------------------


def test_insert_with_caller_connection(store: Store, clock: FrozenClock) -> None:
    if store.dialect == "sqlite":
        with pytest.raises(ConfigurationError, match="needs PostgreSQL"):
            store.insert_operations([build(clock)], connection=object())
        assert store.list_operations(OperationQuery()) == []
        return
    rolled_back, committed = build(clock, task="rolled_back"), build(clock, task="committed")
    with psycopg.connect(store.url) as conn:
        [op] = store.insert_operations([rolled_back], connection=conn)
        assert op.id == rolled_back.id
        assert store.get_operation(op.id) is None  # not visible before the caller commits
        conn.rollback()
        store.insert_operations([committed], connection=conn)
        conn.commit()
    assert [op.task for op in store.list_operations(OperationQuery())] == ["committed"]
    with pytest.raises(ConfigurationError):
        store.insert_operations([build(clock)], connection=object())


# -- wake-ups --------------------------------------------------------------------------------


def _drain(w: Wakeups) -> None:
    for _ in range(10):
        if not w.wait(0):
            return
    pytest.fail("wake-ups kept firing with nothing written")


def test_an_interrupt_ends_a_wakeups_wait_at_once(store: Store) -> None:
    w = store.wakeups()
    try:
        _drain(w)
        waited: list[float] = []

        def wait() -> None:
            began = time.monotonic()
            w.wait(30)
            waited.append(time.monotonic() - began)

        thread = threading.Thread(target=wait)
        thread.start()
        time.sleep(0.3)  # not ordering: the interrupt must work whether it waits yet or not
        w.interrupt()
        thread.join(timeout=40)
        assert waited
        assert waited[0] < 2.0, waited
        # An interrupt before the wait ends the next wait; then waits time out again.
        w.interrupt()
        began = time.monotonic()
        w.wait(30)
        assert time.monotonic() - began < 2.0
        assert w.wait(0.1) is False
    finally:
        w.close()


def test_wakeups_fire_on_new_and_newly_ready_work(store: Store, clock: FrozenClock) -> None:
    w = store.wakeups()
    try:
        assert w.wait(0) is False
        op = insert(store, clock, on_hold=True)
        assert w.wait(10) is True
        _drain(w)
        ready = store.apply_action(
            ActionParams(op.id, None, allowed_from("set_ready"), Status.READY, clock.now())
        )
        assert ready is not None
        assert w.wait(10) is True
        _drain(w)
        sid = register(store, clock.now())
        [run] = claim(store, sid, clock.now())
        _drain(w)
        assert finish(store, run, clock.now(), status=Status.READY, outcome=Outcome.INTERRUPTED)
        assert w.wait(10) is True
    finally:
        w.close()


def test_upsert_company_creates_and_updates(store: Store) -> None:
    made = store.upsert_company(Company("CRONUS-UK", "Cronus UK", "Europe/London"))
    assert made == Company("CRONUS-UK", "Cronus UK", "Europe/London", True)
    changed = store.upsert_company(Company("CRONUS-UK", "CRONUS UK Ltd.", "UTC"))
    assert changed.display_name == "CRONUS UK Ltd."
    assert store.get_company("CRONUS-UK") == changed
    assert [c.name for c in store.list_companies()] == ["CRONUS-UK", "default"]


def test_get_operation_by_entry_no_respects_company(store: Store, clock: FrozenClock) -> None:
    [op] = store.insert_operations([NewOperation.build(task="t", now=clock.now())])
    found = store.get_operation_by_entry_no(op.entry_no)
    assert found is not None
    assert found.id == op.id
    assert store.get_operation_by_entry_no(op.entry_no, "other") is None
    assert store.get_operation_by_entry_no(op.entry_no + 1000) is None
