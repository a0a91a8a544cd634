"""Store contract: waits are bounded and large payloads never block a write.

Every test runs on SQLite and on PostgreSQL (the ``db_url`` fixture).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from contract_support import build, claim, get, insert, register, result

from longops.domain.clock import FrozenClock
from longops.domain.errors import DatabaseBusy
from longops.domain.status import Status
from longops.store.base import OperationQuery, RunResult, Store, open_store

SHORT = 0.3


@contextlib.contextmanager
def held_lock(db_url: str) -> Iterator[None]:
    """Another session holds the lock every write of longops needs, until the block ends."""
    if db_url.startswith("sqlite:"):
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    with psycopg.connect(db_url) as pg:
        pg.execute("LOCK TABLE longops_operations IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            pg.rollback()


@pytest.fixture
def short_store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url, lock_timeout=SHORT, busy_timeout=SHORT)
    yield s
    s.close()


def test_a_write_blocked_by_a_held_lock_fails_after_the_timeout(
    db_url: str, short_store: Store, clock: FrozenClock
) -> None:
    setting = "LONGOPS_BUSY_TIMEOUT" if db_url.startswith("sqlite:") else "LONGOPS_LOCK_TIMEOUT"
    with held_lock(db_url):
        began = time.monotonic()
        with pytest.raises(DatabaseBusy) as caught:
            short_store.insert_operations([build(clock)])
        waited = time.monotonic() - began
    assert caught.value.setting == setting
    assert setting in str(caught.value)
    assert "nothing was written" in str(caught.value)
    assert caught.value.retry_after >= 1
    # Bounded by the timeout, not by how long the lock is held (generous: a loaded machine).
    assert SHORT * 0.8 <= waited < 15
    assert short_store.list_operations(OperationQuery()) == []
    # Once the lock is gone the same write goes through.
    insert(short_store, clock)
    assert len(short_store.list_operations(OperationQuery())) == 1


def test_a_claim_blocked_by_a_held_lock_fails_and_the_next_one_claims(
    db_url: str, short_store: Store, clock: FrozenClock
) -> None:
    sid = register(short_store, clock.now())
    op = insert(short_store, clock)
    with held_lock(db_url), pytest.raises(DatabaseBusy):
        claim(short_store, sid, clock.now())
    [run] = claim(short_store, sid, clock.now())
    assert run.operation.id == op.id
    assert run.run_no == 1  # the refused claim spent nothing


def _finish_within(store: Store, results: list[RunResult], deadline: float) -> list[bool]:
    out: list[list[bool]] = []
    errors: list[BaseException] = []

    def write() -> None:
        try:
            out.append(store.finish_runs(results))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    writer.join(deadline)
    assert not writer.is_alive(), f"finish_runs still blocked after {deadline} s"
    if errors:
        raise errors[0]
    return out[0]


def test_finishing_runs_with_a_20_mb_result_is_never_blocked(
    store: Store, clock: FrozenClock
) -> None:
    """A payload larger than the client's socket buffers. On PostgreSQL a batch is one
    pipelined round trip, which used to wait forever (in one of two tries or so) for the
    reply to a statement not yet fully sent (see ``PostgresStore._round_trip``): so the
    write is repeated, each within its deadline."""
    sid = register(store, clock.now())
    big = json.dumps("x" * (20 * 1024 * 1024))
    for _ in range(4):
        big_op, small_op = insert(store, clock), insert(store, clock)
        runs = claim(store, sid, clock.now())
        at = clock.advance(seconds=1)
        results = [
            result(run, at, result_json=big if run.operation.id == big_op.id else "1")
            for run in runs
        ]
        assert _finish_within(store, results, deadline=60) == [True, True]
        stored = get(store, big_op)
        assert stored.status is Status.FINISHED
        assert isinstance(stored.result, str)
        assert len(stored.result) == 20 * 1024 * 1024
        assert get(store, small_op).result == 1
