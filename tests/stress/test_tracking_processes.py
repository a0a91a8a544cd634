"""Checkpoints survive a crash: a real worker process is killed with SIGKILL mid-run, the
rescuer hands the operation to a second worker, and the next attempt resumes from the last
checkpoint. On both databases.

The task (``track.items`` in tests/apps/tracking_app.py) appends every item it processes to
a file, so the test counts the work done independently of longops' own records.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps import tracking_app
from longops import Longops, Status
from longops.domain.operation import EventType, Outcome
from procs import start_worker, stop_workers, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def app(db_url: str) -> Iterator[Longops]:
    application = Longops(db_url)
    application.registry.add(tracking_app.items, name="track.items", max_attempts=3)
    yield application
    application.close()


def test_killed_worker_resumes_from_the_last_checkpoint(
    app: Longops, db_url: str, tmp_path: Path
) -> None:
    def worker() -> object:
        return start_worker(
            db_url,
            str(tmp_path / "unused-marks"),
            app="tracking_app:app",
            session_timeout=2.0,
            rescuer_interval=0.5,
        )

    first = worker()
    second = None
    try:
        handle = app.enqueue("track.items", str(tmp_path), n=1000, every=100)
        # Attempt 1 checkpoints at 100, 200, 300 and 400, then parks at item 450.
        wait_for(lambda: (tmp_path / "parked").exists(), timeout=60, what="first run parked")
        assert handle.refresh().checkpoint == {"next": 400, "sum": sum(range(400))}
        first.send_signal(signal.SIGKILL)  # type: ignore[attr-defined]
        first.wait(timeout=10)  # type: ignore[attr-defined]
        second = worker()
        op = handle.wait(120)
    finally:
        stop_workers([p for p in (first, second) if p is not None])  # type: ignore[misc]
    assert op.status is Status.FINISHED
    assert op.result == sum(range(1000))  # the resumed sum is the right one
    lines = (tmp_path / "processed").read_text().split()
    done = Counter(int(item) for item in lines[1::2])
    attempts_seen = {int(a) for a in lines[0::2]}
    assert set(done) == set(range(1000))  # every item processed ...
    assert sum(done.values()) <= 1100  # ... and at most one checkpoint's worth twice
    assert {i for i, n in done.items() if n > 1} == set(range(400, 451))
    assert attempts_seen == {1, 2}
    outcomes = [a.outcome for a in app.service.attempts(op.id)]
    assert outcomes == [Outcome.LOST, Outcome.SUCCESS]
    assert (op.checkpoint, op.checkpoint_at) == (None, None)
    assert EventType.CHECKPOINT in {e.type for e in app.service.events(op.id)}
