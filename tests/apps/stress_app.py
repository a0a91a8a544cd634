"""Tasks that worker processes run in the multi-process tests. Each records a run mark
(operation id, pid, start and end times) in a side table, so tests can count runs and
check overlaps independently of longops' own bookkeeping."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from longops import Longops, RunContext

app = Longops()
_local = threading.local()

MARKS_DDL_PG = (
    "CREATE TABLE IF NOT EXISTS run_marks (operation_id text NOT NULL, kind text NOT NULL, "
    "pid integer NOT NULL, attempt integer NOT NULL, started double precision NOT NULL, "
    "ended double precision)"
)
MARKS_DDL_SQLITE = MARKS_DDL_PG.replace("double precision", "REAL").replace("integer", "INTEGER")


def tasks_into(application: Longops) -> Longops:
    """Register this module's tasks in another application (one on the test's database)."""
    for task in app.registry:
        application.registry.add(task.fn, name=task.name, max_attempts=task.max_attempts)
    return application


@contextmanager
def stress_app_on(url: str) -> Iterator[Longops]:
    """An application with this module's tasks on the database at ``url``, migrated."""
    application = tasks_into(Longops(url))
    application.migrate()
    try:
        yield application
    finally:
        application.close()


def marks_url() -> str:
    return os.environ["LONGOPS_TEST_MARKS"]


def _conn() -> Any:
    conn = getattr(_local, "conn", None)
    if conn is None:
        url = marks_url()
        if url.startswith("postgresql"):
            conn = psycopg.connect(url, autocommit=True)
        else:
            conn = sqlite3.connect(url, timeout=60, isolation_level=None)
            conn.execute("PRAGMA journal_mode = WAL")
        _local.conn = conn
    return conn


def create_marks_table(url: str) -> None:
    if url.startswith("postgresql"):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(MARKS_DDL_PG)
    else:
        conn = sqlite3.connect(url, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(MARKS_DDL_SQLITE)
        conn.close()


def _mark(ctx: RunContext, kind: str, started: float, ended: float | None) -> None:
    conn = _conn()
    sql = "INSERT INTO run_marks VALUES (?, ?, ?, ?, ?, ?)"
    if isinstance(conn, psycopg.Connection):
        sql = sql.replace("?", "%s")
    conn.execute(sql, (str(ctx.operation_id), kind, os.getpid(), ctx.attempt, started, ended))


@app.task(name="stress.mark")
def mark(ctx: RunContext, n: int = 0) -> int:
    now = time.time()
    _mark(ctx, "mark", now, now)
    return n


@app.task(name="stress.hold_slot")
def hold_slot(ctx: RunContext, seconds: float = 0.01) -> None:
    """Occupies its slot for a while; the mark's interval is what overlap checks use."""
    started = time.time()
    time.sleep(seconds)
    _mark(ctx, "slot", started, time.time())


@app.task(name="stress.block", max_attempts=2)
def block(ctx: RunContext, release_file: str) -> str:
    """First attempt records its start and then blocks until killed (or released)."""
    _mark(ctx, "block_start", time.time(), None)
    if ctx.attempt == 1:
        while not Path(release_file).exists():
            time.sleep(0.05)
    return f"done on attempt {ctx.attempt}"


@app.task(name="stress.sleep")
def sleep(ctx: RunContext, seconds: float) -> float:
    started = time.time()
    _mark(ctx, "sleep_start", started, None)
    time.sleep(seconds)
    return seconds


@app.task(name="stress.noop")
def noop() -> None:
    """Does nothing: for claim-order tests, where only the order of starts matters."""


@app.task(name="stress.leak")
def leak(secret: str, fail: bool = False) -> dict[str, str]:
    """Carries customer content in its arguments, its error and its result (log tests)."""
    if fail:
        raise ValueError(f"could not post {secret}")
    return {"posted": secret}


_hoard: list[bytes] = []


@app.task(name="stress.grow_always")
def grow_always(ctx: RunContext, up_to_mib: int) -> str:
    """Leaks memory in this worker's process on every run, 8 MiB at a time up to
    ``up_to_mib``, then holds it: it never finishes under a lower ``--max-memory``."""
    while len(_hoard) * 8 < up_to_mib:
        _hoard.append(b"\x02" * (8 * 2**20))
        time.sleep(0.02)
    while not ctx.cancelled:
        time.sleep(0.05)
    return "cancelled"


@app.task(name="stress.hoard")
def hoard(ctx: RunContext, folder: str, up_to_mib: int) -> str:
    """Leaks memory in this worker's process, 8 MiB at a time up to ``up_to_mib``, then holds
    it until the process ends. The first run to find ``folder/hoarded`` (a second run, on a
    fresh worker) finishes at once."""
    marker = Path(folder) / "hoarded"
    if marker.exists():
        return f"finished on a fresh worker ({os.getpid()})"
    marker.write_text(str(os.getpid()))
    while len(_hoard) * 8 < up_to_mib:
        _hoard.append(b"\x01" * (8 * 2**20))  # written, so resident (bytearray(n) is not)
        time.sleep(0.02)
    while True:
        time.sleep(0.05)
