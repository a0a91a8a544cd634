"""The supervised loops' telemetry: every failed round counts in
``longops.worker.loop.errors`` (by loop and kind), and a loop that starts backing off,
recovers or dies emits its catalogue event (LO0025 / LO0026 / LO0027)."""

from __future__ import annotations

import sqlite3
import threading

from otel_support import Captured

from longops.worker.supervise import Supervisor
from procs import wait_for


def _loop_errors(otel: Captured) -> dict[tuple[str, str], int]:
    points = otel.metrics().get("longops.worker.loop.errors", [])
    return {(str(p.attributes["loop"]), str(p.attributes["kind"])): p.value for p in points}


def test_faults_and_bugs_are_counted_per_loop_with_events(otel: Captured) -> None:
    faults: list[Exception] = [sqlite3.OperationalError("database is locked") for _ in range(3)]
    faults.append(ConnectionRefusedError("connection refused"))  # the kind of fault changes
    stop = threading.Event()
    recovered: list[str] = []
    fatal: list[str] = []

    def flaky() -> None:
        if faults:
            raise faults.pop(0)
        stop.wait(0.01)

    def buggy() -> None:
        raise KeyError("a bug")

    sup = Supervisor(
        on_recovered=recovered.append,
        on_fatal=lambda name, exc: fatal.append(name),
        backoff_cap=0.02,
    )
    flaky_thread = sup.spawn("dispatcher", flaky, stop)
    buggy_thread = sup.spawn("completer", buggy, stop)
    wait_for(lambda: recovered and fatal, timeout=10, what="recovery and a death")
    stop.set()
    flaky_thread.join(5)
    buggy_thread.join(5)

    assert _loop_errors(otel) == {("dispatcher", "fault"): 4, ("completer", "bug"): 1}
    events = [
        (r["eventId"], r.get("loop"), r.get("errorType"), r.get("failures"))
        for r in otel.logs()
        if str(r["eventId"]) in ("LO0025", "LO0026", "LO0027")
    ]
    assert sorted(events, key=str) == sorted(
        [
            # Once when it began failing, once when the kind of fault changed: not per try.
            ("LO0025", "dispatcher", "OperationalError", None),
            ("LO0025", "dispatcher", "ConnectionRefusedError", None),
            ("LO0026", "dispatcher", None, 4),
            ("LO0027", "completer", "KeyError", None),
        ],
        key=str,
    )


def test_a_healthy_loop_counts_nothing(otel: Captured) -> None:
    stop = threading.Event()
    rounds = 0

    def step() -> None:
        nonlocal rounds
        rounds += 1
        stop.wait(0.005)

    thread = Supervisor().spawn("heartbeat", step, stop)
    wait_for(lambda: rounds >= 5, timeout=10, what="five rounds")
    stop.set()
    thread.join(5)
    assert _loop_errors(otel) == {}
    assert not [r for r in otel.logs() if str(r["eventId"]) in ("LO0025", "LO0026", "LO0027")]
