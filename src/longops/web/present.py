"""How the pages show things: times, durations, progress, and which actions a row offers.

Which buttons a row shows is decided by the same permission table core enforces
(``domain.security.decide``) and the same status machine (``domain.status``), so a button
is shown exactly when core would accept the action. Core still decides: a forged POST is
refused there, whatever the page showed.

Example::

    actions_for(actor, op)      # [RowAction("hold", "Set On Hold"), ...]
"""

from __future__ import annotations

import json
import os
import re
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from longops.domain.errors import LongopsError, ValidationError
from longops.domain.maintenance import MaintenanceMode
from longops.domain.operation import Operation
from longops.domain.progress import Progress, eta_words
from longops.domain.recurrence import Recurrence
from longops.domain.security import Action, Actor, Verdict, decide, satisfies
from longops.domain.status import DELETABLE, Status, allowed_from
from longops.domain.waiting import WaitReason
from longops.web.context import Context


@dataclass(frozen=True, slots=True)
class RowAction:
    """One action button: the path segment it posts to, and its text."""

    path: str
    label: str
    danger: bool = False


ROW_ACTIONS: tuple[tuple[str, str, Action], ...] = (
    # path segment, button text, action in the permission table
    ("set-ready", "Set Ready", Action.SET_READY),
    ("hold", "Set On Hold", Action.HOLD),
    ("restart", "Restart", Action.RESTART),
    ("run-now", "Run now", Action.RUN_NOW),
    ("cancel", "Cancel", Action.CANCEL),
    ("force-cancel", "Force cancel", Action.FORCE_CANCEL),
    ("delete", "Delete", Action.DELETE),
)
ACTION_OF_PATH = {path: action for path, _, action in ROW_ACTIONS}

BULK_ACTIONS = {"cancel": "Cancel", "restart": "Restart", "delete": "Delete"}
"""Bulk button value -> the verb the confirmation asks with (each row is then acted on
through core with the row action of the same name)."""


_DONE = {
    "set-ready": "set ready",
    "hold": "put on hold",
    "restart": "restarted",
    "run-now": "set to run now",
    "cancel": "cancelled",
    "force-cancel": "cancelled by force",
    "delete": "deleted",
}


def short_name(op: Operation) -> str:
    """The operation's description (or task) in at most 60 characters."""
    name = op.description or op.task
    return name[:59] + "…" if len(name) > 60 else name


def action_notice(path: str, op: Operation, after: Operation | None) -> str:
    """The sentence a row action's redirect shows: 'Operation 18 (Post invoices) cancelled.'
    A running operation asked to cancel is still running: the sentence says it stops soon."""
    name = short_name(op)
    done = _DONE[path]
    if notice_awaits_end(path, after):
        done = (
            "asked to stop; it is cancelled when its task next checks"
            if path == "cancel"
            else ("being stopped by force")
        )
    return f"Operation {op.entry_no} ({name}) {done}."


def notice_awaits_end(path: str, after: Operation | None) -> bool:
    """Does the notice of ``path`` (``action_notice``) foretell an end that has not come
    yet ("asked to stop")? Then it is history once the operation is done: the card
    re-renders it (``notice_now``) and its live stream replaces it."""
    return (
        after is not None
        and after.status is Status.IN_PROCESS
        and path in ("cancel", "force-cancel")
    )


def ended_notice(op: Operation) -> str:
    """What a done operation's card says in place of "asked to stop": what did happen
    ('Operation 18 (Post invoices) is now Cancelled.'); the live stream sends the same."""
    return f"Operation {op.entry_no} ({op.description or op.task}) is now {status_caption(op)}."


def notice_now(notice: str | None, about: str | None, op: Operation) -> tuple[str | None, bool]:
    """A carried notice as a page shows it now that ``op`` reads so, and whether it still
    awaits the operation's end (the page's stream then replaces it once it is). A notice
    about ``op`` that foretold its end ("asked to stop") says what happened once it is
    done, whenever the run ended: before this page, or before its stream subscribed."""
    if notice is None or about != str(op.id):
        return notice, False
    if op.done:
        return ended_notice(op), False
    return notice, True


def may(actor: Actor, action: Action, op: Operation) -> bool:
    """Would the permission table let ``actor`` do ``action`` to ``op``?"""
    if decide(actor, action, company=op.company, owner=op.user) is not Verdict.ALLOWED:
        return False
    if action in ("set_ready", "restart", "run_now"):
        return satisfies(actor, op.company, op.required_permission)
    return True


def status_allows(action: str, op: Operation) -> bool:
    """Does ``op``'s status allow ``action`` now (as core's status machine says)?"""
    if action == "cancel":
        if op.status is Status.IN_PROCESS:
            return op.cancel_request is None
        return op.status in allowed_from("cancel")
    if action == "force_cancel":
        return op.status is Status.IN_PROCESS and not (
            op.cancel_request is not None and op.cancel_request.force
        )
    if action == "delete":
        return op.status in DELETABLE
    return op.status in allowed_from(action)


def actions_for(actor: Actor, op: Operation) -> list[RowAction]:
    """The action buttons a row (or the card) shows for ``actor``."""
    out = []
    for path, label, action in ROW_ACTIONS:
        if not status_allows(action, op):
            continue
        if not may(actor, action, op):
            continue
        if action == Action.FORCE_CANCEL and not may(actor, Action.CANCEL, op):
            continue
        out.append(RowAction(path, label, danger=action in ("delete", "force_cancel")))
    return out


def can_act_somewhere(actor: Actor, company: str) -> bool:
    """Does the actor hold more than read access in ``company`` (bulk bar, New operation)?"""
    return decide(actor, Action.ENQUEUE, company=company) is Verdict.ALLOWED


def may_set_up_notifications(ctx: Context) -> bool:
    """Does the page's user see the company's Notification Setup (its admins only)?"""
    actor = ctx.view.actor
    return decide(actor, Action.LIST_NOTIFICATION_SETUP, company=ctx.company) is Verdict.ALLOWED


def maintenance_now(ctx: Context | None) -> MaintenanceMode | None:
    """Maintenance mode for the banner of ``ctx``'s page, or None while it is off (or when
    it cannot be read: the banner never breaks a page)."""
    if ctx is None:
        return None
    try:
        mode = ctx.view.maintenance.status()
    except LongopsError:
        return None
    return mode if mode.active else None


def status_caption(op: Operation) -> str:
    if op.cancelling:
        return "Cancelling"
    return op.status.caption


def status_text(op: Operation) -> str:
    """The status as the card's field shows it: the caption, and the reason when it adds
    something ('Cancelled', not 'Cancelled (cancelled)'; 'Ready (restarted)')."""
    shown = status_caption(op)
    reason = (op.status_reason or "").replace("_", " ").strip()
    if not reason or reason.lower() in (shown.lower(), op.status.value.replace("_", " ")):
        return shown
    return f"{shown} ({reason})"


def event_words(data: Mapping[str, Any]) -> list[str]:
    """A timeline event's details in words, only those with a value: 'reason: not needed',
    'by force'; nothing for an empty reason, a None mode or a False flag."""
    out = []
    for key, value in data.items():
        if key in _UNSHOWN or value is None or value is False or value in ("", [], {}):
            continue
        name = key.replace("_", " ")
        if value is True:
            out.append(_FLAGS.get(key, name))
        elif isinstance(value, str):
            out.append(f"{name}: {value.replace('_', ' ')}")
        elif isinstance(value, (int, float)):
            out.append(f"{name}: {value:,}")
        else:
            out.append(f"{name}: {json.dumps(value, default=str)}")
    return out


_UNSHOWN = frozenset({"entry_no"})
_FLAGS = {"force": "by force"}


def local(value: datetime | None, zone: ZoneInfo | None = None) -> str:
    """A time as people read it, in the company's time zone."""
    if value is None:
        return ""
    shown = value.astimezone(zone or UTC)
    return shown.strftime("%Y-%m-%d %H:%M:%S")


def iso(value: datetime | None) -> str:
    return "" if value is None else value.isoformat()


def duration(value: timedelta | float | None) -> str:
    """'1 h 02 min', '3 min 05 s', '4.2 s'."""
    if value is None:
        return ""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        seconds = 0.0
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


@dataclass(frozen=True, slots=True)
class ProgressView:
    """A progress reading as the bar, its text and the ETA show it."""

    percent: float | None
    text: str
    eta: str
    step: str | None
    message: str | None
    rate: str | None
    counts: str | None
    eta_when: str = ""
    """The ETA's clock time ('16:10:59'); ``eta`` is 'ETA <when>, <eta_left_text>'."""
    eta_left_text: str = ""
    """'in about 5.0 s (from past runs)', or once passed 'overdue by 20 s (taking longer
    than usual)': the part the page's script keeps live between updates."""
    eta_left: float | None = None
    """Seconds to the ETA when rendered (negative: overdue), for the script."""
    eta_note: str = ""
    """The note after the time left ('from past runs', 'a guess: ...'), without brackets."""

    @property
    def value(self) -> str:
        return "" if self.percent is None else f"{self.percent:.0f}"


def progress_view(
    op: Operation, progress: Progress | None, now: datetime, zone: ZoneInfo | None = None
) -> ProgressView:
    """What the progress cell shows: the bar's value, 'NN%' and 'ETA …'."""
    percent = None if progress is None else progress.percent
    if op.status is Status.FINISHED:
        percent = 100.0
    text = "" if percent is None else f"{percent:.0f}%"
    eta = eta_when = eta_left_text = eta_note = ""
    eta_left: float | None = None
    if progress is not None and progress.eta_at is not None and not op.done:
        left = (progress.eta_at - now).total_seconds()
        when = local(progress.eta_at, zone)[11:]
        # How sure: 'about' from this run's own pace, 'from past runs' where the task's
        # earlier runs shaped it (its steps' shares, or its usual duration), 'a guess'
        # where steps are left that no finished run has sized yet.
        words = eta_words(progress)
        note = {
            "from past runs": "from past runs",
            "a guess": "a guess: no finished run to size the steps left",
        }.get(words, "")
        eta_when, eta_left, eta_note = when, left, note
        eta_left_text = eta_relative(left, note)
        eta = f"ETA {when}, {eta_left_text}"
    elif op.status is Status.IN_PROCESS:
        eta = "ETA unknown"
    running = op.status is Status.IN_PROCESS
    if not running:
        # A stopped run has no time left, and its last rate is history.
        eta = eta_when = eta_left_text = eta_note = ""
        eta_left = None
    rate = None
    counts = None
    if progress is not None:
        unit = progress.unit or "items"
        if progress.rate is not None and running:
            rate = f"{progress.rate:,.1f} {unit}/s"
        if progress.completed is not None:
            total = "" if progress.total is None else f" of {progress.total:,.0f}"
            counts = f"{progress.completed:,.0f}{total} {unit}"
    return ProgressView(
        percent=percent,
        text=text,
        eta=eta,
        step=None if progress is None else progress.step_label,
        message=None if progress is None else progress.message,
        rate=rate,
        counts=counts,
        eta_when=eta_when,
        eta_left_text=eta_left_text,
        eta_left=eta_left,
        eta_note=eta_note,
    )


def eta_relative(left: float, note: str = "") -> str:
    """The time to an ETA in words: 'in about 5.0 s (from past runs)'; once it has passed,
    'overdue by 20 s', with '(taking longer than usual)' where past runs set it. The
    pages' script (``longops.js``) words it the same way as the seconds go by.

    Example::

        >>> eta_relative(-20.0, "from past runs")
        'overdue by 20 s (taking longer than usual)'
    """
    if left > 0:
        return f"in about {duration(left)}" + (f" ({note})" if note else "")
    usual = " (taking longer than usual)" if note == "from past runs" else ""
    return f"overdue by {duration(-left)}{usual}"


def sparkline(points: list[dict[str, Any]], width: int = 240, height: int = 40) -> str:
    """The polyline points of a progress sparkline (percent over time), or '' if too few."""
    readings = []
    for p in points:
        percent = p.get("percent")
        at = p.get("at")
        if isinstance(percent, (int, float)) and isinstance(at, str):
            readings.append((datetime.fromisoformat(at).timestamp(), float(percent)))
    if len(readings) < 2:
        return ""
    first, last = readings[0][0], readings[-1][0]
    span = max(last - first, 1e-9)
    coords = []
    for at, percent in readings:
        x = (at - first) / span * width
        y = height - min(max(percent, 0.0), 100.0) / 100 * height
        coords.append(f"{x:.1f},{y:.1f}")
    return " ".join(coords)


def bars(
    buckets: list[tuple[int, int]], width: int = 480, height: int = 120
) -> list[dict[str, float]]:
    """Bar geometry for the overview's chart: per hour, finished and failed side by side."""
    top = max([max(f, e) for f, e in buckets] or [0]) or 1
    slot = width / max(len(buckets), 1)
    out = []
    for i, (finished, failed) in enumerate(buckets):
        x = i * slot
        bar = max(slot / 2 - 1, 1)
        hf = finished / top * (height - 10)
        he = failed / top * (height - 10)
        out.append(
            {
                "x_finished": x,
                "x_failed": x + bar,
                "w": bar,
                "y_finished": height - hf,
                "h_finished": hf,
                "y_failed": height - he,
                "h_failed": he,
                "finished": finished,
                "failed": failed,
            }
        )
    return out


def recurrence_text(rec: Recurrence | None) -> str:
    """A recurrence as typed in the edit form ('every 15m', 'cron:...', or JSON)."""
    if rec is None:
        return ""
    data = rec.to_json()
    if set(data) == {"minutes_between_runs"}:
        minutes = rec.minutes_between_runs
        return f"every {minutes // 60}h" if minutes % 60 == 0 else f"every {minutes}m"
    if set(data) == {"cron"}:
        return f"cron:{rec.cron}"
    if set(data) == {"date_formula"}:
        return f"formula:{rec.date_formula}"
    return json.dumps(data, separators=(", ", ": "))


def recurrence_from_fields(
    minutes: str, days: list[str], start: str, end: str, go_on: bool
) -> Recurrence | None:
    """The recurrence the editor's fields describe; None when none is set."""
    try:
        every = int(minutes) if minutes.strip() else 0
        weekdays = frozenset(int(d) for d in days)
    except ValueError:
        raise ValidationError("recurrence", "minutes and weekdays must be whole numbers") from None
    starting = _time("recurrence.starting_time", start)
    ending = _time("recurrence.ending_time", end)
    if not every and not weekdays and starting is None and ending is None:
        return None
    return Recurrence(
        minutes_between_runs=every,
        weekdays=weekdays,
        starting_time=starting,
        ending_time=ending,
        on_error="continue" if go_on else "stop",
    )


def _time(field: str, text: str) -> time | None:
    if not text.strip():
        return None
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(field, "must be a time HH:MM[:SS]", text) from None


def wait_text(wait: WaitReason | None, zone: ZoneInfo | None = None) -> str:
    """Why a ready operation waits, with its time in the company's time zone."""
    if wait is None:
        return ""
    if wait.until is None:
        return wait.message
    return wait.message.replace(wait.until.isoformat(), local(wait.until, zone))


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of a Python traceback: where, and whether it is the task's own code."""

    where: str
    code: str
    own: bool


@dataclass(frozen=True, slots=True)
class Traceback:
    """A traceback as the card shows it: its frames (the task's own code apart from the
    libraries' and Python's) and the exception line(s) at its end."""

    frames: list[Frame]
    exception: str


_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+))?$')
_LIBRARY = ("site-packages", "dist-packages", "/longops/worker/", "/longops/core/", "<frozen ")


def own_code(path: str) -> bool:
    """Is ``path`` the application's code (not an installed library, Python or longops)?"""
    if any(mark in path for mark in _LIBRARY):
        return False
    stdlib = sysconfig.get_paths().get("stdlib", "")
    return not (stdlib and path.startswith(stdlib))


_INSTALLED = ("site-packages/", "dist-packages/")


def shown_path(path: str) -> str:
    """A frame's file as the card shows it, without the server's folders (where the
    checkout or the virtual environment lies is no business of a page's reader): an
    installed package's path from the package, Python's own from its library, the
    application's from the import path it was found on, else its last three parts.

    Example::

        shown_path("/srv/app/.venv/lib/python3.12/site-packages/httpx/_client.py")
        # 'httpx/_client.py'
    """
    if not path.startswith("/") and not re.match(r"^[A-Za-z]:[\\/]", path):
        return path  # '<frozen runpy>', '<string>', or already relative
    unix = path.replace("\\", "/")
    for mark in _INSTALLED:
        if mark in unix:
            return unix.rsplit(mark, 1)[1]
    stdlib = sysconfig.get_paths().get("stdlib", "").replace("\\", "/").rstrip("/")
    if stdlib and unix.startswith(stdlib + "/"):
        return "python/" + unix[len(stdlib) + 1 :]
    roots = sorted(
        (r.replace("\\", "/").rstrip("/") for r in (*sys.path, os.getcwd()) if r),
        key=len,
        reverse=True,
    )
    for root in roots:
        if root not in ("", "/") and unix.startswith(root + "/"):
            return unix[len(root) + 1 :]
    parts = [p for p in unix.split("/") if p]
    return "…/" + "/".join(parts[-3:]) if len(parts) > 3 else "/".join(parts)


def scrub_paths(text: str | None) -> str | None:
    """A traceback's text with each frame's file as :func:`shown_path` shows it."""
    if not text:
        return text
    return _FILE_IN_TEXT.sub(lambda m: f'File "{shown_path(m.group(1))}"', text)


_FILE_IN_TEXT = re.compile(r'File "([^"]+)"')


def traceback_of(text: str | None) -> Traceback | None:
    """The frames of a Python traceback text, or None when it has none."""
    if not text:
        return None
    frames: list[Frame] = []
    tail: list[str] = []
    lines = text.rstrip().splitlines()
    i = 0
    while i < len(lines):
        found = _FRAME.match(lines[i])
        if found:
            code = ""
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if nxt.startswith("    ") and not _FRAME.match(nxt):
                code = nxt.strip()
                i += 1
                # Python 3.11+ marks the failing part under the code (^^^^): not shown.
                if i + 1 < len(lines) and set(lines[i + 1].strip()) <= {"^", "~"}:
                    i += 1
            where = f"{shown_path(found['file'])}, line {found['line']}"
            if found["func"]:
                where += f", in {found['func']}"
            frames.append(Frame(where, code, own_code(found["file"])))
            tail = []
        elif not lines[i].startswith("Traceback ("):
            tail.append(lines[i])
        i += 1
    if not frames:
        return None
    return Traceback(frames, "\n".join(tail).strip())


SET_READY_VS_RESTART = {
    "set-ready": "Set Ready queues it again as it is: a saved checkpoint is kept, so the "
    "next run resumes from it; it starts when its schedule allows.",
    "restart": "Restart starts it over: the checkpoint is cleared and its attempts count "
    "from zero.",
    "run-now": "Run now starts it at the next free worker, ignoring its earliest start and "
    "run window this once.",
}
"""What the actions that all send an operation back to the queue do differently (the card
explains those it shows when it shows more than one)."""


def action_help(actions: list[RowAction]) -> list[str]:
    """The sentences telling the card's re-queue actions apart, when two or more show."""
    shown = [SET_READY_VS_RESTART[a.path] for a in actions if a.path in SET_READY_VS_RESTART]
    return shown if len(shown) > 1 else []


def actions_key(actions: list[RowAction]) -> str:
    """Which buttons show, as one text: the card's buttons are redrawn only when it changes."""
    return ",".join(a.path for a in actions)
