"""The tasks the tracking benchmark (``bench_tracking.py``) runs, in a module of their own so
that a process-isolated attempt's child interpreter can import them by name.

- ``track.advance``: ``ctx.advance()`` in a tight loop (optionally cut into ``ctx.step``
  phases), timed inside the task;
- ``track.bare``: the same loop with a bare counter, and with a plain method call, for scale;
- ``track.spin``: waits for its cancel request (``while not ctx.cancelled: sleep(1 ms)``) and
  records when it first saw it, in :data:`SIGHTINGS` (the worker runs in the benchmark's own
  process, so the benchmark reads that dict directly);
- ``track.burn``: a process-isolated CPU spinner that ignores its cancel request, so it is
  stopped by force after its 1 s ``cancel_grace``; it writes the wall-clock times when it
  started and when it first saw the request to files beside ``marker`` (it runs in another
  process).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from longops import Longops, RunContext

ADVANCE = "track.advance"
BARE = "track.bare"
SPIN = "track.spin"
BURN = "track.burn"
BURN_GRACE_S = 1.0
SPIN_LIMIT_S = 60.0
"""A spinner that has not been cancelled after this long gives up (the benchmark fails)."""


@dataclass
class Sighting:
    """When a ``track.spin`` run started and when it first saw its cancel request
    (``time.perf_counter()`` of this process)."""

    started: threading.Event = field(default_factory=threading.Event)
    seen: threading.Event = field(default_factory=threading.Event)
    started_at: float = 0.0
    seen_at: float | None = None


SIGHTINGS: dict[str, Sighting] = {}
_sightings_lock = threading.Lock()


def sighting(key: str) -> Sighting:
    """The sighting record of the spinner run ``key`` (created on first use)."""
    with _sightings_lock:
        return SIGHTINGS.setdefault(key, Sighting())


def advance_loop(ctx: RunContext, calls: int, steps: int) -> dict[str, float]:
    """``calls`` ``ctx.advance()`` calls; with ``steps`` > 0 cut into that many ``ctx.step``
    phases of equal size. Returns the loop's own time (steps and totals included)."""
    parts = max(steps, 1)
    per_part = calls // parts
    started = time.perf_counter()
    for index in range(1, parts + 1):
        if steps:
            ctx.step(f"part {index}", index, steps)
        ctx.progress(0, total=per_part, unit="calls")
        for _ in range(per_part):
            ctx.advance()
    elapsed = time.perf_counter() - started
    return {"loop_s": elapsed, "calls": per_part * parts}


class _PlainCounter:
    __slots__ = ("completed",)

    def __init__(self) -> None:
        self.completed = 0

    def advance(self, n: int = 1) -> None:
        self.completed += n


def bare_loop(calls: int) -> dict[str, float]:
    """The advance loop's shape with no longops in it: a local ``+= 1``, and a call of a
    plain method that adds to an attribute (what any ``advance`` costs at the least)."""
    count = 0
    started = time.perf_counter()
    for _ in range(calls):
        count += 1
    bare = time.perf_counter() - started
    plain = _PlainCounter()
    started = time.perf_counter()
    for _ in range(calls):
        plain.advance()
    method = time.perf_counter() - started
    if count != calls or plain.completed != calls:
        raise RuntimeError("bare loop miscounted")
    return {"bare_s": bare, "method_s": method, "calls": calls}


def spin(ctx: RunContext, key: str) -> None:
    """Wait, 1 ms at a time, until asked to stop; then stop the way task code should."""
    record = sighting(key)
    record.started_at = time.perf_counter()
    record.started.set()
    deadline = record.started_at + SPIN_LIMIT_S
    while not ctx.cancelled:
        time.sleep(0.001)
        if time.perf_counter() > deadline:
            return  # never asked: the benchmark reports this run as invalid
    record.seen_at = time.perf_counter()
    record.seen.set()
    ctx.check_cancelled()  # raises OperationCancelled: the run ends as cancelled


def burn(ctx: RunContext, marker: str, limit_s: float) -> None:
    """Spin on the CPU, ignoring the cancel request (only noting when it came), for at most
    ``limit_s`` seconds. Runs in a child process (``isolation="process"``)."""
    Path(f"{marker}.started").write_text(repr(time.time()))
    seen = False
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        for _ in range(10_000):
            pass
        if not seen and ctx.cancelled:
            Path(f"{marker}.seen").write_text(repr(time.time()))
            seen = True


def make_app(database_url: str) -> Longops:
    """A ``Longops`` on ``database_url`` with the benchmark's tasks registered."""
    app = Longops(database_url)
    app.task(name=ADVANCE)(advance_loop)
    app.task(name=BARE)(bare_loop)
    app.task(name=SPIN)(spin)
    app.task(name=BURN, isolation="process", cancel_grace=BURN_GRACE_S)(burn)
    return app
