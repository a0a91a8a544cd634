"""A task for the lock tests' worker and command-line processes."""

from __future__ import annotations

from longops import Longops

app = Longops()


@app.task(name="echo")
def echo(value: object = None) -> object:
    return value
