"""Tasks for the browser tests of the pages: a slow multi-step task with live progress, a task
that always fails, and one that waits to be cancelled. Loaded by ``longops serve --app
pages_app:app`` in the browser tests' server process.
"""

from __future__ import annotations

import time

from longops import Longops, RunContext


def slow(ctx: RunContext, steps: int = 3, items: int = 40, pause: float = 0.25) -> int:
    """Reports progress a few times a second over ``steps`` steps; a cancel request stops it
    at the next ``advance()`` (the browser tests cancel it part way)."""
    done = 0
    for step in range(1, steps + 1):
        ctx.step(f"Step {step}", step, steps)
        ctx.progress(0, total=items, unit="rows", message=f"working on step {step}")
        for _ in range(items):
            time.sleep(pause)
            ctx.advance()
            done += 1
    return done


def fail(ctx: RunContext, message: str = "the ledger does not balance") -> None:
    """Fails at once with a recognisable message (the card shows it; Restart runs it again)."""
    ctx.progress(1, total=2, message="checking the ledger")
    raise RuntimeError(message)


def idle(ctx: RunContext, limit: float = 600) -> None:
    """Sits in process until cancelled (or ``limit`` seconds pass)."""
    ctx.progress(0, total=1, message="waiting")
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        ctx.check_cancelled()
        time.sleep(0.05)


def register(app: Longops) -> Longops:
    """Register this module's tasks on ``app`` (the server's, or a test's own library
    instance on the same database, which enqueues and inspects as SUPER)."""
    app.task(name="pages.slow", description="Slow multi-step report")(slow)
    app.task(name="pages.fail", description="Always fails")(fail)
    app.task(name="pages.idle", description="Waits to be cancelled")(idle)
    return app


app = register(Longops())
