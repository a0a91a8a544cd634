"""``longops demo``: the pages with an embedded worker on a fresh SQLite file, two companies,
demo users and demo operations in every state; ``--terminal`` shows the older live table
instead (no pages)."""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from longops.cli.render import operations_table
from longops.core.enqueue import EnqueueRequest
from longops.demo.app import app, seed_demo
from longops.domain.filters import OperationFilter
from longops.domain.operation import Operation, Priority
from longops.domain.progress import Progress
from longops.domain.recurrence import Recurrence
from longops.domain.status import Status
from longops.domain.waiting import WaitReason


@contextlib.contextmanager
def _demo_database(database_url: str | None) -> Iterator[str]:
    """The URL to use: the one given, or a SQLite file in a temporary folder that goes when
    the demo ends (Ctrl-C, SIGTERM and ``--for`` included); a given database is kept."""
    if database_url is not None:
        yield database_url
        return
    folder = tempfile.mkdtemp(prefix="longops-demo-")
    try:
        yield f"sqlite:///{Path(folder) / 'demo.db'}"
    finally:
        app.close()  # the store's connections hold the file open until then
        shutil.rmtree(folder, ignore_errors=True)


def _settled(ops: list[Operation]) -> bool:
    # Recurring operations never finish; the demo is settled when the rest are done.
    return all(op.done for op in ops if not op.recurring) and not any(
        op.status is Status.IN_PROCESS for op in ops
    )


def run_terminal_demo(console: Console, *, seconds: float, database_url: str | None) -> int:
    """A worker and a live table in the terminal until the demo operations settle."""
    logging.getLogger("longops").setLevel(logging.ERROR)
    with _demo_database(database_url) as url:
        return _terminal_demo(console, seconds=seconds, database_url=url)


def terminal_requests() -> list[EnqueueRequest]:
    """What the terminal demo enqueues: one of each demo task and four POSTING batches."""
    requests = [
        EnqueueRequest(task="demo.render_report", kwargs={"pages": 8}),
        EnqueueRequest(task="demo.import_items"),
        EnqueueRequest(task="demo.crunch_numbers"),
        EnqueueRequest(task="demo.sync_catalogue"),
        EnqueueRequest(task="demo.clean_up", recurrence=Recurrence.every(1)),
    ]
    for batch, priority in (("B-1", "low"), ("B-2", "normal"), ("B-3", "high"), ("B-4", "normal")):
        requests.append(
            EnqueueRequest(
                task="demo.post_invoices",
                args=(batch,),
                priority=Priority.parse(priority),
                description=f"Post invoice batch {batch} ({priority})",
            )
        )
    return requests


def terminal_table(
    ops: Sequence[Operation],
    waits: Mapping[uuid.UUID, WaitReason],
    progress: Mapping[uuid.UUID, Progress | None],
    now: datetime,
) -> Table:
    """The live table of the terminal demo, narrow enough for 120 columns without breaking a
    word."""
    table = operations_table(
        ops,
        waits=waits,
        progress=progress,
        now=now,
        # One company, no users, and "scheduled" says what the start time would: those
        # columns would only take the width the others need to keep their words whole.
        hide=("Company", "User", "Earliest start"),
    )
    table.show_edge = False
    table.collapse_padding = True
    return table


def _terminal_demo(console: Console, *, seconds: float, database_url: str) -> int:
    app.close()
    app.database_url = database_url
    app.migrate()
    service = app.service
    app.companies.set_category(
        "default", "POSTING", max_concurrent=1, description="Invoice posting"
    )

    console.print(f"[bold]longops demo[/] on {database_url}")
    for request in terminal_requests():
        service.enqueue(request)
    # Started after the enqueues, so the POSTING batches show High -> Normal -> Low order.
    worker = app.worker(concurrency=4, heartbeat_interval=1, session_timeout=10, grace_period=5)
    worker.start()

    deadline = time.monotonic() + seconds
    query = OperationFilter(limit=100)
    ops = service.list_operations(query)
    try:
        if console.is_terminal:
            with Live(console=console, refresh_per_second=8, transient=False) as live:
                while time.monotonic() < deadline:
                    ops = service.list_operations(query)
                    left = max(deadline - time.monotonic(), 0)
                    table = terminal_table(
                        ops, service.wait_reasons(ops), service.estimated(ops), app.clock.now()
                    )
                    live.update(Group(table, Text(f"{left:4.0f} s left  (Ctrl-C stops)")))
                    if _settled(ops):
                        break
                    time.sleep(0.25)
        else:
            seen: dict[int, str] = {}
            while time.monotonic() < deadline:
                ops = service.list_operations(query)
                for op in ops:
                    label = f"{op.status.caption} (attempt {op.attempt_count}/{op.max_attempts})"
                    step = op.progress.step_label if op.progress else None
                    if op.status is Status.IN_PROCESS and step:
                        label += f" {step}"
                    if seen.get(op.entry_no) != label:
                        seen[op.entry_no] = label
                        console.print(f"entry {op.entry_no} {op.task}: {label}")
                if _settled(ops):
                    break
                time.sleep(0.1)
            for op in ops:
                console.print(
                    f"entry {op.entry_no} {op.task} [{op.category or '-'}/{op.priority.label}]: "
                    f"{op.status.caption}, {op.attempt_count} attempt(s)"
                    + (f", result: {op.result}" if op.result is not None else "")
                    + (f", last error: {op.last_error}" if op.last_error else ""),
                    markup=False,
                )
    except KeyboardInterrupt:
        console.print("interrupted")
    finally:
        worker.stop(grace=5)
    settled = _settled(service.list_operations(query))
    console.print(
        "All demo operations settled." if settled else "Stopped before every operation settled."
    )
    app.close()
    return 0


def run_demo(
    console: Console,
    *,
    seconds: float | None,
    database_url: str | None,
    host: str = "127.0.0.1",
    port: int = 8000,
) -> int:
    """The pages at ``http://host:port`` with an embedded worker and the demo's companies,
    users and operations (``longops.demo.app.seed_demo``), until ``seconds`` have passed
    (None: until Ctrl-C or SIGTERM). The sign-ins are printed, one ``user / password`` a
    line. The temporary SQLite folder is removed on the way out, however the demo ends."""
    logging.getLogger("longops").setLevel(logging.ERROR)
    with _demo_database(database_url) as url:
        return _pages_demo(console, seconds=seconds, database_url=url, host=host, port=port)


def _pages_demo(
    console: Console, *, seconds: float | None, database_url: str, host: str, port: int
) -> int:
    import uvicorn

    from longops.cli.serve import EarlySignals, Server, _Uvicorn

    app.close()
    app.database_url = database_url
    app.migrate()
    users = seed_demo(app)
    worker = app.worker(concurrency=6, heartbeat_interval=1, session_timeout=10, grace_period=5)

    def announce() -> None:
        # Once the pages accept connections: the address printed can be opened at once.
        console.print(f"[bold]longops demo[/] on {database_url}", highlight=False)
        console.print(f"Open http://{host}:{port}/ and sign in as:", highlight=False)
        for user in users:
            console.print(f"  {user.name} / {user.password}   ({user.summary})", highlight=False)
        if seconds is not None:
            console.print(f"The demo stops after {seconds:g} s (Ctrl-C stops it sooner).")
        else:
            console.print("Ctrl-C stops the demo.")
        console.file.flush()

    # uvicorn's own Server raises a SIGTERM again once it has shut down, which ended the
    # demo with -15 before its worker stopped and its temporary folder went; and a TERM
    # sent as soon as the sign-ins are printed would meet Python's default handler.
    server = _Uvicorn(
        uvicorn.Config(Server(app), host=host, port=port, log_level="warning"), on_ready=announce
    )
    early = EarlySignals()
    early.hand_to(server)
    timer = None
    if seconds is not None:
        # uvicorn ends its serve loop (and the lifespan) when should_exit turns true.
        timer = threading.Timer(seconds, lambda: setattr(server, "should_exit", True))
        timer.daemon = True
    worker.start()
    try:
        if timer is not None:
            timer.start()
        server.run()
    finally:
        early.close()
        if timer is not None:
            timer.cancel()
        worker.stop(grace=5)
        counts = app.service.count_operations()
        shown = ", ".join(f"{n} {s.caption}" for s, n in counts.items() if n)
        console.print(f"Demo stopped: {shown}.", highlight=False)
        app.close()
    if signal.SIGINT in server.stopped_by:
        raise KeyboardInterrupt  # Ctrl-C: exit code 130, once everything above is done
    return 0
