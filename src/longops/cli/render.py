"""Printing operations for people (Rich tables) and for programs (``--json``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from longops.domain.status import Status

if TYPE_CHECKING:
    from longops.domain.operation import Attempt, Operation
    from longops.domain.progress import Progress
    from longops.domain.users import AuditEntry
    from longops.domain.waiting import WaitReason

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


def bar(percent: float | None, width: int = 10) -> str:
    """A text progress bar: '[#####.....]  50%'."""
    if percent is None:
        return ""
    filled = int(width * min(max(percent, 0.0), 100.0) // 100)
    return f"[{'#' * filled}{'.' * (width - filled)}] {percent:3.0f}%"


def duration(seconds: float) -> str:
    seconds = max(round(seconds), 0)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def eta_text(progress: Progress | None, now: datetime) -> str:
    if progress is None or progress.eta_at is None:
        return ""
    left = (progress.eta_at - now).total_seconds()
    source = {"history": " (typical)", "steps": " (typical)", "guess": " (guess)"}.get(
        progress.eta_source or "", ""
    )
    return f"{duration(left)} left{source}" if left > 0 else f"past its ETA{source}"


def rate_text(progress: Progress | None) -> str:
    if progress is None or progress.rate is None:
        return ""
    per = f" {progress.unit}/s" if progress.unit else "/s"
    return f"{progress.rate:,.1f}{per}"


def status_label(op: Operation) -> str:
    if op.cancelling:
        return "Cancelling"
    if op.status is Status.IN_PROCESS and op.stalled_at is not None:
        return "In Process (stalled)"
    return op.status.caption


COLUMNS = ("Entry", "Company", "Status", "Task", "Description", "Category", "Priority", "User",
           "Attempts", "Earliest start", "Progress", "Waiting / last error")  # fmt: skip


def operations_table(
    ops: Sequence[Operation],
    title: str = "Job Queue Entries",
    *,
    waits: Mapping[uuid.UUID, WaitReason] | None = None,
    progress: Mapping[uuid.UUID, Progress | None] | None = None,
    now: datetime | None = None,
    hide: Collection[str] = (),
) -> Table:
    """The operations as a table; ``hide`` leaves out columns that say nothing (the demo's one
    company) so the rest fits a narrow terminal."""
    waits = waits or {}
    shown_columns = [c for c in COLUMNS if c not in hide]
    rows: list[dict[str, tuple[str, str]]] = []  # column -> (plain text, what is printed)
    for op in ops:
        reading = (progress or {}).get(op.id, op.progress)
        shown = ""
        if op.status is Status.IN_PROCESS and reading is not None:
            parts = (
                bar(reading.percent),
                reading.step_label or "",
                eta_text(reading, now) if now is not None else "",
            )
            shown = " ".join(part for part in parts if part)
        wait = waits.get(op.id)
        note = wait.code.value if wait is not None else (op.last_error or "")[:60]
        label = status_label(op)
        # What people and task code wrote is shown as written, never read as markup.
        plain = {
            "Entry": str(op.entry_no),
            "Company": op.company,
            "Task": op.task,
            "Description": op.description or "",
            "Category": op.category or "",
            "Priority": op.priority.label,
            "User": (op.user or "") + (" (inactive)" if op.user and op.user_inactive else ""),
            "Attempts": f"{op.attempt_count}/{op.max_attempts}",
            "Earliest start": (
                when(op.earliest_start_at) if op.status in (Status.READY, Status.ON_HOLD) else ""
            ),
            "Progress": shown,
            "Waiting / last error": note,
        }
        row = {c: (text, escape(text)) for c, text in plain.items()}
        row["User"] = (plain["User"], _user(op))
        row["Status"] = (label, f"[{STATUS_STYLE[op.status]}]{escape(label)}[/]")
        rows.append(row)
    table = Table(title=title, show_lines=False, expand=False)
    for column in shown_columns:
        # As wide as its longest word, so a narrow terminal wraps between words, not inside
        # them (Rich would otherwise share the width out and fold "Finished" into "Finishe/d").
        words = [w for r in rows for w in r[column][0].split()] + column.split()
        table.add_column(column, overflow="fold", min_width=max(map(len, words), default=1))
    for r in rows:
        table.add_row(*(r[c][1] for c in shown_columns))
    return table


def progress_lines(op: Operation, reading: Progress | None, now: datetime) -> list[str]:
    """The progress of one operation as lines for people (``ops show``)."""
    if reading is None:
        return []
    lines = [f"Progress: {bar(reading.percent, 30) or 'no total reported'}"]
    if reading.completed is not None:
        of = f" of {reading.total:g}" if reading.total else ""
        lines.append(f"  {reading.completed:g}{of} {reading.unit or ''}".rstrip())
    running = op.status is Status.IN_PROCESS
    for label, value in (
        ("Step", reading.step_label),
        ("Message", reading.message),
        ("Rate", rate_text(reading) if running else ""),
        ("ETA", eta_text(reading, now) if running else ""),
        ("Updated", when(reading.updated_at)),
    ):
        if value:
            lines.append(f"  {label}: {value}")
    if op.stalled_at is not None:
        quiet = (now - op.stalled_at + op.stall_after).total_seconds()
        lines.append(
            f"  Stalled: no progress for {duration(quiet)} (flagged at {when(op.stalled_at)})"
        )
    return lines


def _user(op: Operation) -> str:
    # Business Central shows an entry whose user no longer exists in red.
    if op.user is None:
        return ""
    if op.user_inactive:
        return f"[bold red]{escape(op.user)} (inactive)[/]"
    return escape(op.user)


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
        took = a.duration
        table.add_row(
            str(a.number),
            str(a.attempt),
            a.outcome.value,
            when(a.started_at),
            when(a.ended_at),
            "" if took is None else f"{took.total_seconds():.1f} s",
            escape((a.error_message or "")[:80]),
        )
    return table
