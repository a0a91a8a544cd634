"""Races and crashes with real worker processes, on both databases.

Each test starts ``longops worker`` processes (tests/apps/stress_app.py) and checks what
they did from two independent records: longops' own rows, and the run marks the tasks
write to a side table.
"""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from apps.stress_app import create_marks_table
from longops import EnqueueRequest, Longops, Priority, Status
from longops.domain.operation import Outcome, SessionState
from longops.store.base import RunResult
from procs import start_worker, stop_workers, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def marks_url(db_url: str, tmp_path: Path) -> str:
    url = db_url if db_url.startswith("postgresql") else str(tmp_path / "marks.db")
    create_marks_table(url)
    return url


@pytest.fixture
def app(db_url: str) -> Iterator[Longops]:
    from apps.stress_app import tasks_into

    application = tasks_into(Longops(db_url))
    yield application
    application.close()


def marks(url: str, kind: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT operation_id, kind, pid, attempt, started, ended FROM run_marks"
    if url.startswith("postgresql"):
        with psycopg.connect(url) as conn:
            rows = conn.execute(sql).fetchall()
    else:
        conn = sqlite3.connect(url)
        rows = conn.execute(sql).fetchall()
        conn.close()
    keys = ("operation_id", "kind", "pid", "attempt", "started", "ended")
    found = [dict(zip(keys, r, strict=True)) for r in rows]
    return [m for m in found if kind is None or m["kind"] == kind]


def finished_count(app: Longops) -> int:
    return app.store.count_operations()[Status.FINISHED]


def test_each_operation_runs_exactly_once_under_contention(
    app: Longops, db_url: str, marks_url: str
) -> None:
    total = 5_000
    workers = [start_worker(db_url, marks_url, concurrency=4) for _ in range(4)]
    try:
        # Enqueue while the workers are already claiming, in several transactions.
        for batch in range(10):
            app.enqueue_many(
                [EnqueueRequest(task="stress.mark", args=(batch * 500 + i,)) for i in range(500)]
            )
        wait_for(lambda: finished_count(app) == total, timeout=240, what="all operations finished")
    finally:
        codes = stop_workers(workers)
    assert codes == [0, 0, 0, 0]
    runs = Counter(m["operation_id"] for m in marks(marks_url, "mark"))
    assert len(runs) == total
    assert set(runs.values()) == {1}, "some operation ran more than once"
    counts = app.store.count_operations()
    assert counts[Status.FINISHED] == total
    assert sum(counts.values()) == total
    pids = {m["pid"] for m in marks(marks_url, "mark")}
    assert len(pids) >= 2, "the work was not shared between processes"


def test_killed_worker_operation_runs_again_elsewhere_and_late_writes_are_fenced(
    app: Longops, db_url: str, marks_url: str, tmp_path: Path
) -> None:
    timeout, interval = 2.0, 0.5
    first = start_worker(db_url, marks_url, session_timeout=timeout, rescuer_interval=interval)
    second = None
    try:
        release = tmp_path / "release"
        handle = app.enqueue("stress.block", str(release))
        wait_for(lambda: marks(marks_url, "block_start"), timeout=30, what="first run started")
        running = handle.refresh()
        assert running.status is Status.IN_PROCESS
        stale_lease, stale_session = running.lease_token, running.session_id
        assert stale_lease is not None
        assert stale_session is not None

        second = start_worker(db_url, marks_url, session_timeout=timeout, rescuer_interval=interval)
        wait_for(
            lambda: len(app.store.list_sessions(active_only=True)) == 2,
            timeout=30,
            what="second worker's session",
        )
        killed_at = datetime.now(UTC)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)

        done = handle.wait(timeout=30)
        assert done.status is Status.FINISHED
        attempts = app.service.attempts(handle.id)
        assert [a.outcome for a in attempts] == [Outcome.LOST, Outcome.SUCCESS]
        assert attempts[0].session_id == stale_session
        assert attempts[1].session_id not in (None, stale_session)
        assert "lost" in (attempts[0].error_message or "")
        # Runs again within session_timeout + one rescuer interval (plus claim latency).
        restart_delay = (attempts[1].started_at - killed_at).total_seconds()
        assert restart_delay <= timeout + interval + 1.0, restart_delay
        lost = {s.id: s.state for s in app.store.list_sessions()}
        assert lost[stale_session] is SessionState.LOST

        # The killed session's late finish, with its old lease, changes nothing.
        before = app.service.get(handle.id)
        late = RunResult(
            operation_id=handle.id,
            lease_token=stale_lease,
            run_no=1,
            at=datetime.now(UTC),
            outcome=Outcome.ERROR,
            status=Status.ERROR,
            error_message="late write from a dead session",
        )
        assert app.store.finish_runs([late]) == [False]
        assert app.service.get(handle.id) == before
        assert app.service.attempts(handle.id) == attempts
    finally:
        stop_workers([p for p in (first, second) if p is not None])


@pytest.mark.parametrize("limit", [1, 3])
def test_category_limit_holds_across_workers_and_order_is_priority_then_fifo(
    app: Longops, db_url: str, marks_url: str, limit: int
) -> None:
    app.companies.set_category("default", "POSTING", max_concurrent=limit)
    priorities = [Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.NORMAL, Priority.LOW]
    ids = app.enqueue_many(
        [
            EnqueueRequest(
                task="stress.hold_slot",
                kwargs={"seconds": 0.01},
                category="POSTING",
                priority=priorities[i % len(priorities)],
            )
            for i in range(200)
        ]
    )
    workers = [start_worker(db_url, marks_url, concurrency=4) for _ in range(4)]
    try:
        wait_for(lambda: finished_count(app) == len(ids), timeout=240, what="category drained")
    finally:
        stop_workers(workers)

    slots = marks(marks_url, "slot")
    assert len(slots) == len(ids)
    events = sorted(
        [(m["started"], 1) for m in slots] + [(m["ended"], -1) for m in slots],
        key=lambda e: (e[0], e[1]),  # an end at the same instant as a start comes first
    )
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak <= limit
    if limit > 1:
        assert peak >= 2, "the limit was never used: the test would not catch a breach"

    attempts = [a for oid in ids for a in app.service.attempts(oid)]
    assert len(attempts) == len(ids)
    if limit == 1:
        ordered = sorted(attempts, key=lambda a: a.started_at)
        for earlier, later in itertools.pairwise(ordered):
            assert earlier.ended_at is not None
            assert earlier.ended_at <= later.started_at
        ops = {op.id: op for op in app.service.list_operations(_all_query())}
        sequence = [(ops[a.operation_id].priority, ops[a.operation_id].entry_no) for a in ordered]
        assert sequence == sorted(sequence), "not High -> Normal -> Low, then FIFO"


def _all_query() -> Any:
    from longops.store.base import OperationQuery

    return OperationQuery(limit=1000)


def test_sigterm_drains_short_runs_and_hands_back_long_ones(
    app: Longops, db_url: str, marks_url: str
) -> None:
    worker = start_worker(db_url, marks_url, concurrency=2, grace=4.0)
    try:
        short = app.enqueue("stress.sleep", 0.5)
        long = app.enqueue("stress.sleep", 300.0)
        wait_for(lambda: len(marks(marks_url, "sleep_start")) == 2, timeout=30, what="both running")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        stop_workers([worker])

    assert short.refresh().status is Status.FINISHED
    handed_back = long.refresh()
    assert handed_back.status is Status.READY
    assert handed_back.status_reason == "interrupted"
    assert handed_back.attempt_count == 0, "an interrupted run must not spend an attempt"
    [attempt] = app.service.attempts(long.id)
    assert attempt.outcome is Outcome.INTERRUPTED
    events = [e.type.value for e in app.store.list_session_events()]
    assert "drain_started" in events
    assert "logoff" in events


def test_second_sigterm_stops_at_once(app: Longops, db_url: str, marks_url: str) -> None:
    worker = start_worker(db_url, marks_url, concurrency=1, grace=120.0)
    try:
        long = app.enqueue("stress.sleep", 300.0)
        wait_for(lambda: marks(marks_url, "sleep_start"), timeout=30, what="run started")
        worker.send_signal(signal.SIGTERM)
        wait_for(
            lambda: any(e.type.value == "drain_started" for e in app.store.list_session_events()),
            timeout=30,
            what="drain started",
        )
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        assert time.monotonic() - started < 30
    finally:
        stop_workers([worker])
    assert long.refresh().status is Status.READY
    assert long.operation.status_reason == "interrupted"


def test_pid_marks_are_from_worker_processes(app: Longops, db_url: str, marks_url: str) -> None:
    worker = start_worker(db_url, marks_url, concurrency=1)
    try:
        handle = app.enqueue("stress.mark", 1)
        assert handle.wait(timeout=30).status is Status.FINISHED
    finally:
        stop_workers([worker])
    [m] = marks(marks_url, "mark")
    assert m["pid"] != os.getpid()
    assert uuid.UUID(m["operation_id"]) == handle.id
