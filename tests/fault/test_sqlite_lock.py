"""SQLite's write lock held by another process for ten times the busy timeout: the worker
waits it out. It does not exit, it stays alive (``/livez`` 200) while ``/readyz`` turns 503
and back, each loop logs the fault once (not once per try), a run goes on through it and
its result is written after, an operation that fell due meanwhile finishes within 2 s of
the release, and nothing runs or finishes twice."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from longops import Longops, RunContext, Status
from longops.domain.operation import Outcome
from longops.store.base import open_store
from longops.worker.health import HealthServer
from procs import wait_for

BUSY_TIMEOUT = 0.5
HOLD = 10 * BUSY_TIMEOUT

# Another process: takes the write lock and keeps it until told (a line on stdin).
HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
print("released", flush=True)
"""


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.lock_ = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self.lock_:
            self.records.append(record)

    def count(self, action: str, loop: str) -> int:
        with self.lock_:
            return sum(
                1
                for r in self.records
                if getattr(r, "action", None) == action and getattr(r, "loop", None) == loop
            )


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("longops.worker")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def probe(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_a_lock_held_past_the_busy_timeout_is_waited_out(tmp_path: Path, records: Records) -> None:
    path = tmp_path / "longops.db"
    store = open_store(f"sqlite:///{path}")
    store.migrate()
    store.close()
    app = Longops(f"sqlite:///{path}", busy_timeout=BUSY_TIMEOUT)
    ran: Counter[str] = Counter()

    @app.task(name="quick")
    def quick(ctx: RunContext, x: int = 0) -> int:
        ran[str(ctx.operation_id)] += 1
        return x

    @app.task(name="ticker")
    def ticker(ctx: RunContext, seconds: float) -> str:
        ran[str(ctx.operation_id)] += 1
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            n += 1
            ctx.progress(n, None, f"tick {n}")
            time.sleep(0.05)
        return "done"

    worker = app.worker(
        concurrency=2, heartbeat_interval=0.3, session_timeout=30, rescuer_interval=0.3,
        poll_interval=0.2, progress_interval=0.1, grace_period=5,
    )  # fmt: skip
    worker.start()
    server = HealthServer(worker.health, port=0).start()
    holder: subprocess.Popen[str] | None = None
    try:
        first = app.enqueue("quick", 1)
        assert first.wait(timeout=20).status is Status.FINISHED
        wait_for(lambda: probe(server.port, "/readyz") == 200, timeout=10, what="ready")
        # A run that goes on through the lock (its progress and result wait), and an
        # operation that falls due while the lock is held.
        running = app.enqueue("ticker", 2.0)
        wait_for(lambda: running.refresh().status is Status.IN_PROCESS, timeout=10, what="runs")
        due = app.enqueue("quick", 5, delay=1.0)

        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline().strip() == "locked"
        locked_at = time.monotonic()
        wait_for(lambda: probe(server.port, "/readyz") == 503, timeout=10, what="503")

        tries = [0]

        def held_long_enough() -> bool:
            tries[0] = max(tries[0], worker.supervisor._loops["dispatcher"].failures)
            # Alive all along: the worker never gives up or dies on the fault.
            health = worker.health()
            assert health.alive, health.loops
            assert probe(server.port, "/livez") == 200
            assert not worker.stopped
            return time.monotonic() - locked_at >= HOLD

        wait_for(held_long_enough, timeout=HOLD + 30, what=f"the lock held {HOLD} s")
        # The dispatcher tried again and again (each try waits the busy timeout) ...
        assert tries[0] >= 3, tries
        assert due.refresh().status is Status.READY  # ... and claimed nothing meanwhile
        assert running.refresh().status is Status.IN_PROCESS  # its result waits

        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
        released_at = time.monotonic()
        wait_for(lambda: due.refresh().status is Status.FINISHED, timeout=30, what="due runs")
        took = time.monotonic() - released_at
        assert took < 2.0, f"the operation due during the lock finished {took:.1f} s after it"
        assert running.wait(timeout=20).status is Status.FINISHED
        wait_for(lambda: probe(server.port, "/readyz") == 200, timeout=10, what="ready again")
        assert worker.health().alive

        # Once per loop and state change, not once per try.
        backed_off = Counter(
            str(getattr(r, "loop", ""))
            for r in records.records
            if getattr(r, "action", None) == "loop_backing_off"
        )
        assert backed_off["dispatcher"] == 1, (backed_off, tries)
        assert all(n == 1 for n in backed_off.values()), backed_off
        assert records.count("loop_recovered", "dispatcher") == 1

        # Nothing ran twice, no attempt was spent twice, nothing finished twice.
        for handle in (first, running, due):
            op = handle.refresh()
            assert op.status is Status.FINISHED
            assert op.attempt_count == 1
            assert [a.outcome for a in app.store.list_attempts(op.id)] == [Outcome.SUCCESS]
            assert ran[str(op.id)] == 1, ran
        assert running.refresh().result == "done"
        assert due.refresh().result == 5
    finally:
        if holder is not None:
            if holder.poll() is None:
                holder.kill()
            holder.wait(timeout=10)
            for stream in (holder.stdin, holder.stdout):
                if stream is not None:
                    stream.close()
        worker.stop(grace=5)
        server.close()
        app.close()
    assert worker.exit_code == 0
