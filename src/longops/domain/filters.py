"""Which operations a caller asks for: the filter every front end builds (the API's query
parameters, the pages' filter bar, ``longops ops list``) and core narrows to the actor's
companies before the store turns it into SQL.

Example::

    OperationFilter(company="CRONUS", statuses=(Status.ERROR,), task="post_invoices", limit=50)
"""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from longops.domain.operation import Operation
from longops.domain.status import Status


class SortKey(enum.StrEnum):
    """A column a list of operations may be sorted by (ties broken by entry number, in
    the same direction). Operations without a value (not ended yet, no user) sort after
    every value ascending, before them descending."""

    ENTRY_NO = "entry_no"
    DESCRIPTION = "description"
    """The description, or the task name where there is none (what the list shows)."""
    PRIORITY = "priority"
    USER = "user"
    EARLIEST_START = "earliest_start"
    ENDED = "ended"
    DURATION = "duration"
    """From start to end (operations not ended have none)."""


@dataclass(frozen=True, slots=True)
class SortCursor:
    """Where a sorted page goes on: the last shown operation's sort value and entry number
    (keyset paging: the next page holds the operations after it in the sort order).

    ``value`` is what :func:`sort_value` gives for that operation: text, a whole number
    (priority; a duration in microseconds), a time, or None (no value)."""

    entry_no: int
    value: str | int | datetime | None = None


def sort_value(key: SortKey, op: Operation) -> str | int | datetime | None:
    """The value ``op`` sorts by under ``key``, as a cursor carries it."""
    if key is SortKey.ENTRY_NO:
        return op.entry_no
    if key is SortKey.DESCRIPTION:
        return op.description or op.task
    if key is SortKey.PRIORITY:
        return int(op.priority)
    if key is SortKey.USER:
        return op.user
    if key is SortKey.EARLIEST_START:
        return op.earliest_start_at
    if key is SortKey.ENDED:
        return op.ended_at
    if op.ended_at is None or op.started_at is None:
        return None
    return duration_micros(op.ended_at - op.started_at)


def duration_micros(span: timedelta) -> int:
    """A duration in whole microseconds (how a cursor carries a duration: exact)."""
    return (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds


_ENTRY_NO = re.compile(r"^(?:#|no\.?\s*)?(\d{1,18})$", re.IGNORECASE)
_ID_PREFIX = re.compile(r"^[0-9a-f]{4,32}$")


@dataclass(frozen=True, slots=True)
class SearchTerms:
    """What a search box's text stands for: always a case-insensitive substring of the
    description, the task name or the last error; and also an entry number when it reads
    as one (``4711``, ``#4711``), and an id prefix when it reads as one (4 or more hex
    digits, dashes ignored: ``3f2a``, ``3f2a9c1e-77``). A number written ``#4711`` or
    ``No. 4711`` is that entry number only (no text search)."""

    text: str
    entry_no: int | None = None
    id_low: uuid.UUID | None = None
    id_high: uuid.UUID | None = None
    number_only: bool = False


def search_terms(text: str) -> SearchTerms:
    """Read a search box's text (see :class:`SearchTerms`).

    Example::

        search_terms("#4711").entry_no      # 4711 (and only that: number_only)
        search_terms("3f2a9c").id_low       # UUID('3f2a9c00-0000-0000-0000-000000000000')
    """
    raw = text.strip()
    entry_no = None
    number_only = False
    if match := _ENTRY_NO.match(raw):
        entry_no = int(match.group(1))
        number_only = not raw.isdigit()
    low = high = None
    compact = raw.lower().replace("-", "")
    if _ID_PREFIX.match(compact) and (len(compact) == 32 or "-" not in raw or _dashed(raw)):
        low = uuid.UUID(compact.ljust(32, "0"))
        high = uuid.UUID(compact.ljust(32, "f"))
    return SearchTerms(raw, entry_no, low, high, number_only)


def _dashed(raw: str) -> bool:
    """Are the dashes where a UUID's text has them (8-4-4-4-12)?"""
    return all(raw[i] == "-" for i in (8, 13, 18, 23) if i < len(raw)) and all(
        c != "-" for i, c in enumerate(raw) if i not in (8, 13, 18, 23)
    )


@dataclass(frozen=True, slots=True)
class OperationFilter:
    """Operations matching every field given, in entry order (``descending``: newest
    first); page on with ``after_entry_no`` / ``before_entry_no``."""

    company: str | None = None
    statuses: tuple[Status, ...] = ()
    task: str | None = None
    category: str | None = None
    queue: str | None = None
    limit: int = 100
    after_entry_no: int | None = None
    companies: frozenset[str] | None = None
    """Only these companies; core sets it to the actor's (a front end leaves it None, which
    means every company the actor may read)."""
    user: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None
    text: str | None = None
    """Case-insensitive substring of the task name, the description or the last error;
    also an entry number or an id prefix when it reads as one (:func:`search_terms`)."""
    descending: bool = False
    """Newest first (entry number descending); page on with ``before_entry_no``."""
    before_entry_no: int | None = None
    stalled: bool | None = None
    """True: only operations in process flagged stalled; False: only the others."""
    user_prefix: str | None = None
    """Operations of the users whose name starts with this (case-insensitive)."""
    sort: SortKey = SortKey.ENTRY_NO
    """The order (``descending`` gives its direction); ties go by entry number."""
    cursor: SortCursor | None = None
    """A sorted page goes on after this operation (``sort`` other than ENTRY_NO; the entry
    order pages with ``after_entry_no`` / ``before_entry_no``)."""
