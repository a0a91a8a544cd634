"""Following one operation until it ends, for ``longops ops watch``: a Rich progress bar on
a terminal, a line per change elsewhere (pipes, files, CI logs).

Example::

    op = follow(cli, op.id, interval=0.25, deadline=None)   # returns the operation at its end
"""

from __future__ import annotations

import time
from typing import Any

from longops.cli.context import CliState
from longops.cli.render import eta_text, rate_text, status_label
from longops.domain.status import Status


def follow(cli: CliState, op_id: Any, interval: float, deadline: float | None) -> Any:
    """Read the operation every ``interval`` seconds and show each change, until it is done
    or ``time.monotonic()`` passes ``deadline``; return its last reading."""
    if cli.out.is_terminal:
        return _watch_live(cli, op_id, interval, deadline)
    return _watch_lines(cli, op_id, interval, deadline)


def _watch_state(cli: CliState, op_id: Any) -> tuple[Any, str, float | None, dict[str, str]]:
    service = cli.front.service
    op = service.get(op_id)
    reading = service.estimated([op]).get(op.id)
    now = cli.app.clock.now()
    description = status_label(op)
    if reading is not None and reading.step_label:
        description += f" · {reading.step_label}"
    elif op.status.value == "ready":
        waits = service.wait_reasons([op])
        if op.id in waits:
            description += f" · {waits[op.id].code.value}"
    running = op.status is Status.IN_PROCESS
    fields = {
        "message": (reading.message or "") if reading else "",
        "rate": rate_text(reading) if running else "",
        "eta": eta_text(reading, now) if running else "",
    }
    return op, description, None if reading is None else reading.percent, fields


def _watch_live(cli: CliState, op_id: Any, interval: float, deadline: float | None) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[eta]}"),
        TextColumn("{task.fields[message]}"),
    )
    with Progress(*columns, console=cli.out, transient=False) as bar:
        op, description, _, fields = _watch_state(cli, op_id)
        task = bar.add_task(
            description, total=100, message=fields["message"], rate=fields["rate"], eta=""
        )
        while True:
            op, description, percent, fields = _watch_state(cli, op_id)
            bar.update(
                task,
                description=description,
                completed=100.0 if op.status is Status.FINISHED else (percent or 0.0),
                message=fields["message"],
                rate=fields["rate"],
                eta=fields["eta"],
            )
            if op.done or (deadline is not None and time.monotonic() >= deadline):
                bar.refresh()
                return op
            time.sleep(interval)


def _watch_lines(cli: CliState, op_id: Any, interval: float, deadline: float | None) -> Any:
    last = None
    while True:
        op, description, percent, fields = _watch_state(cli, op_id)
        shown = f"{percent:.0f}%" if percent is not None else ""
        parts = (description, shown, fields["message"], fields["rate"], fields["eta"])
        line = "  ".join(part for part in parts if part)
        if line != last:
            cli.out.print(line, markup=False)
            last = line
        if op.done or (deadline is not None and time.monotonic() >= deadline):
            return op
        time.sleep(interval)
