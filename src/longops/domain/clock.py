"""Time, injected. Nothing in longops calls ``datetime.now()`` directly.

Example::

    clock = FrozenClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    clock.advance(seconds=30)
    assert clock.now().second == 30
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Source of the current time (always timezone-aware, UTC)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that moves only when told to; for tests. Thread-safe."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware start")
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | None = None, *, seconds: float = 0) -> datetime:
        with self._lock:
            self._now += (delta or timedelta()) + timedelta(seconds=seconds)
            return self._now

    def set(self, at: datetime) -> None:
        with self._lock:
            self._now = at


class OffsetClock:
    """The real clock shifted by an offset that tests can move forward.

    Used by end-to-end tests with real worker threads, where time must flow but a test
    wants to jump past a backoff or a session timeout without waiting.
    """

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            offset = self._offset
        return datetime.fromtimestamp(time.time() + offset, UTC)

    def advance(self, *, seconds: float) -> None:
        with self._lock:
            self._offset += seconds
