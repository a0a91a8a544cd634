"""Printing operations for people (Rich tables) and for programs (``--json``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from longops.domain.operation import Attempt, Operation
from longops.domain.status import Status
from longops.domain.users import AuditEntry

STATUS_STYLE = {
    Status.ON_HOLD: "yellow",
    Status.READY: "cyan",
    Status.IN_PROCESS: "bold blue",
    Status.FINISHED: "green",
    Status.ERROR: "bold red",
    Status.CANCELLED: "magenta",
}


def print_json(console: Console, data: Any) -> None:
    # Plain print: Rich would wrap long lines and break the JSON for programs.
    console.file.write(json.dumps(data, indent=2, default=str) + "\n")


def when(value: datetime | None) -> str:
    return "" if value is None else value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def operations_table(ops: Sequence[Operation], title: str = "Job Queue Entries") -> Table:
    table = Table(title=title, show_lines=False, expand=False)
    for column in ("Entry", "Status", "Task", "Description", "Category", "Priority",
                   "User", "Attempts", "Earliest start", "Last error"):  # fmt: skip
        table.add_column(column, overflow="fold")
    for op in ops:
        status = op.status.caption
        if op.cancel_request and op.status is Status.IN_PROCESS:
            status = "Cancelling"
        table.add_row(
            str(op.entry_no),
            f"[{STATUS_STYLE[op.status]}]{status}[/]",
            op.task,
            op.description or "",
            op.category or "",
            op.priority.label if op.category else "",
            _user(op),
            f"{op.attempt_count}/{op.max_attempts}",
            when(op.earliest_start_at) if op.status in (Status.READY, Status.ON_HOLD) else "",
            (op.last_error or "")[:60],
        )
    return table


def _user(op: Operation) -> str:
    # Business Central shows an entry whose user no longer exists in red.
    if op.user is None:
        return ""
    if op.user_inactive:
        return f"[bold red]{op.user} (inactive)[/]"
    return op.user


def audit_table(entries: Sequence[AuditEntry]) -> Table:
    table = Table(title="Audit log")
    for column in ("Id", "At", "Company", "Actor", "From", "Action", "Target", "Details"):
        table.add_column(column, overflow="fold")
    for e in entries:
        details = ", ".join(f"{k}={v}" for k, v in e.details.items())
        table.add_row(
            str(e.id),
            when(e.at),
            e.company or "",
            e.actor or "(local)",
            e.front_end.value,
            e.action,
            e.target,
            details[:80],
        )
    return table


def attempts_table(attempts: Sequence[Attempt]) -> Table:
    table = Table(title="Log entries (attempts)")
    for column in ("Run", "Attempt", "Outcome", "Started", "Ended", "Duration", "Error"):
        table.add_column(column, overflow="fold")
    for a in attempts:
        duration = a.duration
        table.add_row(
            str(a.number),
            str(a.attempt),
            a.outcome.value,
            when(a.started_at),
            when(a.ended_at),
            "" if duration is None else f"{duration.total_seconds():.1f} s",
            (a.error_message or "")[:80],
        )
    return table
