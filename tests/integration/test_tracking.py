"""Operation tracking end to end, on both databases: live progress and its write budget,
the cancellation ladder (cooperative, forced, overdue, before start), timeouts, process
isolation and child crashes, checkpoints across a drain, stall flags, and wait reasons.

The tasks live in ``tests/apps/tracking_app.py`` (module level, so child processes find
them). A task that must tell the test something writes a note file; the test waits on that
condition with a deadline (``wait_for``), never on a sleep.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

import pytest

from apps import tracking_app
from longops import FrozenClock, Longops, Status
from longops.domain.operation import CancelMode, EventType, Outcome, StopMode
from longops.domain.recurrence import Recurrence
from longops.domain.waiting import WaitCode
from longops.services.stall import StallDetector
from longops.store.base import ClaimParams
from longops.testing import Runner, active_session
from longops.worker.session import Worker
from procs import wait_for


@pytest.fixture
def app(db_url: str) -> Iterator[Longops]:
    application = tracking_app.app
    application.close()
    application.database_url = db_url
    yield application
    application.close()


def start_worker(app: Longops, **options: object) -> Worker:
    settings: dict[str, object] = {
        "concurrency": 4,
        "heartbeat_interval": 0.5,
        "session_timeout": 10,
        "poll_interval": 0.2,
        "progress_interval": 0.2,
        "grace_period": 5,
    }
    settings.update(options)
    worker = app.worker(**settings)
    worker.start()
    return worker


@pytest.fixture
def worker(app: Longops) -> Iterator[Worker]:
    w = start_worker(app)
    yield w
    w.stop(grace=2)


def go(folder: Path, name: str) -> None:
    (folder / name).write_text("")


def event_types(app: Longops, op_id: object) -> list[EventType]:
    return [e.type for e in app.service.events(op_id)]  # type: ignore[arg-type]


def progress_writes(app: Longops, op_id: object, run_no: int) -> int:
    events = app.service.events(op_id, types=(EventType.PROGRESS,))  # type: ignore[arg-type]
    return sum(1 for e in events if e.run_no == run_no)


# -- progress ---------------------------------------------------------------------------------
def test_progress_is_visible_while_running_and_steps_are_written_at_once(
    app: Longops, worker: Worker, tmp_path: Path
) -> None:
    handle = app.enqueue("track.paced", str(tmp_path), steps=3, items=4)

    def reading_is(step: int, completed: int) -> bool:
        progress = handle.refresh().progress
        return bool(
            progress is not None
            and progress.step_index == step
            and (progress.completed or 0) == completed
        )

    go(tmp_path, "go-1-1")
    wait_for(lambda: reading_is(1, 1), timeout=20, what="1 of 4 rows of step 1 visible")
    go(tmp_path, "go-1-2")
    go(tmp_path, "go-1-3")
    # Mid-run, the stored reading shows the step, the count, the unit, percent and message,
    # and (from its second reading on) the rate.
    wait_for(lambda: reading_is(1, 3), timeout=20, what="3 of 4 rows of step 1 visible")
    running = handle.refresh()
    assert running.status is Status.IN_PROCESS
    assert running.progress is not None
    assert running.progress.step_label == "Step 1 of 3: phase 1"
    assert (running.progress.total, running.progress.unit) == (4, "rows")
    assert running.progress.percent == pytest.approx(25.0)  # 3/4 of the first of 3 steps
    assert running.progress.message == "phase 1 started"
    assert running.progress.rate is not None
    for step in (1, 2, 3):
        for n in range(1, 5):
            go(tmp_path, f"go-{step}-{n}")
    op = handle.wait(30)
    assert op.status is Status.FINISHED
    assert op.progress is not None
    assert (op.progress.step_index, op.progress.completed, op.progress.percent) == (3, 4, 100.0)
    [attempt] = app.service.attempts(op.id)
    assert attempt.progress == op.progress
    # The budget: at most one write per interval, one per step, and one at the end.
    assert attempt.duration is not None
    budget = attempt.duration.total_seconds() / 0.2 + 3 + 2
    assert progress_writes(app, op.id, 1) + 1 <= budget


def test_a_million_advances_cost_memory_not_io(app: Longops, worker: Worker) -> None:
    handle = app.enqueue("track.count", 1_000_000)
    op = handle.wait(120)
    assert op.status is Status.FINISHED
    assert op.result == 1_000_000
    assert op.progress is not None
    assert (op.progress.completed, op.progress.percent) == (1_000_000, 100.0)
    [attempt] = app.service.attempts(op.id)
    assert attempt.duration is not None
    writes = progress_writes(app, op.id, 1) + 1  # + the final reading, written with the result
    assert writes <= attempt.duration.total_seconds() / 0.2 + 0 + 2
    assert writes < 1000  # a write per advance() would be a million


def test_bad_progress_input_fails_the_run_naming_the_field(app: Longops) -> None:
    handle = app.enqueue("track.bad_progress")
    Runner(app).run_until_idle()
    op = handle.refresh()
    assert op.status is Status.ERROR
    assert op.last_error == "ValidationError: completed: must be a finite number >= 0 (got -5)"


# -- cancellation -----------------------------------------------------------------------------
def test_cooperative_cancel_is_seen_quickly_and_recorded(
    app: Longops, worker: Worker, tmp_path: Path
) -> None:
    handle = app.enqueue("track.until_cancelled", str(tmp_path))
    wait_for(lambda: (tmp_path / "started").exists(), timeout=20, what="task started")
    asked_at = time.time()
    cancelling = app.service.cancel(handle.id, reason="wrong month", by="alice")
    assert cancelling.status is Status.IN_PROCESS
    assert cancelling.cancelling
    # PostgreSQL pushes the request (NOTIFY): seen within a second. SQLite workers poll
    # every poll_interval (0.2 s here).
    limit = 1.0 if app.store.dialect == "postgres" else 0.2 + 1.0
    wait_for(lambda: (tmp_path / "saw_cancel").exists(), timeout=limit, what="cancel seen")
    seen = float((tmp_path / "saw_cancel").read_text())
    assert seen - asked_at < limit
    op = handle.wait(20)
    assert op.status is Status.CANCELLED
    assert op.cancel_mode is CancelMode.COOPERATIVE
    cancellation = op.cancellation_json()
    assert cancellation is not None
    assert (cancellation["requested_by"], cancellation["reason"]) == ("alice", "wrong month")
    assert cancellation["took_seconds"] is not None
    assert cancellation["took_seconds"] >= 0
    [attempt] = app.service.attempts(op.id)
    assert (attempt.outcome, attempt.stop_mode) == (Outcome.CANCELLED, StopMode.COOPERATIVE)
    assert EventType.CANCEL_REQUESTED in event_types(app, op.id)


@pytest.mark.postgres
def test_a_cancel_pushed_before_the_claimed_run_is_registered_is_not_lost(
    pg_url: str, tmp_path: Path
) -> None:
    """The NOTIFY can arrive between the claim's commit and the worker noting the run; it
    must still be acted on at once, not at the next poll (every heartbeat, 60 s here)."""
    application = tracking_app.app
    application.close()
    application.database_url = pg_url
    committed, release = threading.Event(), threading.Event()
    real_claim = application.store.claim

    def held_claim(params: ClaimParams) -> list[object]:
        claimed = real_claim(params)
        if claimed:
            committed.set()
            release.wait(20)  # the dispatcher is held up before it registers the run
        return claimed  # type: ignore[return-value]

    application.store.claim = held_claim  # type: ignore[method-assign]
    worker = start_worker(application, heartbeat_interval=60, session_timeout=180, poll_interval=20)
    try:
        handle = application.enqueue("track.until_cancelled", str(tmp_path))
        assert committed.wait(20)
        application.service.cancel(handle.id, reason="early")
        # The worker has heard of it before it knows the run.
        wait_for(lambda: handle.id in worker.monitor.heard(), timeout=5, what="request pushed")
        released_at = time.time()
        release.set()
        # Well before the next poll (60 s), with room for a loaded machine (8 s was once
        # not enough in CI, with four test processes on two cores).
        wait_for(lambda: (tmp_path / "saw_cancel").exists(), timeout=25, what="cancel seen")
        assert float((tmp_path / "saw_cancel").read_text()) - released_at < 25
        assert handle.wait(20).status is Status.CANCELLED
    finally:
        release.set()
        worker.stop(grace=2)
        application.close()


def test_forced_cancel_kills_a_process_that_ignores_it_while_others_run(
    app: Longops, worker: Worker, tmp_path: Path
) -> None:
    handle = app.enqueue("track.spin", str(tmp_path))  # cancel_grace=1, ignores the signal
    wait_for(lambda: (tmp_path / "spin-1").exists(), timeout=30, what="child started")
    child_pid = int((tmp_path / "spin-1").read_text())
    app.service.cancel(handle.id, reason="stop it")
    # The worker keeps running other operations meanwhile.
    others = [app.enqueue("track.quick", i) for i in range(5)]
    finished = [h.wait(20) for h in others]
    assert all(o.status is Status.FINISHED for o in finished)
    op = handle.wait(30)
    assert op.status is Status.CANCELLED
    assert op.cancel_mode is CancelMode.FORCED
    assert max(o.ended_at for o in finished if o.ended_at) < op.ended_at  # type: ignore[operator]
    [attempt] = app.service.attempts(op.id)
    assert attempt.stop_mode is StopMode.FORCED
    assert attempt.error_message is not None
    assert "stopped by force" in attempt.error_message
    assert "child process died: signal 15 (SIGTERM)" in attempt.error_message
    with pytest.raises(ProcessLookupError):
        os.kill(child_pid, 0)
    # It took the grace period (1 s), not more than a few seconds.
    cancellation = op.cancellation_json()
    assert cancellation is not None
    assert cancellation["took_seconds"] >= 1.0


def test_force_skips_the_grace_period(app: Longops, worker: Worker, tmp_path: Path) -> None:
    handle = app.enqueue("track.patient_spin", str(tmp_path))  # a five-minute grace
    wait_for(lambda: (tmp_path / "spin-1").exists(), timeout=30, what="child started")
    app.service.cancel(handle.id, reason="cooperative first")
    time_asked = time.monotonic()
    forced = app.service.cancel(handle.id, reason="now", force=True)
    assert forced.cancel_request is not None
    assert forced.cancel_request.force
    op = handle.wait(60)
    assert time.monotonic() - time_asked < 60  # far inside the 300 s grace
    assert (op.status, op.cancel_mode) == (Status.CANCELLED, CancelMode.FORCED)


def test_async_task_ignoring_cancel_gets_asyncio_cancellation(
    app: Longops, worker: Worker, tmp_path: Path
) -> None:
    handle = app.enqueue("track.async_ignores", str(tmp_path))
    wait_for(lambda: (tmp_path / "async_started").exists(), timeout=20, what="task started")
    app.service.cancel(handle.id)
    op = handle.wait(20)
    assert (op.status, op.cancel_mode) == (Status.CANCELLED, CancelMode.FORCED)
    assert app.service.attempts(op.id)[0].stop_mode is StopMode.FORCED


def test_thread_task_ignoring_cancel_is_marked_overdue_and_its_result_discarded(
    app: Longops, worker: Worker, tmp_path: Path
) -> None:
    handle = app.enqueue("track.spin_thread", str(tmp_path))  # cancel_grace=0.5
    wait_for(lambda: (tmp_path / "spin_thread").exists(), timeout=20, what="task started")
    app.service.cancel(handle.id)
    overdue = wait_for(
        lambda: handle.refresh().cancel_overdue_at, timeout=20, what="marked cancel overdue"
    )
    assert handle.operation.status is Status.IN_PROCESS  # it cannot be killed
    assert EventType.CANCEL_OVERDUE in event_types(app, handle.id)
    go(tmp_path, "release")
    op = handle.wait(20)
    assert op.status is Status.CANCELLED
    assert op.cancel_mode is CancelMode.OVERDUE
    assert op.result is None  # "finished anyway" was discarded
    assert op.cancel_overdue_at == overdue


def test_the_handle_cancels_and_shows_progress_wait_reason_and_timeline(
    app: Longops, worker: Worker, tmp_path: Path
) -> None:
    later = app.enqueue("track.quick", delay=3600)
    reason = later.wait_reason()
    assert reason is not None
    assert reason.code is WaitCode.SCHEDULED
    handle = app.enqueue("track.until_cancelled", str(tmp_path))
    wait_for(lambda: handle.refresh().progress is not None, timeout=20, what="progress")
    assert handle.progress is not None
    assert handle.progress.message == "waiting to be cancelled"
    assert handle.wait_reason() is None  # running, not waiting
    cancelling = handle.cancel(reason="from the handle", by="dora")
    assert cancelling.cancelling
    op = handle.wait(20)
    assert (op.status, op.cancel_mode) == (Status.CANCELLED, CancelMode.COOPERATIVE)
    types = [e.type for e in handle.events()]
    assert types[0] is EventType.ATTEMPT_STARTED
    assert EventType.CANCEL_REQUESTED in types
    assert types[-1] is EventType.ATTEMPT_ENDED
    held = app.enqueue("track.quick", 3, delay=3600).hold()
    assert held.status is Status.ON_HOLD


def test_cancel_before_start_records_mode_who_and_why(app: Longops) -> None:
    handle = app.enqueue("track.quick", on_hold=True)
    op = app.service.cancel(handle.id, reason="duplicate", by="bob")
    assert op.status is Status.CANCELLED
    assert op.cancel_mode is CancelMode.BEFORE_START
    cancellation = op.cancellation_json()
    assert cancellation is not None
    assert (cancellation["requested_by"], cancellation["reason"]) == ("bob", "duplicate")
    assert cancellation["took_seconds"] == 0


def test_a_run_asked_to_stop_before_its_code_begins_never_starts(
    app: Longops, tmp_path: Path
) -> None:
    from longops.worker.executor import CANCEL, RunControl, execute

    session = active_session(app.clock.now())
    app.store.register_session(session)
    for task, args in (("track.side_effect", (str(tmp_path),)), ("track.spin", (str(tmp_path),))):
        handle = app.enqueue(task, *args)
        [claimed] = app.store.claim(ClaimParams(session.id, ("default",), 1, app.clock.now()))
        assert claimed.operation.id == handle.id
        control = RunControl(claimed, store=app.store, clock=app.clock, task=app.registry.get(task))
        control.ask_to_stop(CANCEL, "cancelled by ann", grace=30, force=True)
        result = execute(claimed, app.registry, app.clock, tracking_app.zone_utc(), control)
        assert app.store.finish_runs([result]) == [True]
        op = handle.refresh()
        assert (op.status, op.cancel_mode) == (Status.CANCELLED, CancelMode.BEFORE_START)
    assert not (tmp_path / "side_effect_ran").exists()
    assert not (tmp_path / "spin-1").exists()


def test_drain_kills_a_child_before_it_hands_the_run_back(app: Longops, tmp_path: Path) -> None:
    worker = start_worker(app)
    handle = app.enqueue("track.patient_spin", str(tmp_path))
    wait_for(lambda: (tmp_path / "spin-1").exists(), timeout=30, what="child started")
    child_pid = int((tmp_path / "spin-1").read_text())
    worker.stop(grace=0)
    with pytest.raises(ProcessLookupError):
        os.kill(child_pid, 0)  # dead (and reaped) before the hand-back was written
    op = handle.refresh()
    assert (op.status, op.status_reason) == (Status.READY, "interrupted")


def test_a_drain_of_an_operation_being_cancelled_ends_it_cancelled(
    app: Longops, tmp_path: Path
) -> None:
    worker = start_worker(app)
    handle = app.enqueue("track.spin_thread", str(tmp_path))  # ignores cancel requests
    wait_for(lambda: (tmp_path / "spin_thread").exists(), timeout=20, what="task started")
    app.service.cancel(handle.id, reason="stop")
    wait_for(lambda: handle.refresh().cancel_overdue_at, timeout=20, what="cancel overdue")
    worker.stop(grace=0)  # a deploy while it is Cancelling: it must not run again
    op = handle.refresh()
    assert (op.status, op.cancel_mode) == (Status.CANCELLED, CancelMode.OVERDUE)
    go(tmp_path, "release")


def test_a_lost_session_stops_its_children_at_once(app: Longops, tmp_path: Path) -> None:
    worker = start_worker(app, heartbeat_interval=0.3, session_timeout=60)
    try:
        handle = app.enqueue("track.patient_spin", str(tmp_path))  # a five-minute grace
        wait_for(lambda: (tmp_path / "spin-1").exists(), timeout=30, what="child started")
        child_pid = int((tmp_path / "spin-1").read_text())
        lost_session = worker.session_id
        # The fleet declares this worker's session lost (as if it had been silent).
        assert app.store.mark_lost_sessions(
            app.clock.now() + timedelta(hours=1), timedelta(seconds=60)
        ) == [lost_session]

        def dead() -> bool:
            try:
                os.kill(child_pid, 0)
            except ProcessLookupError:
                return True
            return False

        # Its next heartbeat learns it and stops the child, without waiting for the grace.
        wait_for(dead, timeout=15, what="the lost session's child killed")
        assert worker.session_id != lost_session
        app.service.cancel(handle.id, force=True)
    finally:
        worker.stop(grace=2)


def test_a_reading_reported_again_unchanged_is_not_rewritten_and_stalls(
    db_url: str, tmp_path: Path
) -> None:
    clock = FrozenClock(datetime.now(UTC))
    app = Longops(db_url, clock=clock)
    app.registry.add(tracking_app.same_progress, name="track.same_progress", stall_after=60)
    worker = start_worker(app, run_services=False, progress_interval=0.05)
    try:
        handle = app.enqueue("track.same_progress", str(tmp_path))

        def reported(n: int) -> bool:
            path = tmp_path / "reports"
            return path.exists() and int(path.read_text()) >= n

        wait_for(lambda: reported(100), timeout=20, what="first reports")
        first_writes = progress_writes(app, handle.id, 1)
        wait_for(lambda: reported(600), timeout=30, what="many more reports")
        assert progress_writes(app, handle.id, 1) == first_writes == 1
        clock.advance(seconds=60)
        assert StallDetector(app.store, clock).run_once() == 1
        go(tmp_path, "release")
        assert handle.wait(20).status is Status.FINISHED
    finally:
        worker.stop(grace=2)
        app.close()


def test_progress_history_is_of_the_latest_run(app: Longops) -> None:
    import json

    from longops.domain.progress import Progress
    from longops.store.base import ProgressUpdate, RunResult

    session = active_session(app.clock.now())
    app.store.register_session(session)
    handle = app.enqueue("track.quick", max_attempts=2)
    for run_no, values in ((1, (1, 2, 3)), (2, (7, 8))):
        [claimed] = app.store.claim(ClaimParams(session.id, ("default",), 1, app.clock.now()))
        for value in values:
            reading = json.dumps(Progress(completed=value, total=10).to_json())
            update = ProgressUpdate(handle.id, claimed.lease_token, app.clock.now(), reading, True)
            assert app.store.flush_progress([update]) == [True]
        status = Status.READY if run_no == 1 else Status.FINISHED
        outcome = Outcome.ERROR if run_no == 1 else Outcome.SUCCESS
        done = RunResult(
            handle.id, claimed.lease_token, claimed.run_no, app.clock.now(), outcome, status
        )
        assert app.store.finish_runs([done]) == [True]
    history = app.service.progress_history(handle.id)
    assert [h["completed"] for h in history] == [7, 8]
    assert [h["percent"] for h in history] == [70.0, 80.0]
    many = app.service.progress_history(handle.id, points=2)
    assert len(many) == 2


# -- timeouts ---------------------------------------------------------------------------------
def test_timeout_of_a_cooperative_task_is_retried(app: Longops, worker: Worker) -> None:
    handle = app.enqueue("track.sleepy")  # timeout 1 s, max_attempts 2
    op = handle.wait(30)
    assert op.status is Status.FINISHED
    assert op.result == "second attempt"
    first, second = app.service.attempts(op.id)
    assert (first.outcome, first.stop_mode) == (Outcome.TIMEOUT, StopMode.COOPERATIVE)
    assert first.error_message is not None
    assert first.error_message.startswith("timed out after 1 s")
    assert second.outcome is Outcome.SUCCESS
    assert EventType.TIMEOUT in event_types(app, op.id)


def test_timeout_kills_a_spinning_child_and_retries(
    app: Longops, worker: Worker, tmp_path: Path
) -> None:
    handle = app.enqueue("track.spin_timeout", str(tmp_path))
    op = handle.wait(60)
    assert op.status is Status.FINISHED
    first, second = app.service.attempts(op.id)
    assert (first.outcome, first.stop_mode) == (Outcome.TIMEOUT, StopMode.FORCED)
    assert second.outcome is Outcome.SUCCESS
    # With no attempt left, a timeout is the operation's error (Business Central's rule).
    last = app.enqueue("track.spin_timeout", str(tmp_path), max_attempts=1).wait(60)
    assert (last.status, last.status_reason) == (Status.ERROR, "timeout")


def test_a_process_tasks_timeout_counts_from_when_its_code_begins(
    app: Longops, worker: Worker
) -> None:
    from apps import slow_start_tasks  # noqa: F401  (registers track.slow_start)

    # The child's start-up and import take 2 s, the task's timeout is 1 s, its code a moment.
    op = app.enqueue("track.slow_start").wait(60)
    assert (op.status, op.result) == (Status.FINISHED, "began late, ran at once"), op.last_error
    [attempt] = app.service.attempts(op.id)
    assert attempt.outcome is Outcome.SUCCESS


# -- process isolation ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("exit", "child process died: exit code 1"),
        ("kill", "child process died: signal 9 (SIGKILL)"),
    ],
)
def test_a_dying_child_fails_the_attempt_and_the_worker_carries_on(
    app: Longops, worker: Worker, how: str, message: str
) -> None:
    op = app.enqueue("track.crash", how).wait(30)
    assert op.status is Status.ERROR
    assert op.last_error == message
    [attempt] = app.service.attempts(op.id)
    assert attempt.error_message == message
    assert attempt.progress is not None  # what it reported before it died is kept
    assert attempt.progress.completed == 1
    after = app.enqueue("track.quick", 7).wait(20)
    assert (after.status, after.result) == (Status.FINISHED, 7)
    assert app.service.attempts(after.id)[0].session_id == worker.session_id
    assert not worker.stopped


def test_progress_checkpoints_and_steps_cross_the_process_boundary(
    app: Longops, tmp_path: Path
) -> None:
    first = start_worker(app)
    try:
        handle = app.enqueue("track.in_child", str(tmp_path), items=4)
        go(tmp_path, "child-go-1")
        go(tmp_path, "child-go-2")
        wait_for(
            lambda: handle.refresh().checkpoint == {"done": 2}, timeout=30, what="checkpoint 2"
        )
        op = handle.refresh()
        assert op.progress is not None
        assert (op.progress.completed, op.progress.step_label) == (2, "Step 1 of 1: only step")
    finally:
        first.stop(grace=0)  # hand the run back mid-way (a drain)
    handed_back = handle.refresh()
    assert (handed_back.status, handed_back.status_reason) == (Status.READY, "interrupted")
    assert handed_back.checkpoint == {"done": 2}
    for i in (1, 2, 3, 4):
        go(tmp_path, f"child-go-{i}")
    second = start_worker(app)
    try:
        op = handle.wait(30)
    finally:
        second.stop(grace=2)
    assert op.status is Status.FINISHED
    assert op.result["resume"] == {"done": 2}  # the next attempt got the checkpoint
    assert (op.checkpoint, op.checkpoint_at) == (None, None)  # success clears it
    outcomes = [a.outcome for a in app.service.attempts(op.id)]
    assert outcomes == [Outcome.INTERRUPTED, Outcome.SUCCESS]


def test_process_isolation_needs_a_module_level_function(app: Longops) -> None:
    from longops import ValidationError

    def local() -> None: ...

    with pytest.raises(ValidationError, match="isolation: process isolation needs"):
        app.registry.add(local, name="track.local", isolation="process")


def test_child_is_replaced_after_max_runs(app: Longops) -> None:
    worker = start_worker(app, max_runs_per_child=2, concurrency=1)
    try:
        pids = [app.enqueue("track.in_child_pid").wait(30).result for _ in range(5)]
    finally:
        worker.stop(grace=2)
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]


def test_child_is_replaced_past_its_memory_limit(app: Longops) -> None:
    worker = start_worker(app, max_memory_per_child=1, concurrency=1)  # 1 byte: always past it
    try:
        pids = [app.enqueue("track.in_child_pid").wait(30).result for _ in range(3)]
    finally:
        worker.stop(grace=2)
    assert len(set(pids)) == 3


# -- stall detection --------------------------------------------------------------------------
def test_stall_is_flagged_after_stall_after_and_cleared_when_progress_moves(
    db_url: str, tmp_path: Path
) -> None:
    clock = FrozenClock(datetime.now(UTC))
    app = Longops(db_url, clock=clock)
    app.registry.add(tracking_app.paced, name="track.paced", stall_after=600)
    worker = start_worker(app, run_services=False)  # the test drives the detector itself
    try:
        handle = app.enqueue("track.paced", str(tmp_path), steps=1, items=3)
        go(tmp_path, "go-1-1")

        def first_item() -> bool:
            progress = handle.refresh().progress
            return progress is not None and progress.completed == 1

        wait_for(first_item, timeout=20, what="first item reported")
        detector = StallDetector(app.store, clock)
        clock.advance(seconds=599)
        assert detector.run_once() == 0
        clock.advance(seconds=1)
        assert detector.run_once() == 1
        assert handle.refresh().stalled_at == clock.now()
        assert handle.operation.to_json()["stalled"] is True
        go(tmp_path, "go-1-2")
        wait_for(lambda: handle.refresh().stalled_at is None, timeout=20, what="unflagged")
        types = event_types(app, handle.id)
        assert types.index(EventType.STALLED) < types.index(EventType.UNSTALLED)
        go(tmp_path, "go-1-3")
        assert handle.wait(20).status is Status.FINISHED
    finally:
        worker.stop(grace=2)
        app.close()


# -- wait reasons -----------------------------------------------------------------------------
def test_every_wait_reason(db_url: str) -> None:
    clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))  # a Monday, 09:00
    app = Longops(db_url, clock=clock)

    @app.task(name="w.ok")
    def ok() -> None: ...

    @app.task(name="w.fails", max_attempts=2, rerun_delay=60)
    def fails() -> None:
        raise RuntimeError("no")

    try:
        service = app.service
        app.set_category("POSTING", max_concurrent=1)
        app.set_category("PAUSED", paused=True)

        def reason(op_id: object) -> tuple[WaitCode, str]:
            op = service.get(op_id)  # type: ignore[arg-type]
            found = service.wait_reasons([op])[op.id]
            return found.code, found.message

        # Nobody serves the queue yet.
        due = app.enqueue("w.ok")
        assert reason(due.id)[0] is WaitCode.NO_WORKER
        session = active_session(clock.now(), ("default",))
        app.store.register_session(session)
        assert reason(due.id)[0] is WaitCode.DUE
        scheduled = app.enqueue("w.ok", delay=3600)
        assert reason(scheduled.id) == (
            WaitCode.SCHEDULED,
            f"scheduled for {(clock.now() + timedelta(hours=1)).isoformat()}",
        )
        # A failed attempt waiting for its retry.
        failing = app.enqueue("w.fails", queue="retries")
        runner = Runner(app, queues=("retries",))
        assert runner.run_once() == 1
        assert reason(failing.id)[0] is WaitCode.RETRY_BACKOFF
        # A category whose one slot is taken names the operation holding it.
        holder = app.enqueue("w.ok", category="POSTING", queue="posting")
        waiting = app.enqueue("w.ok", category="POSTING", queue="posting")
        posting = active_session(clock.now(), ("posting",))
        app.store.register_session(posting)
        [claimed] = app.store.claim(ClaimParams(posting.id, ("posting",), 1, clock.now()))
        assert claimed.operation.id == holder.id
        code, message = reason(waiting.id)
        assert code is WaitCode.CATEGORY_BUSY
        assert str(holder.id) in message
        assert service.wait_reasons([service.get(waiting.id)])[waiting.id].holders == (holder.id,)
        # The holder's snapshot from before the claim (what an enqueue answers with) is not
        # "waiting for a full category" held by itself: it runs, so it waits for nothing.
        assert holder.operation.status is Status.READY
        assert service.wait_reasons([holder.operation]) == {}
        paused_category = app.enqueue("w.ok", category="PAUSED")
        assert reason(paused_category.id)[0] is WaitCode.CATEGORY_PAUSED
        app.companies.pause_queue("default")
        assert reason(due.id)[0] is WaitCode.QUEUE_PAUSED
        app.companies.resume_queue("default")
        # A recurring operation outside its run window (22:00-23:00; it is 09:00).
        nightly = app.enqueue(
            "w.ok",
            recurrence=Recurrence(
                minutes_between_runs=60, starting_time=dtime(22), ending_time=dtime(23)
            ),
        )
        assert reason(nightly.id)[0] is WaitCode.OUTSIDE_RUN_WINDOW
        # Only ready operations wait.
        assert service.wait_reasons([service.get(holder.id)]) == {}
        # A company at its limit of operations in process, and a disabled one.
        app.add_company("LIMITED", max_in_process=1)
        app.set_category("ONE", company="LIMITED")
        busy = active_session(clock.now(), ("lim",))
        app.store.register_session(busy)
        running = app.enqueue("w.ok", company="LIMITED", queue="lim")
        queued = app.enqueue("w.ok", company="LIMITED", queue="lim")
        [took] = app.store.claim(ClaimParams(busy.id, ("lim",), 5, clock.now()))
        assert took.operation.id == running.id  # the limit let only one start
        code, message = reason(queued.id)
        assert code is WaitCode.COMPANY_QUOTA
        assert "runs 1 of at most 1" in message
        app.companies.disable_company("LIMITED")
        assert reason(queued.id)[0] is WaitCode.COMPANY_DISABLED
        # A queue served, but only for other companies.
        app.add_company("ELSEWHERE")
        only_a = dataclasses.replace(
            active_session(clock.now(), ("narrow",)), companies=("default",)
        )
        app.store.register_session(only_a)
        elsewhere = app.enqueue("w.ok", company="ELSEWHERE", queue="narrow")
        code, message = reason(elsewhere.id)
        assert code is WaitCode.NO_WORKER
        assert "company ELSEWHERE" in message
        runner.close()
    finally:
        app.close()


def test_memory_exits_count_only_the_runs_that_shared_the_workers_memory(
    app: Longops, tmp_path: Path
) -> None:
    # A thread task in flight counts a memory hand-back at each exit and fails at the bound
    # (2 here); a process-isolated run (its child's memory is its own) is handed back
    # uncounted every time (worker/memory.py). The guard's reading is stood in for.
    thread_op = app.enqueue("track.until_cancelled", str(tmp_path)).id
    child_op = app.enqueue("track.spin", str(tmp_path)).id
    for exit_no in (1, 2):
        (tmp_path / "started").unlink(missing_ok=True)
        (tmp_path / "spin-1").unlink(missing_ok=True)
        w = start_worker(app, concurrency=3, max_memory=2**30, memory_hand_backs=2)
        try:
            wait_for(
                lambda: (tmp_path / "started").exists() and (tmp_path / "spin-1").exists(),
                timeout=30,
                what="both running",
            )
            w._memory_exceeded(3 * 2**30)
        finally:
            w.stop(grace=5)
        thread_last = app.service.attempts(thread_op)[-1]
        child_last = app.service.attempts(child_op)[-1]
        assert child_last.outcome is Outcome.INTERRUPTED
        assert "not counted against this run" in (child_last.error_message or "")
        assert app.service.get(child_op).status is Status.READY
        if exit_no == 1:
            assert thread_last.outcome is Outcome.INTERRUPTED
            assert "memory hand-back 1 of at most 1" in (thread_last.error_message or "")
            assert app.service.get(thread_op).status is Status.READY
    failed = app.service.get(thread_op)
    assert (failed.status, thread_last.outcome) == (Status.ERROR, Outcome.ERROR)
    assert "(max_memory 1024 MiB; 3072 MiB resident)" in (thread_last.error_message or "")
    assert "2 times in a row" in (thread_last.error_message or "")
    app.service.cancel(child_op)
