"""Which operations a caller asks for: the filter every front end builds (the API's query
parameters, the pages' filter bar, ``longops ops list``) and core narrows to the actor's
companies before the store turns it into SQL.

Example::

    OperationFilter(company="CRONUS", statuses=(Status.ERROR,), task="post_invoices", limit=50)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from longops.domain.status import Status


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
    """Case-insensitive substring of the task name or the description."""
    descending: bool = False
    """Newest first (entry number descending); page on with ``before_entry_no``."""
    before_entry_no: int | None = None
    stalled: bool | None = None
    """True: only operations in process flagged stalled; False: only the others."""
