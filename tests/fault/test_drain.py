"""A drain ends an idle dispatcher's wait at once, whatever its poll interval: it does not
sleep out ``poll_interval`` on LISTEN (PostgreSQL) or on its poll (SQLite). Both databases."""

from __future__ import annotations

import time

from longops import Longops, Status
from procs import wait_for


def test_a_drain_wakes_an_idle_dispatcher_at_once(db_url: str) -> None:
    app = Longops(db_url)
    app.task(name="quick")(lambda x=0: x)
    # Nothing else writes while it waits: no services, a heartbeat far apart (on SQLite any
    # commit would wake the dispatcher and hide a drain that does not).
    worker = app.worker(
        concurrency=2, poll_interval=30, heartbeat_interval=20, session_timeout=60,
        run_services=False, grace_period=5,
    )  # fmt: skip
    worker.start()
    try:
        assert app.enqueue("quick", 1).wait(timeout=20).status is Status.FINISHED
        dispatcher = worker._loops["dispatcher"]
        # Idle: its last round ended and it waits (up to 30 s) for a wake-up.
        wait_for(
            lambda: worker.supervisor._loops["dispatcher"].step_started is not None,
            timeout=10,
            what="the dispatcher waiting",
        )
        began = time.monotonic()
        worker.drain()
        dispatcher.join(timeout=40)
        left = time.monotonic() - began
        assert not dispatcher.is_alive()
        assert left < 2.0, f"the dispatcher left its loop {left:.1f} s after the drain"
        began = time.monotonic()
        worker.stop(grace=5)
        assert time.monotonic() - began < 5.0
        assert worker.stopped
        assert worker.exit_code == 0
    finally:
        if not worker.stopped:
            worker.stop(grace=1)
        app.close()
