"""The shared fixtures' guard (tests/conftest.py): closing an app while a worker on its store
still runs fails the test that did it, by name, and stops the worker first."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from longops import Longops


def test_closing_an_app_under_a_running_worker_fails_the_test_by_name(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    app = Longops(f"sqlite:///{tmp_path / 'longops.db'}")
    app.migrate()
    worker = app.worker(concurrency=1, heartbeat_interval=0.2, poll_interval=0.2)
    worker.start()
    with pytest.raises(pytest.fail.Exception, match=re.escape(request.node.nodeid)):
        app.close()
    assert worker.stopped  # stopped before the store was closed under it


def test_a_worker_stopped_before_the_close_passes(tmp_path: Path) -> None:
    app = Longops(f"sqlite:///{tmp_path / 'longops.db'}")
    app.migrate()
    worker = app.worker(concurrency=1, heartbeat_interval=0.2, poll_interval=0.2)
    worker.start()
    worker.stop(grace=1)
    # stop() returned once no thread of the session can touch the store any more.
    threads = [*worker._loops.values(), *worker._runners]
    assert {t.name for t in threads} >= {"longops-services", "longops-heartbeat"}
    assert [t.name for t in threads if t.is_alive()] == []
    app.close()  # no failure
    assert worker.stopped
