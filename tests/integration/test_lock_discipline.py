"""Lock and connection discipline: every wait on the database is bounded, the error says
which setting bounded it, and a worker outlives a locked table.

PostgreSQL unless the test says otherwise (``LOCK TABLE`` is PostgreSQL's).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from longops import ConfigurationError, DatabaseBusy, FrozenClock, Longops, RunContext, Status
from longops.api import errors
from longops.domain.operation import NewOperation
from longops.store.base import OperationQuery, StoreOptions, open_store
from procs import APPS, wait_for


@contextmanager
def locked_table(url: str) -> Iterator[psycopg.Connection[Any]]:
    """Another session holds ``longops_operations`` in ACCESS EXCLUSIVE mode."""
    with psycopg.connect(url) as conn:
        conn.execute("LOCK TABLE longops_operations IN ACCESS EXCLUSIVE MODE")
        try:
            yield conn
        finally:
            conn.rollback()


def _cli_env(**settings: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), env.get("PYTHONPATH", "")])
    env.update(settings)
    return env


@pytest.mark.postgres
def test_every_longops_connection_carries_the_timeouts(empty_pg_url: str) -> None:
    options = StoreOptions(
        lock_timeout=1.5,
        statement_timeout=12,
        idle_in_transaction_timeout=40,
        maintenance_timeout=90,
    )
    store = open_store(empty_pg_url, options=options)
    seen: list[str] = []
    apply = store._apply_migration_script  # type: ignore[attr-defined]

    def recording(cur: Any, sql: str) -> None:
        cur.execute("SELECT current_setting('statement_timeout') AS v")
        seen.append(cur.fetchone()["v"])
        apply(cur, sql)

    store._apply_migration_script = recording  # type: ignore[attr-defined]
    try:
        store.migrate()
        assert seen
        assert set(seen) == {"90s"}  # migrations run under their own, longer timeout
        names = "lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout"
        with store._read() as cur:  # type: ignore[attr-defined]
            pooled = []
            for name in names:
                cur.execute(f"SHOW {name}")
                pooled.append(next(iter(cur.fetchone().values())))
        assert pooled == ["1500ms", "12s", "40s"]  # the migration's own setting did not leak
        wakeups, listener = store.wakeups(), store.cancel_listener()
        try:
            for dedicated in (wakeups, listener):
                conn = dedicated._conn  # type: ignore[union-attr]
                got = [conn.execute(f"SHOW {name}").fetchone()[0] for name in names]
                assert got == ["1500ms", "12s", "40s"]
        finally:
            wakeups.close()
            if listener is not None:
                listener.close()
    finally:
        store.close()


@pytest.mark.postgres
def test_enqueue_fails_after_lock_timeout_while_the_table_is_locked(pg_url: str) -> None:
    app = Longops(pg_url, lock_timeout=0.5)
    app.task(name="echo")(lambda: None)
    try:
        with locked_table(pg_url):
            began = time.monotonic()
            with pytest.raises(DatabaseBusy) as caught:
                app.enqueue("echo")
            waited = time.monotonic() - began
        assert 0.4 <= waited < 15  # the lock timeout, not the lock's life
        message = str(caught.value)
        assert "a lock held by another session was not granted" in message
        assert "lock_timeout (0.5 s, setting LONGOPS_LOCK_TIMEOUT)" in message
        assert caught.value.setting == "LONGOPS_LOCK_TIMEOUT"
        assert app.enqueue("echo").operation.status is Status.READY  # lock gone: it works
    finally:
        app.close()


@pytest.mark.postgres
def test_a_statement_past_statement_timeout_is_a_clear_error(pg_url: str) -> None:
    store = open_store(pg_url, statement_timeout=0.3)
    try:
        with (
            pytest.raises(DatabaseBusy, match="LONGOPS_STATEMENT_TIMEOUT"),
            store._tx() as cur,  # type: ignore[attr-defined]
        ):
            cur.execute("SELECT pg_sleep(5)")
    finally:
        store.close()


@pytest.mark.postgres
def test_a_slow_streamed_bulk_enqueue_runs_under_the_maintenance_timeout(pg_url: str) -> None:
    """A bulk enqueue is one COPY as long as the caller's stream of rows: the short
    statement timeout of ordinary work must not cut it off."""
    store = open_store(pg_url, statement_timeout=0.3, maintenance_timeout=60)
    clock = FrozenClock()

    def slow_rows() -> Iterator[NewOperation]:
        for _ in range(4):
            time.sleep(0.2)  # the caller validating its next row
            yield NewOperation.build(task="t", now=clock.now())

    try:
        assert store.insert_operations_bulk(slow_rows()) == 4
        assert len(store.list_operations(OperationQuery())) == 4
    finally:
        store.close()


@pytest.mark.postgres
def test_the_command_line_reports_a_held_lock_without_a_traceback(pg_url: str) -> None:
    cmd = [
        sys.executable, "-m", "longops.cli.main", "--app", "payload_app:app",
        "--database-url", pg_url, "enqueue", "echo", "--args", "[1]",
    ]  # fmt: skip
    with locked_table(pg_url):
        done = subprocess.run(
            cmd,
            env=_cli_env(LONGOPS_LOCK_TIMEOUT="0.5"),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1, done.stderr
    assert "error: the database is busy" in done.stderr
    assert "LONGOPS_LOCK_TIMEOUT" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.postgres
def test_the_worker_command_refuses_a_bad_pool_size_clearly(pg_url: str) -> None:
    cmd = [
        sys.executable, "-m", "longops.cli.main", "--app", "payload_app:app",
        "--database-url", pg_url, "worker", "--pool-size", "0",
    ]  # fmt: skip
    done = subprocess.run(cmd, env=_cli_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "pool_size: must be between 1 and 1000" in done.stderr


def test_the_api_answers_503_with_retry_after_when_the_database_is_busy() -> None:
    api = FastAPI()
    errors.install(api)

    @api.get("/busy")
    def busy() -> None:
        raise DatabaseBusy("the database is busy", setting="LONGOPS_LOCK_TIMEOUT", retry_after=4.2)

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/busy")

    response = asyncio.run(call())
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"  # whole seconds, rounded up
    body = response.json()["error"]
    assert body["code"] == "DatabaseBusy"
    assert body["status"] == "UNAVAILABLE"
    assert body["message"] == "the database is busy"


@pytest.mark.postgres
def test_a_worker_logs_and_carries_on_while_the_table_is_locked(
    pg_url: str, tmp_path: Path
) -> None:
    log_path = tmp_path / "worker.log"
    cmd = [
        sys.executable, "-m", "longops.cli.main", "--app", "payload_app:app",
        "--database-url", pg_url, "worker", "--concurrency", "2", "--poll-interval", "0.2",
        "--heartbeat-interval", "0.5", "--session-timeout", "20", "--pool-size", "4",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            cmd, env=_cli_env(LONGOPS_LOCK_TIMEOUT="0.3"), stdout=log, stderr=subprocess.STDOUT
        )
    app = Longops(pg_url)
    app.task(name="echo")(lambda value=None: value)
    try:
        wait_for(
            lambda: "worker session" in log_path.read_text() and "started" in log_path.read_text(),
            timeout=60,
            what="the worker to start",
        )
        first = app.enqueue("echo", 1)
        assert first.wait(timeout=60).status is Status.FINISHED
        with locked_table(pg_url):
            wait_for(
                lambda: log_path.read_text().count("the database is busy") >= 2,
                timeout=60,
                what="the worker to log the refused claims",
            )
        assert worker.poll() is None, log_path.read_text()
        # The lock is gone: the same worker claims again.
        after = app.enqueue("echo", 2)
        assert after.wait(timeout=60).status is Status.FINISHED
        assert worker.poll() is None
    finally:
        app.close()
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=60)
    assert code == 0, log_path.read_text()


@pytest.mark.postgres
def test_no_transaction_stays_open_while_task_code_runs(pg_url: str) -> None:
    app = Longops(pg_url)
    inside = threading.Event()
    release = threading.Event()

    @app.task(name="sleepy")
    def sleepy(ctx: RunContext) -> None:
        ctx.progress(1, total=2, message="half way")
        ctx.checkpoint({"at": 1})
        inside.set()
        release.wait(60)

    worker = app.worker(concurrency=2, poll_interval=0.2, progress_interval=0.05)
    worker.start()
    try:
        handle = app.enqueue("sleepy")
        assert inside.wait(60)
        # Progress flushed while the task sleeps, then every longops backend is looked at.
        wait_for(
            lambda: app.service.get(handle.id).progress is not None, timeout=30, what="progress"
        )
        database = pg_url.rsplit("/", 1)[1]
        with psycopg.connect(pg_url, autocommit=True) as watcher:
            # Task code runs from before `began` to after the last look: a transaction that
            # began before it and is still open at a look spans task code. (Short ones come
            # and go all the time: the dispatcher's reads, the heartbeat.)
            [(began,)] = watcher.execute("SELECT clock_timestamp()").fetchall()
            time.sleep(1.0)  # long enough for any ordinary transaction to have ended
            for _ in range(10):
                rows = watcher.execute(
                    "SELECT pid, state, xact_start, query FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    [database],
                ).fetchall()
                assert rows  # the worker's connections are there to be seen
                spanning = [r for r in rows if r[2] is not None and r[2] <= began]
                assert spanning == [], spanning
                time.sleep(0.1)
        release.set()
        assert handle.wait(timeout=60).status is Status.FINISHED
    finally:
        release.set()
        worker.stop(grace=10)
        app.close()


# -- SQLite ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_sqlite_full_and_read_only_databases_are_clear_errors(tmp_path: Path, fault: str) -> None:
    app = Longops(f"sqlite:///{tmp_path / 'l.db'}")
    app.task(name="echo")(lambda value=None: value)
    app.migrate()
    # The process's one writer connection (every write transaction goes through it).
    conn: sqlite3.Connection = app.store._writer_conn()  # type: ignore[attr-defined]
    if fault == "full":
        # The file may not grow: what a full disk looks like to SQLite (SQLITE_FULL).
        pages = conn.execute("PRAGMA page_count").fetchone()["page_count"]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        expected = "is full: the disk (or the file's size limit) has no room left"
    else:
        conn.execute("PRAGMA query_only = ON")  # writes fail as on a read-only file
        expected = "is read-only: longops must be able to write the file"

    def fill() -> None:
        for _ in range(50):
            app.enqueue("echo", "x" * 200_000)

    with pytest.raises(ConfigurationError, match=re.escape(expected)):
        fill()
    app.close()
