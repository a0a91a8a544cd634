"""Store contract, the reads the pages and the live streams make, and what remained
unexercised: the scope, timelines after an id, edits of an operation on hold, history
removal, drains, the fleet's figures, pushed cancel requests, web sessions.

Every test takes the ``store`` fixture and so runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import timedelta

from contract_support import add_company, category, claim, finish, insert, make_error, register

from longops.domain.clock import FrozenClock
from longops.domain.filters import SortCursor, SortKey, sort_value
from longops.domain.operation import Operation, Outcome, Priority, SessionEventType
from longops.domain.security import PermissionSet
from longops.domain.status import Status
from longops.domain.users import ApiToken, User, UserState, WebSession, token_hash
from longops.store.base import AttemptQuery, OperationEdit, OperationQuery, Store, open_store


def test_a_scope_naming_the_company_reads_its_rows(store: Store, clock: FrozenClock) -> None:
    op = insert(store, clock)
    with store.scope(["default"]):
        assert store.get_operation(op.id) == op
    with store.scope(None):  # every company
        assert store.get_operation(op.id) == op


def test_timelines_after_an_event_id(store: Store, clock: FrozenClock) -> None:
    add_company(store, "acme")
    start = store.last_event_id()
    assert store.last_entry_no() == 0
    a = insert(store, clock)
    b = insert(store, clock, company="acme")
    assert store.last_entry_no() == b.entry_no > a.entry_no
    sid = register(store, clock.now())
    assert len(claim(store, sid, clock.now())) == 2  # each claim writes its timeline
    events = store.events_since(start)
    assert {e.operation_id for e in events} == {a.id, b.id}
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert store.last_event_id() == events[-1].id
    assert store.events_since(start, limit=1) == events[:1]
    acme = store.company_events_since("acme", start)
    assert acme
    assert {e.operation_id for e in acme} == {b.id}
    assert store.company_events_since("acme", events[-1].id) == []


def test_an_operation_on_hold_is_edited_and_a_ready_one_is_not(
    store: Store, clock: FrozenClock
) -> None:
    category(store, "POSTING")
    held = insert(store, clock, on_hold=True)
    edit = OperationEdit(
        description="Month end",
        priority=Priority.HIGH,
        category="POSTING",
        earliest_start_at=clock.now() + timedelta(hours=1),
        recurrence=None,
        max_attempts=5,
        timeout=timedelta(minutes=7),
    )
    saved = store.update_operation(held.id, "default", edit, clock.advance(seconds=1))
    assert saved is not None
    assert (saved.description, saved.priority, saved.category, saved.max_attempts) == (
        "Month end", Priority.HIGH, "POSTING", 5
    )  # fmt: skip
    assert (saved.earliest_start_at, saved.timeout) == (edit.earliest_start_at, edit.timeout)
    ready = insert(store, clock)
    assert store.update_operation(ready.id, "default", edit, clock.now()) is None
    assert store.update_operation(held.id, "other", edit, clock.now()) is None  # company


def test_pages_read_models(store: Store, clock: FrozenClock) -> None:
    since = clock.now()
    sid = register(store, clock.now())
    category(store, "POSTING", max_concurrent=1)
    ok = insert(store, clock, description="first")
    [run] = claim(store, sid, clock.advance(timedelta(minutes=30)), limit=1)
    assert finish(store, run, clock.now())
    failed = make_error(store, clock, sid, clock.advance(timedelta(minutes=60)))
    running = insert(store, clock, category="POSTING", user="alice")
    waiting = insert(store, clock, category="POSTING")
    [run] = claim(store, sid, clock.now(), limit=1)
    assert run.operation.id == running.id
    assert store.runs_per_hour("default", since, 3) == [(0, 1, 0), (1, 0, 1)]
    # Buckets of 20 minutes: the run that ended at +30 min is in the second (issue 17).
    assert sorted(store.runs_per_hour("default", since, 3, bucket_seconds=1200)) == [
        (1, 1, 0),
        (4, 0, 1),
    ]
    [activity] = store.category_activity("default", cap=10)
    assert (activity.code, activity.running, activity.waiting) == ("POSTING", 1, 1)
    assert [o.id for o in store.list_running("default")] == [running.id]
    assert store.list_running("default", user="bob") == []
    assert store.list_running(companies=["other"]) == []
    counts = store.count_capped(
        [
            OperationQuery(company="default"),
            OperationQuery(company="default", statuses=(Status.READY,)),
            OperationQuery(company="default", text="first"),
        ],
        cap=3,
    )
    assert counts == [3, 1, 1]  # four operations, counted no further than 3
    entries = store.list_company_attempts(AttemptQuery(company="default"))
    assert [(e.attempt.operation_id, e.description) for e in entries] == [
        (running.id, None), (failed.id, None), (ok.id, "first")
    ]  # fmt: skip
    only = store.list_company_attempts(AttemptQuery("default", outcomes=(Outcome.ERROR,)))
    assert [e.attempt.operation_id for e in only] == [failed.id]
    assert waiting.status is Status.READY


def test_delete_attempts_removes_ended_history_only(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    insert(store, clock)
    [run] = claim(store, sid, clock.now())
    assert finish(store, run, clock.advance(seconds=1))
    insert(store, clock)
    [live] = claim(store, sid, clock.now())
    assert store.delete_attempts("default", clock.advance(seconds=10)) == 1
    assert store.list_attempts(run.operation.id) == []
    assert len(store.list_attempts(live.operation.id)) == 1  # still running: kept
    assert store.delete_attempts("default", clock.now()) == 0


def test_request_drain_and_fleet_metrics(store: Store, clock: FrozenClock) -> None:
    sid = register(store, clock.now())
    drained = store.request_drain(sid, clock.now(), "deploy")
    assert drained is not None
    assert drained.id == sid
    assert store.heartbeat(sid, clock.advance(seconds=1)) is not None
    events = store.list_session_events(sid)
    assert (SessionEventType.DRAIN_STARTED, "deploy") in [(e.type, e.comment) for e in events]
    assert store.request_drain(uuid.uuid4(), clock.now(), "x") is None
    insert(store, clock, queue="q1")
    snap = store.fleet_metrics(clock.advance(seconds=1))
    assert ("default", "q1", "ready", 1) in snap.operations
    assert "q1" in snap.oldest_ready
    assert snap.sessions_alive == 1


def test_cancel_requests_are_pushed_where_the_dialect_can(store: Store, clock: FrozenClock) -> None:
    listener = store.cancel_listener()
    if store.dialect == "sqlite":
        assert listener is None  # the worker polls cancel_requested
        return
    assert listener is not None
    try:
        sid = register(store, clock.now())
        insert(store, clock)
        [run] = claim(store, sid, clock.now())
        listener.wait(0)  # LISTEN is in place before the request
        assert store.request_cancel(run.operation.id, None, clock.now(), "u", "stop")
        heard: list[uuid.UUID] = []
        deadline = time.monotonic() + 10
        while not heard and time.monotonic() < deadline:
            heard += listener.wait(0.5)
        assert heard == [run.operation.id]
    finally:
        listener.close()


def test_web_sessions_and_credentials_with_their_user(store: Store, clock: FrozenClock) -> None:
    store.insert_user(
        User("alice", "Alice", UserState.ACTIVE, False, clock.now(), None, False, ()), None
    )
    store.grant("alice", "default", PermissionSet.VIEW, clock.now())
    now = clock.now()
    ws = WebSession(uuid.uuid4(), "alice", now, now, now + timedelta(hours=8), None, "127.0.0.1")
    store.insert_web_session(ws, token_hash("s3cret"))
    assert store.get_web_session(ws.id) == (ws, token_hash("s3cret"), UserState.ACTIVE)
    found = store.web_session_user(ws.id)
    assert found is not None
    assert (found[0], found[1], found[2].name) == (ws, token_hash("s3cret"), "alice")
    assert found[2].grants == (("default", PermissionSet.VIEW),)
    assert store.web_session_user(uuid.uuid4()) is None
    first = clock.advance(seconds=120)
    store.touch_web_session(ws.id, first, first - timedelta(minutes=1))
    store.touch_web_session(ws.id, clock.advance(seconds=1), first - timedelta(minutes=1))
    [listed] = store.list_web_sessions("alice")
    assert listed.last_seen_at == first  # the second touch was within the interval
    other = WebSession(uuid.uuid4(), "alice", now, now, now + timedelta(hours=8), None)
    store.insert_web_session(other, token_hash("x"))
    assert store.revoke_web_sessions("alice", clock.now(), ws.id) == 1
    assert store.revoke_web_sessions("alice", clock.now(), ws.id) == 0
    assert store.revoke_web_sessions("alice", clock.now()) == 1  # the other one
    assert all(s.revoked_at is not None for s in store.list_web_sessions("alice"))
    token = ApiToken(uuid.uuid4(), "alice", "ci", now, None, None, None)
    assert store.insert_token(token, token_hash("t"))
    with_user = store.token_user(token.id)
    assert with_user is not None
    assert (with_user[0], with_user[1], with_user[2].grants) == (
        token, token_hash("t"), (("default", PermissionSet.VIEW),)
    )  # fmt: skip
    assert store.token_user(uuid.uuid4()) is None


def test_closing_a_second_store_leaves_the_database_to_the_first(
    store: Store, clock: FrozenClock
) -> None:
    second = open_store(store.url)
    op = insert(second, clock)
    second.close()
    assert store.get_operation(op.id) == op


def test_list_search_sort_and_grouped_counts(store: Store, clock: FrozenClock) -> None:
    """The list's search (text, last error, entry number, id prefix, user prefix), its
    sorts with keyset paging (values missing included), and the per-status counts read in
    one go."""
    sid = register(store, clock.now())
    ops = [
        insert(store, clock, description=f"Batch {i}", user=("alice", "albert", None)[i % 3],
               priority=(Priority.HIGH, Priority.NORMAL, Priority.LOW)[i % 3])
        for i in range(7)
    ]  # fmt: skip
    failed = make_error(store, clock, sid, clock.advance(seconds=5), description="Failing one")
    [run] = claim(store, sid, clock.now(), limit=1)
    assert finish(store, run, clock.advance(seconds=3))
    [run2] = claim(store, sid, clock.now(), limit=1)
    assert finish(store, run2, clock.advance(seconds=1))
    # One left running: PostgreSQL reads running operations apart from the others (the
    # lists' indexes leave them out, migration 0016), so every search, sort and page below
    # merges the two.
    [running] = claim(store, sid, clock.advance(seconds=1), limit=1)
    q = OperationQuery(company="default")

    def ids(**kw: object) -> list[uuid.UUID]:
        return [o.id for o in store.list_operations(replace(q, **kw))]

    # Search: description, last error ("x"), entry number, id prefix (with or without dashes).
    assert ids(text="batch 3") == [ops[3].id]
    assert ids(text="x", statuses=(Status.ERROR,)) == [failed.id]
    assert ids(text=f"#{ops[5].entry_no}") == [ops[5].id]
    prefix = str(ops[4].id)[:13]
    assert ops[4].id in ids(text=prefix)
    assert ops[4].id in ids(text=prefix.replace("-", "").upper())
    assert ids(text="nothing like it") == []
    assert set(ids(user_prefix="AL")) == {o.id for o in ops if o.user}
    assert set(ids(user_prefix="ali")) == {o.id for o in ops if o.user == "alice"}
    assert ids(user_prefix="%") == []  # a LIKE wildcard is taken literally
    r = running.operation
    assert ids(text=(r.description or "").lower()) == [r.id]
    assert ids(text=f"#{r.entry_no}") == [r.id]
    assert ids(statuses=(Status.IN_PROCESS,)) == [r.id]
    # Entry-number pages, both directions, two at a time, the running one among them.
    for descending in (False, True):
        got, after, before = [], None, None
        while page := store.list_operations(
            replace(q, limit=2, descending=descending, after_entry_no=after, before_entry_no=before)
        ):
            got += [o.entry_no for o in page]
            after, before = (None, page[-1].entry_no) if descending else (page[-1].entry_no, None)
        assert got == sorted((o.entry_no for o in [*ops, failed]), reverse=descending)
    # Sorts: every key, both directions, paged two at a time, equals Python's order.
    every = store.list_operations(replace(q, limit=100))
    assert r.id in {o.id for o in every}
    assert len(every) == 8
    for key in SortKey:
        if key is SortKey.ENTRY_NO:
            continue
        for descending in (False, True):
            want = sorted(every, key=lambda o, k=key: _order(k, o), reverse=descending)
            got: list[uuid.UUID] = []
            cursor = None
            while True:
                page = store.list_operations(
                    replace(q, sort=key, descending=descending, limit=2, cursor=cursor)
                )
                got += [o.id for o in page]
                if len(page) < 2:
                    break
                cursor = SortCursor(page[-1].entry_no, sort_value(key, page[-1]))
            assert got == [o.id for o in want], (key, descending)
    # Counts per status in one read of at most `cap` matches (then lower bounds).
    counts = store.count_by_status(replace(q, text="batch", statuses=(Status.READY,)), cap=100)
    assert counts[Status.READY] == 4
    assert counts[Status.IN_PROCESS] == 1
    assert counts[Status.FINISHED] == 2
    assert counts[Status.ERROR] == 0
    assert sum(counts.values()) == 7
    assert store.count_capped(
        [replace(q, text="batch"), replace(q, statuses=(Status.IN_PROCESS,)), replace(q)], 100
    ) == [7, 1, 8]
    assert store.count_operations("default")[Status.IN_PROCESS] == 1
    capped = store.count_by_status(replace(q, text="batch"), cap=6)
    assert sum(capped.values()) == 6
    assert all(capped[s] <= counts[s] for s in Status)


def _order(key: SortKey, op: Operation) -> tuple[int, object, int]:
    """Python's view of a sort: a missing time or duration after every value, no user as ''."""
    value = sort_value(key, op)
    if key is SortKey.USER:
        return (0, value or "", op.entry_no)
    if value is None:
        return (1, 0, op.entry_no)
    return (0, value, op.entry_no)
