"""The terminal demo's live table fits 120 columns without breaking a word (it used to fold
"Finished" into "Finishe" and "d")."""

from __future__ import annotations

import dataclasses
import io
from datetime import timedelta
from pathlib import Path

from rich.console import Console

from longops.cli.demo import terminal_requests, terminal_table
from longops.demo.app import app
from longops.domain.progress import Progress
from longops.domain.status import Status
from longops.store.base import OperationQuery
from longops.testing import active_session


def test_the_terminal_demo_table_keeps_words_whole_at_120_columns(tmp_path: Path) -> None:
    app.close()
    app.database_url = f"sqlite:///{tmp_path / 'demo.db'}"
    app.migrate()
    try:
        service = app.service
        app.companies.set_category("default", "POSTING", max_concurrent=1)
        for request in terminal_requests():
            service.enqueue(request)
        now = app.clock.now()
        app.store.register_session(active_session(now, ("default",)))
        ops = list(service.list_operations(OperationQuery(limit=100)))
        waits = service.wait_reasons(ops)
    finally:
        app.close()
    # The longest things the demo shows: a run with step, bar and ETA, and an ended one.
    reading = Progress(
        completed=3, total=8, unit="pages", step_name="Rendering pages", step_index=2,
        step_count=3, rate=1.0, eta_at=now + timedelta(seconds=5),
    )  # fmt: skip
    ops[0] = dataclasses.replace(ops[0], status=Status.IN_PROCESS, progress=reading)
    ops[-1] = dataclasses.replace(ops[-1], status=Status.FINISHED)
    waits.pop(ops[0].id, None)
    waits.pop(ops[-1].id, None)
    assert waits, "the demo's ready operations say why they wait"

    console = Console(width=120, file=io.StringIO(), color_system=None)
    console.print(terminal_table(ops, waits, {ops[0].id: reading}, now))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 120
    words = {"In", "Process", "Finished", "Ready", "Rendering", "pages", "POSTING"}
    for op in ops:
        words.update(op.task.split())
        words.update((op.description or "").split())
    words.update(w.code.value for w in waits.values())
    broken = sorted(w for w in words if not any(w in line for line in lines))
    assert not broken, f"words broken across lines: {broken}\n{text}"
