"""App ``shop`` version 2 for the rolling-deploy tests: version 1's task and a new one."""

from __future__ import annotations

from longops import Longops

app = Longops(name="shop", version="2")


@app.task(name="shop.greet")
def greet(who: str) -> str:
    return f"hello {who}"


@app.task(name="shop.shout", worker_wait=3600)
def shout(who: str) -> str:
    return f"HELLO {who.upper()}"
