"""Real worker processes for the multi-process tests, and condition waits with deadlines."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
APPS = Path(__file__).parent / "apps"


def wait_for(
    predicate: Callable[[], T], *, timeout: float, interval: float = 0.05, what: str = ""
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


def start_worker(
    db_url: str,
    marks_url: str,
    *,
    concurrency: int = 4,
    heartbeat: float = 0.5,
    session_timeout: float = 3.0,
    rescuer_interval: float = 0.5,
    grace: float = 10.0,
    poll: float = 0.5,
    app: str = "stress_app:app",
    extra: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), env.get("PYTHONPATH", "")])
    env["LONGOPS_TEST_MARKS"] = marks_url
    cmd = [
        sys.executable, "-m", "longops.cli.main", "--app", app, "--database-url", db_url,
        "worker", "--concurrency", str(concurrency), "--heartbeat-interval", str(heartbeat),
        "--session-timeout", str(session_timeout), "--rescuer-interval", str(rescuer_interval),
        "--grace-period", str(grace), "--poll-interval", str(poll), *extra,
    ]  # fmt: skip
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def stop_workers(procs: list[subprocess.Popen[bytes]], timeout: float = 30) -> list[int]:
    """SIGTERM each still-running worker and collect exit codes (killing stragglers)."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(timeout=timeout))
        except subprocess.TimeoutExpired:
            p.kill()
            codes.append(p.wait())
        if p.stdout:
            p.stdout.close()
        if p.stderr:
            p.stderr.close()
    return codes
