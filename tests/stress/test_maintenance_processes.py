"""Maintenance mode with real worker processes, on both databases (issue 15, Must show).

Two ``longops worker`` processes of 25 slots run 50 operations while 500 wait. Maintenance
mode starts: over 10 s, sampled from the database until the deadline, nothing is claimed;
the runs that end within the drain timeout finish, the others are handed back with their
attempt not spent (status reason ``maintenance``); an enqueue is accepted and waits with
the wait reason ``maintenance``. Maintenance mode stops: every operation finishes.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from apps.maintenance_app import tasks_into
from longops import EnqueueRequest, Longops, Priority, Status
from longops.domain.operation import Outcome
from longops.domain.status import StatusReason
from longops.domain.waiting import WaitCode
from procs import start_worker, stop_workers, wait_for

pytestmark = pytest.mark.slow

RUNNING, WAITING = 50, 500
DRAIN_TIMEOUT = 8.0
WATCH = 10.0


@pytest.fixture
def app(db_url: str) -> Iterator[Longops]:
    application = tasks_into(Longops(db_url))
    yield application
    application.close()


def _attempts(db_url: str) -> int:
    """Attempt rows: every claim inserts one per run, so no new rows means no new claims."""
    sql = "SELECT count(*) FROM longops_attempts"
    if db_url.startswith("postgresql"):
        with psycopg.connect(db_url) as conn:
            row = conn.execute(sql).fetchone()
    else:
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        try:
            row = conn.execute(sql).fetchone()
        finally:
            conn.close()
    assert row is not None
    return int(row[0])


def _count(app: Longops, status: Status) -> int:
    return app.service.count_operations("default").get(status, 0)


def test_maintenance_stops_claims_drains_and_resumes(
    app: Longops, db_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "markers"
    folder.mkdir()
    finishing = [
        app.enqueue("maint.work", 4.0, priority=Priority.HIGH).id for _ in range(RUNNING // 2)
    ]
    lingering = [
        app.enqueue("maint.long", str(folder), priority=Priority.HIGH).id
        for _ in range(RUNNING // 2)
    ]
    app.service.enqueue_many(
        [EnqueueRequest(task="maint.quick", args=(n,)) for n in range(WAITING)]
    )
    workers = [
        start_worker(
            db_url,
            str(folder),
            concurrency=RUNNING // 2,
            app="maintenance_app:app",
            poll=0.5,
            grace=30.0,
        )
        for _ in range(2)
    ]
    try:
        wait_for(
            lambda: _count(app, Status.IN_PROCESS) == RUNNING,
            timeout=60,
            what="50 operations running",
        )
        mode = app.maintenance.start(reason="upgrade to 2.0", drain_timeout=DRAIN_TIMEOUT)
        assert mode.active
        assert mode.reason == "upgrade to 2.0"
        claimed = _attempts(db_url)
        assert claimed == RUNNING

        # Enqueueing goes on; the new operation waits for maintenance mode, with its reason.
        late = app.enqueue("maint.quick", -1)
        waits = app.service.wait_reasons([app.service.get(late.id)])
        assert waits[late.id].code is WaitCode.MAINTENANCE
        assert "upgrade to 2.0" in waits[late.id].message

        # No new claims for 10 s, read from the database until the deadline.
        deadline = time.monotonic() + WATCH
        samples = 0
        while time.monotonic() < deadline:
            assert _attempts(db_url) == claimed, "a claim landed during maintenance mode"
            samples += 1
            time.sleep(0.2)
        assert samples >= 20

        # The runs that could finish did; the others were handed back, attempt not spent.
        def settled() -> bool:
            return _count(app, Status.IN_PROCESS) == 0

        wait_for(settled, timeout=30, what="every run finished or handed back")
        for op_id in finishing:
            assert app.service.get(op_id).status is Status.FINISHED
        for op_id in lingering:
            op = app.service.get(op_id)
            assert op.status is Status.READY, op
            assert op.status_reason is StatusReason.MAINTENANCE
            assert op.attempt_count == 0, "the handed-back attempt was spent"
            [attempt] = app.service.attempts(op_id)
            assert attempt.outcome is Outcome.INTERRUPTED
            assert "maintenance mode (upgrade to 2.0)" in (attempt.error_message or "")
        assert _attempts(db_url) == claimed
        assert _count(app, Status.READY) == len(lingering) + WAITING + 1

        app.maintenance.stop()
        wait_for(
            lambda: _count(app, Status.FINISHED) == RUNNING + WAITING + 1,
            timeout=180,
            interval=0.5,
            what="all 551 operations finished",
        )
        assert _count(app, Status.ERROR) == 0
        for op_id in lingering:
            assert app.service.get(op_id).result == "second run"
    finally:
        codes = stop_workers(workers)
    assert codes == [0, 0]
