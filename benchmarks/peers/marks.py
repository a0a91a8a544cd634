"""The mark every benchmark job leaves: ``"<job number> <enqueue time> <start time>"``
appended to a file of its process in ``$BENCH_MARKS_DIR``. Standard library only, so
longops's venv and the peers' venv both import it; the same cheap write for every system (no
extra database write that would load one store more than another). ``O_APPEND`` writes this
short are atomic, so threads and processes never interleave a line."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator

_fd: int | None = None
_pid = 0


def mark(n: int, enqueued: float) -> None:
    """Record that job ``n``, enqueued at ``enqueued`` (``time.time()`` in the client),
    started now."""
    global _fd, _pid
    started = time.time()
    pid = os.getpid()
    if _fd is None or _pid != pid:  # a forked child opens its own file
        path = os.path.join(os.environ["BENCH_MARKS_DIR"], f"{pid}.txt")
        _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        _pid = pid
    os.write(_fd, f"{n} {enqueued:.6f} {started:.6f}\n".encode())


def paced(count: int, spacing: float) -> Iterator[int]:
    """``0 .. count-1``, the i-th not before ``i * spacing`` s from the first (0: no pause)."""
    started = time.perf_counter()
    for i in range(count):
        pause = started + i * spacing - time.perf_counter()
        if spacing and pause > 0:
            time.sleep(pause)
        yield i


async def paced_async(count: int, spacing: float) -> AsyncIterator[int]:
    """:func:`paced` for event loops."""
    started = time.perf_counter()
    for i in range(count):
        pause = started + i * spacing - time.perf_counter()
        if spacing and pause > 0:
            await asyncio.sleep(pause)
        yield i
