"""Which exceptions are database faults: ordinary events a worker waits out, not bugs.

A fault is what a healthy program meets on a bad day: the server restarted or failed over,
a backend was terminated, the network dropped, a pool found no connection in time, SQLite's
file stayed locked past the busy timeout, the disk filled. A worker's loops back off and go
on through faults (``worker.supervise``); any other exception is a bug and stops the worker.

Errors raised by longops itself can declare themselves faults with a class attribute
``transient = True``.

Example::

    try:
        store.claim(params)
    except Exception as exc:
        if not is_fault(exc):
            raise
"""

from __future__ import annotations

import sqlite3
import sys


def is_fault(exc: BaseException) -> bool:
    """True when ``exc`` says the database (or the way to it) failed, not the program."""
    if getattr(exc, "transient", False) is True:
        return True
    # psycopg: OperationalError covers a lost connection, an admin shutdown, a cancelled
    # statement (statement_timeout), a lock not available (lock_timeout), a serialization
    # failure or deadlock, and the pool's PoolTimeout; InterfaceError a closed connection.
    # ProgrammingError, IntegrityError, DataError are the program's own: bugs.
    # Looked up, not imported: a process that never loaded psycopg (a SQLite worker) has no
    # psycopg errors to meet, and its start-up is spared the import.
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return True
    # SQLite: "database is locked", "disk I/O error", "database or disk is full",
    # "attempt to write a readonly database" are all OperationalError.
    if isinstance(exc, sqlite3.OperationalError):
        return True
    return isinstance(exc, OSError)


def is_data_error(exc: BaseException) -> bool:
    """True when ``exc`` says the database (or its driver) refused a value the program
    sent: text it cannot hold (PostgreSQL's ``DataError`` family, e.g. a NUL in ``text``),
    text UTF-8 cannot encode (a lone surrogate). Not a fault (retrying the same write fails
    the same way) and not a reason to stop a worker: the caller writes the rows one by one
    and records the one refused without its text."""
    if isinstance(exc, UnicodeError | sqlite3.DataError):
        return True
    # (orjson's JSONEncodeError is TypeError itself, too broad to read as one: the
    # PostgreSQL store raises the DataError it means, see PostgresStore._send_finish.)
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.DataError)
