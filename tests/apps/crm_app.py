"""App ``crm`` for the two-apps test (beside ``shop``) and the uninstall test."""

from __future__ import annotations

import time

from longops import Longops, RunContext

app = Longops(name="crm", version="3.1")


@app.task(name="crm.sync")
def sync(n: int) -> int:
    return n


@app.task(name="crm.long", category="CRMSYNC")
def long(ctx: RunContext, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ctx.check_cancelled()
        time.sleep(0.02)
