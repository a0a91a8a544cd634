"""``longops worker --max-memory``: a thread task that leaks past the limit makes the worker
hand its run back (no attempt spent) and exit with its own code; a fresh worker finishes
the operation. Real worker processes, both databases."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.stress_app import create_marks_table, stress_app_on
from longops import Longops, Status
from longops.domain.errors import ValidationError
from longops.domain.operation import Outcome
from longops.worker.memory import EXIT_MEMORY, parse_size
from procs import APPS, start_worker, stop_workers

pytestmark = pytest.mark.slow


@pytest.fixture
def app(db_url: str) -> Iterator[Longops]:
    with stress_app_on(db_url) as application:
        yield application


def test_a_leaking_thread_task_makes_the_worker_hand_back_and_exit_for_a_fresh_one(
    app: Longops, db_url: str, tmp_path: Path
) -> None:
    marks = db_url if db_url.startswith("postgresql") else str(tmp_path / "marks.db")
    create_marks_table(marks)
    # A worker starts at about 60 MiB; the task leaks 8 MiB steps up to 400 MiB.
    handle = app.enqueue("stress.hoard", str(tmp_path), 400)
    first = start_worker(db_url, marks, concurrency=2, extra=("--max-memory", "200MiB"))
    try:
        code = first.wait(timeout=60)
        stderr = first.stderr.read().decode() if first.stderr else ""
    finally:
        stop_workers([first])
    assert code == EXIT_MEMORY, stderr
    assert "past its limit of 200 MiB" in stderr
    op = handle.refresh()
    # Handed back: ready again at once, and the attempt it had was not spent.
    assert (op.status, op.status_reason, op.attempt_count) == (Status.READY, "interrupted", 0)
    [handed_back] = app.service.attempts(op.id)
    assert handed_back.outcome is Outcome.INTERRUPTED
    assert handed_back.error_message is not None
    assert "went past its limit (max_memory 200 MiB)" in handed_back.error_message
    second = start_worker(db_url, marks, concurrency=2, extra=("--max-memory", "200MiB"))
    try:
        done = handle.wait(60)
    finally:
        codes = stop_workers([second])
    assert done.status is Status.FINISHED
    assert done.result.startswith("finished on a fresh worker")
    assert codes == [0]
    attempts = app.service.attempts(op.id)
    assert [(a.outcome, a.attempt) for a in attempts] == [
        (Outcome.INTERRUPTED, 1),
        (Outcome.SUCCESS, 1),
    ]
    assert attempts[0].session_id != attempts[1].session_id


@pytest.mark.parametrize(
    ("text", "size"),
    [("512MiB", 512 * 2**20), ("2G", 2 * 2**30), ("1.5GiB", 3 * 2**29), ("800MB", 800 * 10**6)],
)
def test_sizes_are_read_as_people_write_them(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "12XB", "-5M", "512", "1 K"])
def test_bad_sizes_are_refused_naming_the_option(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_size(text, "--max-memory")
    assert caught.value.field == "--max-memory"


def test_the_worker_command_refuses_a_bad_size_before_it_starts(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(APPS)}
    done = subprocess.run(
        [sys.executable, "-m", "longops.cli.main", "--app", "stress_app:app",
         "--database-url", f"sqlite:///{tmp_path / 'x.db'}", "worker", "--max-memory", "2 lots"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--max-memory" in done.stderr
    assert "must be a size such as 512MiB" in done.stderr


def test_an_operation_that_leaks_on_every_run_fails_after_its_memory_hand_backs(
    app: Longops, db_url: str, tmp_path: Path
) -> None:
    # Without the bound, each fresh worker would claim it, pass the limit and exit 75 again:
    # the fleet restarting forever. The third exit in a row with it in flight fails it.
    marks = db_url if db_url.startswith("postgresql") else str(tmp_path / "marks.db")
    create_marks_table(marks)
    handle = app.enqueue("stress.grow_always", 400)
    messages: list[str] = []
    for exit_no in (1, 2, 3):
        worker = start_worker(db_url, marks, concurrency=2, extra=("--max-memory", "200MiB"))
        try:
            code = worker.wait(timeout=60)
            stderr = worker.stderr.read().decode() if worker.stderr else ""
        finally:
            stop_workers([worker])
        assert code == EXIT_MEMORY, stderr
        op = handle.refresh()
        attempts = app.service.attempts(op.id)
        assert len(attempts) == exit_no
        messages.append(attempts[-1].error_message or "")
        if exit_no < 3:
            assert (op.status, op.status_reason, op.attempt_count) == (
                Status.READY, "interrupted", 0,
            )  # fmt: skip
            assert attempts[-1].outcome is Outcome.INTERRUPTED
            assert f"memory hand-back {exit_no} of at most 2" in messages[-1]
    assert "went past its limit (max_memory 200 MiB)" in messages[0]
    assert (op.status, op.status_reason) == (Status.ERROR, "error")
    assert [a.outcome for a in attempts] == [
        Outcome.INTERRUPTED, Outcome.INTERRUPTED, Outcome.ERROR,
    ]  # fmt: skip
    assert messages[-1].startswith("MemoryLimitExceeded: the worker's memory went past its limit")
    assert "(max_memory 200 MiB;" in messages[-1]
    assert "3 times in a row" in messages[-1]
    # A person's restart begins a new row: the next memory exit hands it back again.
    app.service.restart(op.id)
    worker = start_worker(db_url, marks, concurrency=2, extra=("--max-memory", "200MiB"))
    try:
        code = worker.wait(timeout=60)
    finally:
        stop_workers([worker])
    assert code == EXIT_MEMORY
    again = handle.refresh()
    assert (again.status, again.status_reason) == (Status.READY, "interrupted")
    last = app.service.attempts(op.id)[-1].error_message or ""
    assert "memory hand-back 1 of at most 2" in last
