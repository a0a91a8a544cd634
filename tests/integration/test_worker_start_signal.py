"""``longops worker`` takes SIGTERM as a drain from the moment it says it serves: a
supervisor (or a test) that sends TERM as soon as it reads "longops worker <session>
serving ..." gets exit code 0 and a session drained and stopped, never Python's default
handler (-15) because the worker's own was not installed yet."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid

import pytest

from apps.stress_app import stress_app_on
from longops.domain.operation import SessionState
from procs import APPS

pytestmark = pytest.mark.timeout(600)

ANNOUNCED = re.compile(r"longops worker ([0-9a-f-]{36}) serving ")
TIMES = 5  # the race showed at the first or second start; five keeps the suite short


def _worker(url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(APPS)}
    return subprocess.Popen(
        [sys.executable, "-m", "longops.cli.main", "--app", "stress_app:app",
         "--database-url", url, "worker", "--poll-interval", "0.2", "--grace-period", "5"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_a_term_sent_the_moment_the_worker_announces_itself_drains_it(db_url: str) -> None:
    sessions: list[uuid.UUID] = []
    with stress_app_on(db_url) as app:
        for attempt in range(TIMES):
            worker = _worker(db_url)
            assert worker.stderr is not None
            seen = ""
            found = None
            try:
                for line in worker.stderr:  # until it announces itself (or ends: EOF)
                    seen += line
                    found = ANNOUNCED.search(line)
                    if found:
                        worker.send_signal(signal.SIGTERM)  # at once, as a supervisor may
                        sessions.append(uuid.UUID(found.group(1)))
                        break
                _, rest = worker.communicate(timeout=120)
            finally:
                if worker.poll() is None:
                    worker.kill()
                    worker.communicate()
            seen += rest
            assert found, seen
            assert worker.returncode == 0, (attempt, worker.returncode, seen)
            assert f"worker session {found.group(1)} stopped" in seen, seen
        states = {s.id: s.state for s in app.store.list_sessions()}
    assert [states.get(sid) for sid in sessions] == [SessionState.STOPPED] * TIMES
