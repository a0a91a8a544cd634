"""The task of the telemetry tests that run a worker process: the API tests' task ``t``."""

from __future__ import annotations

from longops import Longops, RunContext

app = Longops()


@app.task(name="t")
def t(ctx: RunContext, n: int = 0, label: str = "x") -> int:
    ctx.step("Count", 1, 1)
    return n
