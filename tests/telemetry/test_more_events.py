"""The rest of the catalogue from real runs: timeout, expiry, the pruner's maintenance, and a
worker session's logon, drain and logoff (both databases)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from otel_support import Captured

from longops import Longops, RunContext, Status
from longops.domain.clock import OffsetClock
from longops.services.expiry import Expiry
from longops.services.pruner import Pruner
from longops.testing import Runner
from procs import wait_for


@pytest.fixture
def app(db_url: str, clock: OffsetClock) -> Iterator[Longops]:
    application = Longops(db_url, clock=clock)
    application.task(name="ok")(lambda: 1)
    yield application
    application.close()


def test_timeout_is_reported_with_its_stop_mode(app: Longops, otel: Captured) -> None:
    pause = threading.Event()

    @app.task(name="dawdle", timeout=1, cancel_grace=5)
    def dawdle(ctx: RunContext) -> None:
        while True:
            ctx.advance()
            ctx.check_cancelled()
            pause.wait(0.02)

    worker = app.worker(concurrency=1, poll_interval=0.05, heartbeat_interval=0.2)
    worker.start()
    try:
        handle = app.enqueue("dawdle")
        wait_for(lambda: handle.refresh().status is Status.ERROR, timeout=30, what="timeout")
    finally:
        worker.stop(grace=5)
    [timed_out] = [r for r in otel.logs() if r["eventId"] == "LO0008"]
    assert timed_out["operationId"] == str(handle.id)
    assert timed_out["stopMode"] == "cooperative"
    assert timed_out["nextStatus"] == "error"


def test_expiry_and_maintenance(app: Longops, clock: OffsetClock, otel: Captured) -> None:
    soon = app.enqueue("ok", expires_at=clock.now() + timedelta(minutes=1), on_hold=False)
    clock.advance(seconds=120)
    assert Expiry(app.store, clock).run_once() == 1
    assert otel.event_ids(soon.id)[-1] == "LO0012"
    done = app.enqueue("ok")
    assert Runner(app).run_until_idle() == 1
    assert done.refresh().status is Status.FINISHED
    clock.advance(seconds=3600)
    assert Pruner(app.store, clock, retention=timedelta(minutes=1)).run_once() >= 1
    [pruned] = [r for r in otel.logs() if r["eventId"] == "LO0022"]
    assert pruned["job"] == "pruner"
    assert int(pruned["count"]) >= 1


def test_session_logon_drain_and_logoff(app: Longops, otel: Captured) -> None:
    worker = app.worker(concurrency=1, poll_interval=0.05, heartbeat_interval=0.2)
    worker.start()
    try:
        wait_for(lambda: "LO0018" in otel.event_ids(), timeout=20, what="logon")
    finally:
        worker.stop(grace=5)  # drains, then logs off
    sessions = [r for r in otel.logs() if r["eventId"] in ("LO0018", "LO0021", "LO0019")]
    assert [r["eventId"] for r in sessions] == ["LO0018", "LO0021", "LO0019"]
    assert len({r["sessionId"] for r in sessions}) == 1


@pytest.mark.postgres
def test_pool_connections_are_observed(pg_url: str, otel: Captured) -> None:
    from longops.store.base import open_store

    store = open_store(pg_url)
    try:
        store.list_sessions()
        points = otel.metrics()["longops.pool.connections"]
        states = {p.attributes["state"]: p.value for p in points}
        assert set(states) == {"in_use", "idle", "waiting"}
        assert states["in_use"] + states["idle"] >= 1  # this store's pool keeps one open
    finally:
        store.close()
