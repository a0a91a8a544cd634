"""The task ``bench_sse.py`` runs in its worker processes: an operation that reports
progress ``steps`` times, ``pause`` seconds apart, so every operation's timeline carries a
start, ``steps`` progress readings and an end."""

from __future__ import annotations

import time

from longops import Longops, RunContext

REPORT = "sse.report"

app = Longops()


@app.task(name=REPORT)
def report(ctx: RunContext, steps: int = 4, pause: float = 0.08) -> int:
    for done in range(1, steps + 1):
        time.sleep(pause)
        ctx.progress(done, total=steps, unit="parts")
    return steps
