"""PostgreSQL's LISTEN connections: wake-ups for ready work and pushed cancel requests.

Each is a dedicated autocommit connection outside the pool that comes back after the
connection breaks. Example::

    wakeups = PostgresWakeups(conninfo)
    woken = wakeups.wait(1.0)
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from typing import Any

import psycopg

INTERRUPT_SLICE = 0.25
"""Longest a LISTEN wait runs on after :meth:`PostgresWakeups.interrupt`."""


class _Listening:
    """A dedicated autocommit connection that LISTENs on one channel and comes back after
    the connection breaks (server restart, terminated backend, network): the next
    :meth:`_notes` reconnects and LISTENs again, and says so, because notifications sent
    while it was away are lost and the caller must look for itself."""

    channel = ""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._conn: psycopg.Connection[Any] | None = None
        self._closed = False
        self._interrupted = threading.Event()
        self._connect()

    def _connect(self) -> None:
        conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5)
        try:
            conn.execute(f"LISTEN {self.channel}")
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _notes(self, timeout: float) -> tuple[list[str], bool]:
        """Payloads that arrived within ``timeout`` (a burst drained at once), and whether
        the connection was just re-established. Raises a psycopg error while the server
        cannot be reached; the next call tries again."""
        if self._closed:
            raise psycopg.InterfaceError("listener is closed")
        if self._conn is None or self._conn.closed:
            self._conn = None
            self._connect()
            return [], True  # the caller looks for itself before waiting again
        conn = self._conn
        assert conn is not None
        found: list[str] = []
        deadline = time.monotonic() + max(timeout, 0.0)
        try:
            # In slices: a wait on the socket cannot be woken from another thread, and a
            # drain must not sleep out a long poll (see interrupt()).
            while not found and not self._interrupted.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                for note in conn.notifies(timeout=min(remaining, INTERRUPT_SLICE), stop_after=1):
                    found.append(note.payload)
            self._interrupted.clear()
            if found:
                for note in conn.notifies(timeout=0.0):
                    found.append(note.payload)
        except psycopg.Error:
            # Broken: drop it, so the next call starts a fresh connection.
            self._conn = None
            with contextlib.suppress(psycopg.Error):
                conn.close()
            raise
        return found, False

    def interrupt(self) -> None:
        """End the current (or the next) wait within ``INTERRUPT_SLICE`` seconds."""
        self._interrupted.set()

    def close(self) -> None:
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()


class PostgresWakeups(_Listening):
    """A dedicated connection that LISTENs for ready operations."""

    channel = "longops_ready"

    def wait(self, timeout: float) -> bool:
        """True when woken, or when the connection was re-established (anything may have
        been enqueued meanwhile)."""
        found, reconnected = self._notes(timeout)
        return bool(found) or reconnected


class PostgresCancelListener(_Listening):
    """A dedicated connection that LISTENs for cancel requests (payload: operation id)."""

    channel = "longops_cancel"

    def wait(self, timeout: float) -> list[uuid.UUID]:
        found, _ = self._notes(timeout)
        return [uuid.UUID(p) for p in found]
