"""The completer's defence against a result the database refuses (a data error): the batch
is one statement, so one bad row fails it whole; the completer then writes the results one
by one, and a result still refused is recorded as an Error saying its text could not be
stored. The others land, none is lost or written twice, and the loop goes on. Also the
unit rule of ``longops.domain.text`` and ``store.faults.is_data_error``."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

import psycopg
import pytest

from longops.domain.clock import FrozenClock
from longops.domain.operation import Outcome
from longops.domain.progress import ProgressCounter
from longops.domain.status import Status
from longops.domain.text import storable_text
from longops.store.base import Claimed, ProgressUpdate, RunResult, Store
from longops.store.faults import is_data_error, is_fault
from longops.worker.completer import Completer
from longops.worker.dispatcher import Dispatcher
from longops.worker.handoff import Handoff
from longops.worker.monitor import Monitor
from longops.worker.options import WorkerOptions
from longops.worker.registry import TaskRegistry
from longops.worker.runs import RunTable

AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
POISON = "poison"


def _result(message: str | None = None, *, outcome: Outcome = Outcome.SUCCESS) -> RunResult:
    return RunResult(
        operation_id=uuid.uuid4(),
        lease_token=uuid.uuid4(),
        run_no=1,
        at=AT,
        outcome=outcome,
        status=Status.FINISHED if outcome is Outcome.SUCCESS else Status.ERROR,
        error_message=message,
        traceback=None if message is None else f"Traceback ...\n{message}\n",
        result_json=None if outcome is not Outcome.SUCCESS else "7",
    )


class RefusingStore:
    """``finish_runs`` fails whole, as PostgreSQL's one statement does, when any row holds
    :data:`POISON` in its message; records every batch it was asked to write."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls: list[list[RunResult]] = []
        self.written: list[RunResult] = []

    def finish_runs(self, results: Sequence[RunResult]) -> list[bool]:
        self.calls.append(list(results))
        if any(POISON in (r.error_message or "") for r in results):
            raise self.error
        self.written += results
        return [True] * len(results)


class Table:
    """The run table's two calls the completer makes."""

    def __init__(self) -> None:
        self.done: list[RunResult] = []

    def unwritten(self, result: RunResult) -> None:
        pass

    def written(self, results: Sequence[RunResult]) -> None:
        self.done += results


@pytest.mark.parametrize(
    "error",
    [
        psycopg.errors.UntranslatableCharacter("\\u0000 cannot be converted to text"),
        psycopg.DataError("value too long"),
        UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
        sqlite3.DataError("string or blob too big"),
    ],
)
def test_one_refused_result_does_not_fail_the_batch(error: Exception) -> None:
    store = RefusingStore(error)
    table = Table()
    completer = Completer(store, table)  # type: ignore[arg-type]
    good = [_result() for _ in range(5)]
    bad = _result(f"ValueError: {POISON}", outcome=Outcome.ERROR)
    batch = [good[0], good[1], bad, good[2], good[3], good[4]]
    for r in batch:
        completer.submit(r)

    completer.step()  # no exception: the loop goes on

    assert len(store.calls[0]) == 6  # the batch first, refused whole
    landed = {r.operation_id: r for r in store.written}
    assert set(landed) == {r.operation_id for r in batch}  # every one, once
    assert len(store.written) == 6
    for g in good:
        assert landed[g.operation_id] is g  # the others as they were
    kept = landed[bad.operation_id]
    assert kept.outcome is Outcome.ERROR
    assert kept.status is Status.ERROR
    assert kept.lease_token == bad.lease_token  # still under its lease
    assert kept.error_message is not None
    assert "could not be stored" in kept.error_message
    assert type(error).__name__ in kept.error_message
    assert kept.traceback is None
    assert kept.result_json is None
    assert not completer.take()  # nothing left waiting, nothing to write again
    assert table.done == batch  # the table forgets them as written


def test_a_fault_in_the_batch_still_raises_for_the_supervisor() -> None:
    store = RefusingStore(psycopg.OperationalError("server closed the connection"))
    completer = Completer(store, Table())  # type: ignore[arg-type]
    completer.submit(_result(f"x {POISON}", outcome=Outcome.ERROR))
    with pytest.raises(psycopg.OperationalError):
        completer.step()
    assert len(store.calls) == 1  # not split: a fault is waited out and the batch retried


@pytest.mark.parametrize(
    ("exc", "data"),
    [
        (psycopg.errors.UntranslatableCharacter("nul"), True),
        (psycopg.DataError("x"), True),
        (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), True),
        (sqlite3.DataError("x"), True),
        (psycopg.OperationalError("x"), False),
        (psycopg.errors.UniqueViolation("x"), False),
        (TypeError("x"), False),
    ],
)
def test_is_data_error(exc: Exception, data: bool) -> None:
    assert is_data_error(exc) is data
    if data:
        assert not is_fault(exc)


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("plain", "plain"),
        ("bad\x00nul", "bad\\x00nul"),
        ("\x00", "\\x00"),
        ("a\ud800b", "a\\ud800b"),
        ("é\x00\udfff€", "é\\x00\\udfff€"),
        ("pair \U0001f600 kept", "pair \U0001f600 kept"),
        ("already \\x00 escaped", "already \\x00 escaped"),
    ],
)
def test_storable_text(text: str, stored: str) -> None:
    assert storable_text(text) == stored
    storable_text(text).encode()  # UTF-8 can carry it
    assert storable_text(None) is None


def test_run_result_and_progress_apply_the_rule() -> None:
    r = _result("ValueError: a\x00b\ud800", outcome=Outcome.ERROR)
    assert r.error_message == "ValueError: a\\x00b\\ud800"
    assert r.traceback is not None
    assert "\x00" not in r.traceback
    counter = ProgressCounter()
    counter.step("s\x00", 1, 2)
    counter.set(completed=1, total=2, unit="u\x00", message="m\x00\udc80")
    reading = counter.snapshot()
    assert (reading.message, reading.unit, reading.step_name) == (
        "m\\x00\\udc80",
        "u\\x00",
        "s\\x00",
    )


class ClaimRefusingStore(RefusingStore):
    """A claim that carries results (``finish_and_claim``) fails on a refused row, as the
    one transaction does on PostgreSQL; a plain claim finds nothing."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.claims = 0

    def finish_and_claim(self, results: Sequence[RunResult], params: Any) -> Claimed:
        self.claims += 1
        if any(POISON in (r.error_message or "") for r in results):
            raise self.error
        raise AssertionError("not reached")

    def claim(self, params: Any) -> Claimed:
        self.claims += 1
        return Claimed()


def test_a_claim_carrying_a_refused_result_hands_them_back_to_the_completer() -> None:
    store = ClaimRefusingStore(psycopg.errors.UntranslatableCharacter("nul"))
    table = RunTable()
    completer = Completer(cast(Store, store), table)
    d = Dispatcher(
        cast(Store, store),
        TaskRegistry(),
        FrozenClock(),
        WorkerOptions(concurrency=2, poll_interval=1.0),
        table,
        work=Handoff(2, runs_on_loop=lambda c: False, run_async=None, add_runner=lambda: None),  # type: ignore[arg-type]
        session_id=uuid.uuid4,
        slot_freed=threading.Event(),
        wake_monitor=lambda: None,
        hand_back=lambda r: None,
        completer=completer,
    )
    batch = [_result(), _result(f"ValueError: {POISON}", outcome=Outcome.ERROR), _result()]
    for r in batch:
        completer.enqueue(r)
    completer.defer = True  # claims came back full: the next claim carries the results

    assert d.claim_once() is False  # no exception: the dispatcher loop goes on
    assert completer.defer is False  # the completer writes them itself now
    assert store.written == []
    completer.step()
    assert [r.operation_id for r in store.written] == [r.operation_id for r in batch]
    assert "could not be stored" in (store.written[1].error_message or "")


class ProgressRefusingStore:
    def __init__(self) -> None:
        self.calls: list[list[ProgressUpdate]] = []

    def flush_progress(self, updates: Sequence[ProgressUpdate]) -> list[bool]:
        self.calls.append(list(updates))
        if any(POISON in u.progress_json for u in updates):
            raise psycopg.errors.UntranslatableCharacter("nul")
        return [True] * len(updates)


def test_a_refused_progress_reading_is_skipped_and_the_others_written() -> None:
    store = ProgressRefusingStore()
    monitor = Monitor(cast(Store, store), FrozenClock(), WorkerOptions(), RunTable(), listener=None)
    updates = [
        ProgressUpdate(uuid.uuid4(), uuid.uuid4(), AT, text, moved=True)
        for text in ('{"message":"a"}', f'{{"message":"{POISON}"}}', '{"message":"b"}')
    ]
    # Skipped counts as applied: the run is not stopped as if fenced.
    assert monitor._write_progress(updates) == [True, True, True]
    assert [len(c) for c in store.calls] == [3, 1, 1, 1]
