"""Tasks the maintenance-mode tests run in real worker processes
(tests/stress/test_maintenance_processes.py)."""

from __future__ import annotations

import time
from pathlib import Path

from longops import Longops, RunContext

app = Longops()


def tasks_into(application: Longops) -> Longops:
    """Register this module's tasks in another application (one on the test's database)."""
    for task in app.registry:
        application.registry.add(task.fn, name=task.name, max_attempts=task.max_attempts)
    return application


@app.task(name="maint.work")
def work(ctx: RunContext, seconds: float) -> float:
    """Runs ``seconds``, then ends (within the drain timeout: it finishes)."""
    time.sleep(seconds)
    return seconds


@app.task(name="maint.long", max_attempts=1)
def long(ctx: RunContext, folder: str) -> str:
    """Its first run goes on until asked to stop (past the drain timeout: handed back); the
    next run of the same operation, which finds its marker, ends at once."""
    marker = Path(folder) / str(ctx.operation_id)
    if marker.exists():
        return "second run"
    marker.touch()
    while not ctx.cancelled:
        time.sleep(0.05)
    ctx.check_cancelled()
    return "stopped"


@app.task(name="maint.quick")
def quick(n: int = 0) -> int:
    return n
