"""Tasks for the operation-tracking tests: progress, cancellation, timeouts, process
isolation and checkpoints. Module-level functions, so child processes find them by name.

Tasks that must tell the test something from a child process (or from a worker process the
test kills) write small files into the folder named by their ``folder`` argument.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from longops import Longops, RunContext

app = Longops()


def _note(folder: str, name: str, text: str = "") -> None:
    path = Path(folder) / name
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)  # atomic: a reader never sees half a note


def _wait_file(path: Path, *, ctx: RunContext | None = None, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while not path.exists():
        if ctx is not None:
            ctx.check_cancelled()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.01)


@app.task(name="track.count")
def count(ctx: RunContext, n: int, total: int | None = None) -> int:
    """Advance ``n`` times as fast as it can (the benchmark's and the budget test's task)."""
    ctx.progress(0, total=total or n, unit="items")
    for _ in range(n):
        ctx.advance()
    return n


@app.task(name="track.paced")
def paced(ctx: RunContext, folder: str, steps: int = 3, items: int = 5) -> str:
    """Steps of items, each item waiting for the test's go-ahead file ``go-<step>-<item>``."""
    for step in range(1, steps + 1):
        ctx.step(f"phase {step}", step, steps)
        ctx.progress(0, total=items, unit="rows", message=f"phase {step} started")
        for item in range(1, items + 1):
            _wait_file(Path(folder) / f"go-{step}-{item}", ctx=ctx)
            ctx.advance()
    return "paced"


@app.task(name="track.until_cancelled")
def until_cancelled(ctx: RunContext, folder: str) -> None:
    """Reports once, then checks for a cancel request in a tight loop; notes when it saw it."""
    ctx.progress(1, total=100, message="waiting to be cancelled")
    _note(folder, "started", str(time.time()))
    while not ctx.cancelled:
        time.sleep(0.002)
    _note(folder, "saw_cancel", str(time.time()))
    ctx.check_cancelled()


@app.task(name="track.spin", isolation="process", cancel_grace=1, max_attempts=2)
def spin(ctx: RunContext, folder: str) -> None:
    """A CPU loop that never looks at the cancellation signal."""
    _note(folder, f"spin-{ctx.attempt}", str(os.getpid()))
    x = 0
    while True:
        x += 1


@app.task(name="track.spin_thread", cancel_grace=0.5)
def spin_thread(ctx: RunContext, folder: str) -> str:
    """Thread-isolated code that ignores its cancel request until the test releases it."""
    _note(folder, "spin_thread", "")
    _wait_file(Path(folder) / "release")
    return "finished anyway"


@app.task(name="track.async_ignores", cancel_grace=0.5)
async def async_ignores(ctx: RunContext, folder: str) -> None:
    """Awaits for a long time without looking at the signal: asyncio cancellation stops it."""
    _note(folder, "async_started", "")
    await asyncio.sleep(3600)


@app.task(name="track.crash", isolation="process")
def crash(ctx: RunContext, how: str) -> None:
    """Dies the way it is told to: os._exit(1), or SIGKILL of its own process."""
    ctx.progress(1, total=2)
    time.sleep(0.2)  # let the progress reach the worker first
    if how == "exit":
        os._exit(1)
    os.kill(os.getpid(), signal.SIGKILL)


@app.task(name="track.in_child", isolation="process")
def in_child(ctx: RunContext, folder: str, items: int = 4) -> dict[str, object]:
    """Progress, a checkpoint and a step from a child process, gated by go-ahead files."""
    ctx.step("only step", 1, 1)
    ctx.progress(0, total=items, unit="files")
    for i in range(1, items + 1):
        _wait_file(Path(folder) / f"child-go-{i}", ctx=ctx)
        ctx.advance()
        ctx.checkpoint({"done": i})
    return {"pid": os.getpid(), "resume": ctx.resume_state}


@app.task(name="track.items", max_attempts=3)
def items(ctx: RunContext, folder: str, n: int = 1000, every: int = 100) -> int:
    """Processes ``n`` items, checkpointing every ``every``; each processed item is appended
    to ``processed`` (the test's independent count). Resumes from its checkpoint."""
    start = (ctx.resume_state or {}).get("next", 0)
    ctx.progress(start, total=n, unit="items")
    total = (ctx.resume_state or {}).get("sum", 0)
    with open(Path(folder) / "processed", "a") as out:
        for i in range(start, n):
            total += i
            out.write(f"{ctx.attempt} {i}\n")
            out.flush()
            ctx.advance()
            if (i + 1) % every == 0:
                ctx.checkpoint({"next": i + 1, "sum": total})
                _note(folder, "checkpointed", str(i + 1))
            if i == 450 and ctx.attempt == 1:
                # Park mid-run so the test can kill the whole worker here.
                _note(folder, "parked", "")
                _wait_file(Path(folder) / "never")
            time.sleep(0.001)
    return total


@app.task(name="track.sleepy", timeout=1, max_attempts=2, cancel_grace=0.5)
def sleepy(ctx: RunContext) -> str:
    """Cooperative, but slower than its 1 s timeout on its first attempt."""
    if ctx.attempt == 1:
        while True:
            ctx.check_cancelled()
            time.sleep(0.01)
    return "second attempt"


@app.task(
    name="track.spin_timeout", isolation="process", timeout=1, cancel_grace=0.5, max_attempts=2
)
def spin_timeout(ctx: RunContext, folder: str) -> str:
    """Spins past its timeout on the first attempt; succeeds on the second."""
    _note(folder, f"spin_timeout-{ctx.attempt}", "")
    if ctx.attempt == 1:
        while True:
            pass
    return "second attempt"


@app.task(name="track.quick")
def quick(x: int = 0) -> int:
    return x


@app.task(name="track.in_child_pid", isolation="process")
def in_child_pid() -> int:
    return os.getpid()


@app.task(name="track.patient_spin", isolation="process", cancel_grace=300)
def patient_spin(ctx: RunContext, folder: str) -> None:
    """Like ``track.spin`` with a five-minute grace: only a forced cancel ends it soon."""
    spin(ctx, folder)


@app.task(name="track.bad_progress")
def bad_progress(ctx: RunContext) -> None:
    ctx.progress(-5)


@app.task(name="track.same_progress")
def same_progress(ctx: RunContext, folder: str) -> None:
    """Reports the same reading over and over (every 100 reports noted in ``reports``)."""
    reports = 0
    while not (Path(folder) / "release").exists():
        ctx.progress(1, total=10, message="same as before")
        reports += 1
        if reports % 100 == 0:
            _note(folder, "reports", str(reports))
        time.sleep(0.001)


@app.task(name="track.side_effect")
def side_effect(folder: str) -> str:
    """No context: it cannot see a cancel request, so it must not start once one is known."""
    _note(folder, "side_effect_ran", "")
    return "ran"


def zone_utc() -> ZoneInfo:
    return ZoneInfo("UTC")
