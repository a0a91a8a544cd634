"""The one loop shape: faults are waited out and logged once per change; a bug stops the
loop and calls for the worker to stop; a round that never returns is stuck."""

from __future__ import annotations

import logging
import sqlite3
import threading

import psycopg
import pytest

from longops.domain.errors import ConfigurationError, DatabaseBusy, DatabaseFull, ValidationError
from longops.store.faults import is_fault
from longops.worker.supervise import Supervisor
from procs import wait_for


@pytest.mark.parametrize(
    ("exc", "fault"),
    [
        (psycopg.OperationalError("server closed the connection unexpectedly"), True),
        (psycopg.errors.AdminShutdown("terminating connection"), True),
        (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), True),
        (psycopg.InterfaceError("the connection is closed"), True),
        (sqlite3.OperationalError("database is locked"), True),
        (sqlite3.OperationalError("database or disk is full"), True),
        (ConnectionResetError(), True),
        (psycopg.ProgrammingError("syntax error"), False),
        (psycopg.errors.UniqueViolation("duplicate key"), False),
        (ConfigurationError("the database has no longops schema"), False),
        # What the stores raise in place of the drivers' errors keeps its kind.
        (DatabaseBusy.waited("a lock was not granted", "lock_timeout", 5, "X"), True),
        (DatabaseFull("the SQLite database is full"), True),
        (ValidationError("x", "must be y"), False),
        (KeyError("k"), False),
    ],
)
def test_what_counts_as_a_fault(exc: Exception, fault: bool) -> None:
    assert is_fault(exc) is fault


def test_a_longops_error_can_declare_itself_transient() -> None:
    class Busy(ConfigurationError):
        transient = True

    assert is_fault(Busy("lock timeout"))


def test_a_fault_is_logged_once_per_change_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    errors: list[Exception] = [
        *(sqlite3.OperationalError("database is locked") for _ in range(6)),
        *(ConnectionRefusedError("connection refused") for _ in range(4)),
    ]
    calls = 0
    stop = threading.Event()
    recovered: list[str] = []

    def step() -> None:
        nonlocal calls
        calls += 1
        if errors:
            raise errors.pop(0)
        stop.wait(0.01)

    sup = Supervisor(on_recovered=recovered.append, backoff_cap=0.02)
    with caplog.at_level(logging.DEBUG, logger="longops.worker"):
        thread = sup.spawn("dispatcher", step, stop)
        wait_for(lambda: recovered, timeout=10, what="recovered")
        assert sup.states() == {"dispatcher": "ok"}
        assert sup.alive()
        assert sup.reachable()
        stop.set()
        thread.join(5)
    # The supervisor's own lines (the catalogue events LO0025/LO0026 go to longops.events).
    mine = [r for r in caplog.records if r.name == "longops.worker"]
    warnings = [r for r in mine if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # one when it began failing, one when the kind changed
    assert "database is locked" in warnings[0].getMessage()
    assert "connection refused" in warnings[1].getMessage()
    infos = [r.getMessage() for r in mine if r.levelno == logging.INFO]
    assert infos == [infos[0]]
    assert "recovered after 10 failed tries" in infos[0]
    assert recovered == ["dispatcher"]
    assert calls > 10
    assert sup.states() == {"dispatcher": "stopped"}


def test_a_backing_off_loop_is_alive_but_not_reachable() -> None:
    stop = threading.Event()

    def step() -> None:
        raise sqlite3.OperationalError("database is locked")

    sup = Supervisor(backoff_cap=0.02)
    sup.spawn("completer", step, stop)
    wait_for(lambda: sup.states()["completer"].startswith("backing off"), timeout=5)
    assert sup.states()["completer"] == "backing off: OperationalError"
    assert sup.alive()
    assert not sup.reachable()
    stop.set()


def test_a_bug_stops_the_loop_once_and_calls_for_the_worker_to_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = threading.Event()
    fatal: list[tuple[str, BaseException]] = []
    calls = 0

    def step() -> None:
        nonlocal calls
        calls += 1
        raise KeyError("no such slot")

    sup = Supervisor(on_fatal=lambda name, exc: fatal.append((name, exc)))
    thread = sup.spawn("monitor", step, stop)
    thread.join(5)
    assert not thread.is_alive()
    assert calls == 1  # not retried
    assert [name for name, _ in fatal] == ["monitor"]
    assert sup.states()["monitor"].startswith("stopped: bug KeyError")
    assert not sup.alive()
    assert sup.not_alive() is not None
    [critical] = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert "monitor loop stopped by a bug (KeyError)" in critical.getMessage()
    assert critical.exc_info is not None


def test_a_round_that_does_not_return_is_stuck() -> None:
    stop, release = threading.Event(), threading.Event()
    sup = Supervisor()
    sup.spawn("dispatcher", lambda: release.wait(10), stop, stuck_after=0.2)
    wait_for(lambda: not sup.alive(), timeout=5, what="stuck")
    assert sup.states()["dispatcher"].startswith("stuck")
    stop.set()
    release.set()
