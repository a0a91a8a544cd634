"""The tracking side of the ``longops`` command: ``ops watch`` in a pseudo-terminal (a real
process), and in this process (``cli_inprocess``) ``ops watch`` off a terminal, ``ops show
--json`` with progress, wait reason, cancel request and stall flag, and ``ops cancel
--reason --force``; the worker is a real process."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps import tracking_app
from cli_inprocess import run_longops
from longops import Longops, Status
from procs import APPS, start_worker, stop_workers, wait_for

APP = "tracking_app:app"


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(APPS), e.get("PYTHONPATH", "")])
    e.update({"TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"})
    e.pop("NO_COLOR", None)
    return e


def longops(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    return run_longops(["--app", APP, "--database-url", db, *args], env=env())


class PtyCommand:
    """A ``longops`` command whose standard output and error are a pseudo-terminal."""

    def __init__(self, *args: str, db: str) -> None:
        master, slave = pty.openpty()
        cmd = [sys.executable, "-m", "longops.cli.main", "--database-url", db, *args]
        self.proc = subprocess.Popen(
            cmd, stdin=slave, stdout=slave, stderr=slave, env=env(), close_fds=True
        )
        os.close(slave)
        self.master = master
        self.chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.master], [], [], 0.1)
                if not ready:
                    if self.proc.poll() is not None:
                        return
                    continue
                data = os.read(self.master, 65536)
            except OSError:
                return  # the other side closed
            if not data:
                return
            with self._lock:
                self.chunks.append(data)

    @property
    def output(self) -> str:
        with self._lock:
            return b"".join(self.chunks).decode("utf-8", "replace")

    def wait(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        os.close(self.master)
        return code


@pytest.fixture
def app(db_url: str) -> Iterator[Longops]:
    application = tracking_app.app
    application.close()
    application.database_url = db_url
    yield application
    application.close()


@pytest.fixture
def worker(db_url: str, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = start_worker(db_url, str(tmp_path / "unused-marks"), app=APP, poll=0.2)
    yield proc
    stop_workers([proc])


def go(folder: Path, name: str) -> None:
    (folder / name).write_text("")


def test_watch_follows_a_run_with_a_live_bar_and_exits_0(
    app: Longops, worker: object, db_url: str, tmp_path: Path
) -> None:
    handle = app.enqueue("track.paced", str(tmp_path), steps=2, items=2)
    watch = PtyCommand("ops", "watch", str(handle.id), "--interval", "0.1", db=db_url)
    try:
        go(tmp_path, "go-1-1")
        # One of two rows of the first of two steps: a quarter of the bar.
        wait_for(lambda: "25.0%" in watch.output, timeout=30, what="watch shows 25%")
        assert "Step 1 of 2: phase 1" in watch.output
        assert "━" in watch.output  # Rich's bar
        go(tmp_path, "go-1-2")
        go(tmp_path, "go-2-1")
        wait_for(lambda: "75.0%" in watch.output, timeout=30, what="watch shows 75%")
        assert "Step 2 of 2: phase 2" in watch.output
        go(tmp_path, "go-2-2")
        code = watch.wait()
    finally:
        if watch.proc.poll() is None:
            watch.proc.kill()
    assert code == 0, watch.output
    assert "100.0%" in watch.output
    assert f"{handle.id} Finished" in watch.output


def test_watch_exit_codes_say_how_it_ended(
    app: Longops, worker: object, db_url: str, tmp_path: Path
) -> None:
    handle = app.enqueue("track.until_cancelled", str(tmp_path))
    wait_for(lambda: (tmp_path / "started").exists(), timeout=30, what="task started")
    watch = PtyCommand("ops", "watch", str(handle.id), db=db_url)
    wait_for(lambda: "In Process" in watch.output, timeout=30, what="watch started")
    app.service.cancel(handle.id, reason="enough")
    assert watch.wait() == 4, watch.output
    assert "Cancelled (cooperative)" in watch.output
    failed = app.enqueue("track.crash", "exit")
    watch = PtyCommand("ops", "watch", str(failed.id), db=db_url)
    assert watch.wait() == 3, watch.output
    assert "child process died: exit code 1" in watch.output
    held = app.enqueue("track.quick", on_hold=True)
    watch = PtyCommand("ops", "watch", str(held.operation.entry_no), "--timeout", "0.5", db=db_url)
    assert watch.wait() == 5, watch.output
    assert "still On Hold" in watch.output


def test_watch_off_a_terminal_prints_a_line_per_change(
    app: Longops, worker: object, db_url: str
) -> None:
    handle = app.enqueue("track.count", 50_000)
    result = longops("ops", "watch", str(handle.id), "--interval", "0.05", db=db_url)
    assert result.returncode == 0, result.stderr
    assert "━" not in result.stdout
    last = result.stdout.strip().splitlines()[-1]
    assert last == f"{handle.id} Finished"


def test_show_json_has_progress_wait_reason_cancel_request_and_stall(
    app: Longops, worker: object, db_url: str, tmp_path: Path
) -> None:
    # Ready but scheduled for later: a wait reason, no progress.
    later = app.enqueue("track.quick", delay=3600)
    shown = json.loads(longops("ops", "show", str(later.id), "--json", db=db_url).stdout)
    assert shown["status"] == "ready"
    assert shown["wait_reason"]["code"] == "scheduled"
    assert (shown["progress"], shown["cancel_request"], shown["stalled"]) == (None, None, False)
    # Running with progress, then asked to stop.
    running = app.enqueue("track.until_cancelled", str(tmp_path))
    wait_for(lambda: (tmp_path / "started").exists(), timeout=30, what="task started")
    wait_for(lambda: running.refresh().progress is not None, timeout=30, what="progress")
    out = longops("ops", "show", str(running.id), "--json", db=db_url)
    data = json.loads(out.stdout)
    assert data["status"] == "in_process"
    assert data["wait_reason"] is None
    assert data["progress"]["completed"] == 1
    assert data["progress"]["total"] == 100
    assert data["progress"]["percent"] == 1.0
    assert data["progress"]["message"] == "waiting to be cancelled"
    assert data["stalled"] is False
    assert data["attempts"][0]["outcome"] == "in_process"
    cancel = longops("ops", "cancel", str(running.id), "--reason", "test", "--by", "ann", db=db_url)
    assert cancel.returncode == 0, cancel.stderr
    op = running.wait(30)
    assert op.status is Status.CANCELLED
    data = json.loads(longops("ops", "show", str(running.id), "--json", db=db_url).stdout)
    request = data["cancel_request"]
    assert (request["requested_by"], request["reason"], request["mode"]) == (
        "ann",
        "test",
        "cooperative",
    )
    assert request["took_seconds"] >= 0
    human = longops("ops", "show", str(running.id), db=db_url).stdout
    assert "Cancel requested by ann: test; ended cooperative" in human


def test_cancel_force_from_the_command_line(
    app: Longops, worker: object, db_url: str, tmp_path: Path
) -> None:
    handle = app.enqueue("track.patient_spin", str(tmp_path))  # a five-minute grace
    wait_for(lambda: (tmp_path / "spin-1").exists(), timeout=60, what="child started")
    asked = longops("ops", "cancel", str(handle.id), "--force", "--reason", "runaway", db=db_url)
    assert asked.returncode == 0, asked.stderr
    assert "Cancelling" in asked.stdout
    op = handle.wait(60)
    assert (op.status.value, op.cancel_mode and op.cancel_mode.value) == ("cancelled", "forced")


def test_list_shows_progress_and_wait_reasons(
    app: Longops, worker: object, db_url: str, tmp_path: Path
) -> None:
    app.enqueue("track.quick", delay=3600)
    running = app.enqueue("track.paced", str(tmp_path), steps=2, items=2)
    go(tmp_path, "go-1-1")
    wait_for(
        lambda: (p := running.refresh().progress) is not None and p.completed == 1,
        timeout=30,
        what="progress",
    )
    listed = longops("ops", "list", db=db_url)
    assert listed.returncode == 0, listed.stderr
    assert "scheduled" in listed.stdout
    assert "[##........]  25%" in listed.stdout
    as_json = json.loads(longops("ops", "list", "--json", db=db_url).stdout)
    steps = {o["task"]: (o["progress"] or {}).get("step") for o in as_json}
    assert steps["track.paced"]["label"] == "Step 1 of 2: phase 1"
    reasons = {o["task"]: o["wait_reason"] for o in as_json}
    assert reasons["track.quick"]["code"] == "scheduled"
    assert reasons["track.paced"] is None
    for name in ("go-1-2", "go-2-1", "go-2-2"):
        go(tmp_path, name)
    assert running.wait(30).status is Status.FINISHED


def test_events_command_and_watch_input_checks(app: Longops, db_url: str) -> None:
    handle = app.enqueue("track.quick", on_hold=True)
    app.service.set_ready(handle.id, user="eve")
    shown = longops("ops", "events", str(handle.id), db=db_url)
    assert shown.returncode == 0, shown.stderr
    assert "status_changed" in shown.stdout
    assert "action=set_ready" in shown.stdout
    data = json.loads(longops("ops", "events", str(handle.id), "--json", db=db_url).stdout)
    assert [(e["type"], e["data"]["action"]) for e in data] == [("status_changed", "set_ready")]
    for bad in ("-5", "0", "nan"):
        refused = longops("ops", "watch", str(handle.id), "--timeout", bad, db=db_url)
        assert refused.returncode == 2
        assert "timeout: must be above 0" in refused.stderr
    unknown = longops("ops", "show", "nonsense", db=db_url)
    assert unknown.returncode == 2
    assert "id: must be an operation id (a UUID) or an entry number" in unknown.stderr


def test_show_gives_one_eta_in_the_row_and_the_detail(
    app: Longops, worker: object, db_url: str, tmp_path: Path
) -> None:
    # Issue 17: the row said "7m04s left" and the detail "ETA: 2m05s left (typical)" for the
    # same running operation: the row used the stored reading, the detail the estimate.
    past, now = tmp_path / "past", tmp_path / "now"
    past.mkdir()
    now.mkdir()
    go(past, "go-1-1")
    done = app.enqueue("track.paced", str(past), steps=1, items=1)
    assert done.wait(timeout=60).status is Status.FINISHED
    running = app.enqueue("track.paced", str(now), steps=1, items=2)
    try:
        wait_for(lambda: running.refresh().progress is not None, timeout=30, what="progress")
        human = longops("ops", "show", str(running.id), db=db_url).stdout
        detail = [line for line in human.splitlines() if line.strip().startswith("ETA:")]
        assert len(detail) == 1, human
        assert "(typical)" in detail[0], human  # the task's past run sized it
        assert human.count("(typical)") == 2, human  # the row says the same
    finally:
        go(now, "go-1-1")
        go(now, "go-1-2")
        running.wait(timeout=60)
