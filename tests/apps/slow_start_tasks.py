"""A process-isolated task whose module takes 2 s to import in a child process, twice its
1 s timeout: the timeout counts from when its code begins, not from the child's start."""

from __future__ import annotations

import sys
import time

from apps.tracking_app import app
from longops import RunContext

if sys.argv[:1] == ["-c"]:  # in a child process (started with -c), not in the worker
    time.sleep(2.0)


@app.task(name="track.slow_start", isolation="process", timeout=1, cancel_grace=0.5, max_attempts=1)
def slow_start(ctx: RunContext) -> str:
    return "asked to stop" if ctx.cancelled else "began late, ran at once"
