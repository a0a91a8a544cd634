"""What the management pages read besides operations: notifications, the overview's cues
and chart, facet counts, and how busy each category is.

A :class:`Notification` is written when one of a user's operations ends (finished, error
or cancelled), in the same transaction as that change; the inbox lists them and the
pages' live stream turns new ones into toasts.

Example::

    >>> NotificationKind.for_status(Status.ERROR)
    <NotificationKind.FAILED: 'failed'>
    >>> format_count(10_001)
    '10,000+'
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from longops.domain.operation import Attempt, Operation
from longops.domain.status import Status

COUNT_CAP = 10_000
"""Facet counts stop here: a count of ``COUNT_CAP + 1`` means "more than COUNT_CAP"
(shown as "10,000+"), so a facet over a million rows costs no more than one over ten
thousand."""


def format_count(n: int, cap: int = COUNT_CAP) -> str:
    """A capped count as people read it.

    Example::

        format_count(42)       # '42'
        format_count(10_001)   # '10,000+'
    """
    return f"{cap:,}+" if n > cap else f"{n:,}"


class StatusCounts(dict[Status, int]):
    """Operations per status, each count capped at ``COUNT_CAP + 1`` (the facets).

    ``lower_bounds`` is True for a broad search (one matching more than COUNT_CAP): it
    is not counted per status (a scan of every match per status), so each count is how
    many of its first ``COUNT_CAP + 1`` matches have that status, at least that many (a
    status with none among them may still have some; see ``format_bound``).

    Example::

        counts = views.status_counts("CRONUS", query=OperationFilter(text="error"))
        [format_bound(n, counts.lower_bounds) for n in counts.values()]
    """

    lower_bounds: bool = False

    def __init__(self, counts: dict[Status, int], *, lower_bounds: bool = False) -> None:
        super().__init__(counts)
        self.lower_bounds = lower_bounds


def format_bound(n: int, lower_bound: bool, cap: int = COUNT_CAP) -> str:
    """A facet's count as people read it, a lower bound with a "+", none with a "?".

    Example::

        format_bound(42, False)     # '42'
        format_bound(42, True)      # '42+'
        format_bound(0, True)       # '?'
    """
    if not lower_bound or n > cap:
        return format_count(n, cap)
    return f"{n:,}+" if n else "?"


class NotificationKind(StrEnum):
    """How the operation ended, in the words the inbox and the toast use."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @classmethod
    def for_status(cls, status: Status) -> NotificationKind:
        """The kind a terminal status notifies as (KeyError for a status that is not)."""
        return _KIND_OF[status]

    @property
    def caption(self) -> str:
        """ "Succeeded", "Failed" or "Cancelled"."""
        return self.value.capitalize()


_KIND_OF = {
    Status.FINISHED: NotificationKind.SUCCEEDED,
    Status.ERROR: NotificationKind.FAILED,
    Status.CANCELLED: NotificationKind.CANCELLED,
}


@dataclass(frozen=True, slots=True)
class Notification:
    """One entry of a user's inbox: one of their operations ended."""

    id: int
    company: str
    user: str
    operation_id: uuid.UUID
    kind: NotificationKind
    title: str
    """The operation's description when it ended (its task's name when it had none)."""
    created_at: datetime
    read_at: datetime | None = None

    @property
    def read(self) -> bool:
        return self.read_at is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "company": self.company,
            "user": self.user,
            "operation_id": str(self.operation_id),
            "kind": self.kind.value,
            "title": self.title,
            "created_at": self.created_at.isoformat(),
            "read_at": None if self.read_at is None else self.read_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class HourBucket:
    """One bar of the overview's chart: runs that ended in ``[start, start + minutes)``
    (an hour, or 5 minutes when the chart shows the last 2 hours)."""

    start: datetime
    finished: int
    """Runs that succeeded."""
    failed: int
    """Runs that failed (an error, a timeout or a lost session)."""
    minutes: int = 60


@dataclass(frozen=True, slots=True)
class Overview:
    """The role centre of one company, as one actor sees it.

    The cues are capped like facet counts (:data:`COUNT_CAP`; use :func:`format_count`).
    """

    company: str
    ready: int
    in_process: int
    failed: int
    """Operations in Error."""
    my_failures: int
    """The actor's own operations in Error (0 for an actor without a user name)."""
    stalled: int
    """Operations in process whose progress has not moved for their stall period."""
    per_hour: list[HourBucket]
    """24 buckets, oldest first (the last 24 hours, or the last 2 hours by 5 minutes); the
    last bucket holds the current one."""
    longest_running: list[Operation]
    """Up to five operations in process, the one that started first first."""


@dataclass(frozen=True, slots=True)
class CategoryActivity:
    """How busy one category is now (the Categories page's running and waiting counts)."""

    company: str
    code: str
    running: int
    """Its operations in process (at most ``max_concurrent`` unless it was lowered)."""
    waiting: int
    """Its operations that are ready (capped at :data:`COUNT_CAP` + 1)."""


@dataclass(frozen=True, slots=True)
class LogEntry:
    """A row of the Log Entries page: an attempt and the description of its operation."""

    attempt: Attempt
    description: str | None
    """The operation's description now (None when it has none or was deleted)."""
