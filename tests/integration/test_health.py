"""Health for supervisors: ``/livez`` (every loop runs) and ``/readyz`` (the database answers
and the worker claims), from a worker in this process and from a real ``longops worker
--health-port`` process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apps.stress_app import create_marks_table, stress_app_on
from longops import Longops
from longops.worker.health import Health, HealthServer, answer
from longops.worker.session import EXIT_LOOP_DIED, Worker
from procs import APPS, start_worker, stop_workers, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def probe(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}  # not listening (yet)


def body_when(port: int, path: str, code: int) -> dict[str, Any] | None:
    """The body of ``path`` when it answers ``code`` (for wait_for), else None."""
    got, body = probe(port, path)
    return body if got == code else None


@pytest.fixture
def app(db_url: str) -> Iterator[Longops]:
    with stress_app_on(db_url) as application:
        yield application


@pytest.fixture
def worker(app: Longops) -> Iterator[Worker]:
    w = app.worker(concurrency=2, poll_interval=0.2, heartbeat_interval=0.3, session_timeout=5)
    w.start()
    yield w
    w.stop(grace=1)


@pytest.fixture
def server(worker: Worker) -> Iterator[HealthServer]:
    s = HealthServer(worker.health, port=0).start()
    yield s
    s.close()


def test_answers_name_the_state_and_unknown_paths_are_404() -> None:
    good = Health(True, True, {"dispatcher": "running"})
    assert answer("/livez", lambda: good) == (
        200,
        {"status": "ok", "alive": True, "ready": True, "loops": {"dispatcher": "running"}},
    )
    assert answer("/readyz", lambda: Health(True, False, {}))[0] == 503
    assert answer("/livez", lambda: Health(False, False, {}))[0] == 503
    assert answer("/metrics", lambda: good)[0] == 404

    def broken() -> Health:
        raise RuntimeError("no state")

    assert answer("/livez", broken) == (
        503,
        {"status": "unhealthy", "error": "RuntimeError: no state"},
    )


def test_livez_turns_unhealthy_when_a_loop_is_stopped_by_a_bug(
    app: Longops, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = app.worker(
        concurrency=2, poll_interval=0.2, heartbeat_interval=0.3, session_timeout=5,
        grace_period=1, run_services=False,
    )  # fmt: skip
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(worker.run(install_signals=False)))
    thread.start()
    server = HealthServer(worker.health, port=0).start()
    try:
        wait_for(lambda: probe(server.port, "/readyz")[0] == 200, timeout=10, what="ready")
        assert probe(server.port, "/livez")[0] == 200

        # The bug the issue found lived in the dispatcher's idle wait: an error that is not
        # the database's there must stop the worker, not leave it heartbeating idle.
        def broken(*args: object) -> object:
            raise KeyError("injected bug")

        monkeypatch.setattr(worker.store, "next_due_at", broken)
        body = wait_for(
            lambda: body_when(server.port, "/livez", 503), timeout=10, what="/livez 503"
        )
        assert body["alive"] is False
        assert body["loops"]["dispatcher"].startswith("stopped: bug KeyError"), body["loops"]
        assert probe(server.port, "/readyz")[0] == 503
        thread.join(timeout=30)
        assert codes == [EXIT_LOOP_DIED]  # the process exits, non-zero
    finally:
        server.close()
        if thread.is_alive():
            worker.stop(grace=1)
            thread.join(timeout=30)


def test_readyz_is_503_while_the_database_cannot_be_reached(
    worker: Worker, server: HealthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    wait_for(lambda: probe(server.port, "/readyz")[0] == 200, timeout=10, what="ready")
    real = worker.store.heartbeat

    def unreachable(*args: object) -> object:
        raise OSError("injected: connection refused")

    monkeypatch.setattr(worker.store, "heartbeat", unreachable)
    body = wait_for(lambda: body_when(server.port, "/readyz", 503), timeout=10, what="503")
    assert (body["alive"], body["ready"]) == (True, False)
    assert probe(server.port, "/livez")[0] == 200  # a fault, not a bug: no restart
    monkeypatch.setattr(worker.store, "heartbeat", real)
    wait_for(lambda: probe(server.port, "/readyz")[0] == 200, timeout=10, what="ready again")


def test_a_worker_process_serves_livez_and_readyz(
    app: Longops, db_url: str, tmp_path: Path
) -> None:
    marks = db_url if db_url.startswith("postgresql") else str(tmp_path / "marks.db")
    create_marks_table(marks)
    port = free_port()
    proc = start_worker(db_url, marks, extra=("--health-port", str(port)))
    try:
        body = wait_for(lambda: body_when(port, "/readyz", 200), timeout=30, what="ready")
        assert body["status"] == "ok"
        assert {"dispatcher", "heartbeat", "completer", "monitor"} <= set(body["loops"])
        assert probe(port, "/livez")[0] == 200
        assert probe(port, "/nope")[0] == 404
        # Draining (SIGTERM) with a run in progress: no longer ready, still alive.
        release = tmp_path / "release"
        op = app.enqueue("stress.block", str(release))
        wait_for(lambda: op.refresh().status.value == "in_process", timeout=30, what="running")
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: probe(port, "/readyz")[0] == 503, timeout=10, what="draining")
        assert probe(port, "/livez")[0] == 200
        release.write_text("")
    finally:
        codes = stop_workers([proc])
    assert codes == [0]


def test_a_bad_health_port_is_refused_naming_the_option(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(APPS)}
    db = f"sqlite:///{tmp_path / 'x.db'}"
    cmd = [sys.executable, "-m", "longops.cli.main", "--app", "stress_app:app"]
    done = subprocess.run(
        [*cmd, "--database-url", db, "worker", "--health-port", "70000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--health-port" in done.stderr
    assert "between 0 and 65535" in done.stderr
