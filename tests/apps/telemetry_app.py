"""The task of the telemetry tests that run a worker process: the API tests' task ``t``."""

from __future__ import annotations

from longops import Longops, RunContext

app = Longops()


@app.task(name="t")
def t(ctx: RunContext, n: int = 0, label: str = "x") -> int:
    ctx.step("Count", 1, 1)
    return n


def burn(seconds: float) -> float:
    """CPU-bound for ``seconds`` of wall time (the resource-monitoring tests); returns the
    CPU time its own thread got meanwhile."""
    import time

    began = time.thread_time()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return time.thread_time() - began


def rest(seconds: float) -> None:
    import time

    time.sleep(seconds)
