"""The task the fault-injection runs (benchmarks/bench_chaos.py, tests/stress/test_chaos.py)
give their worker processes: it sleeps a little, then writes a run mark into ``chaos_marks``
in the same database as longops' tables, so a run done twice is visible whatever longops
recorded.

The mark is written when the work is done, just before the task returns: a mark is "this
attempt did the work". Writing it survives the faults the runs inject (a restarted server,
a terminated connection, a SQLite file locked by another process): the task reconnects and
tries again for up to ``MARK_PATIENCE`` seconds, as a careful task would, so that a task
failure never hides what the worker did.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from typing import Any

import psycopg

from longops import Longops, RunContext

TASK = "chaos.work"
MAX_ATTEMPTS = 5
"""A lost run spends an attempt: an operation may be hit by several kills in a row."""
MARK_PATIENCE = 120.0
MARKS_ENV = "LONGOPS_CHAOS_MARKS"

MARKS_DDL = (
    "CREATE TABLE IF NOT EXISTS chaos_marks (operation_id text NOT NULL, attempt integer "
    "NOT NULL, pid integer NOT NULL, at double precision NOT NULL)"
)

_local = threading.local()


def marks_target(database_url: str) -> str:
    """Where marks go for a longops database URL: the same database (a file path on SQLite)."""
    return database_url.removeprefix("sqlite:///")


def create_marks_table(database_url: str) -> None:
    target = marks_target(database_url)
    if target.startswith("postgresql"):
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(MARKS_DDL)
    else:
        lite = sqlite3.connect(target, isolation_level=None, timeout=60)
        try:
            lite.execute(MARKS_DDL.replace("double precision", "REAL"))
        finally:
            lite.close()


def _connect() -> Any:
    target = os.environ[MARKS_ENV]
    if target.startswith("postgresql"):
        return psycopg.connect(target, autocommit=True, connect_timeout=5)
    return sqlite3.connect(target, isolation_level=None, timeout=60)


def _mark(ctx: RunContext) -> None:
    row = (str(ctx.operation_id), ctx.attempt, os.getpid(), time.time())
    deadline = time.monotonic() + MARK_PATIENCE
    while True:
        conn = getattr(_local, "conn", None)
        try:
            if conn is None:
                conn = _local.conn = _connect()
            if isinstance(conn, psycopg.Connection):
                conn.execute("INSERT INTO chaos_marks VALUES (%s, %s, %s, %s)", row)
            else:
                conn.execute("INSERT INTO chaos_marks VALUES (?, ?, ?, ?)", row)
            return
        except (psycopg.Error, sqlite3.Error):
            # The fault the run injected: reconnect and try again.
            _local.conn = None
            if conn is not None:
                with contextlib.suppress(psycopg.Error, sqlite3.Error):
                    conn.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def work(ctx: RunContext, seconds: float = 0.05) -> int:
    """A short piece of work that leaves a run mark."""
    time.sleep(seconds)
    _mark(ctx)
    return ctx.attempt


def register(application: Longops) -> Longops:
    application.task(name=TASK, max_attempts=MAX_ATTEMPTS)(work)
    return application


app = register(Longops())
