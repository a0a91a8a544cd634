"""App ``shop`` version 1 for the rolling-deploy tests: one task."""

from __future__ import annotations

from longops import Longops

app = Longops(name="shop", version="1")


@app.task(name="shop.greet")
def greet(who: str) -> str:
    return f"hello {who}"
