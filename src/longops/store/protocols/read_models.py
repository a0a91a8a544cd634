"""The pages' read models: counts, running operations, runs per hour, log entries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from longops.domain.operation import (
    Operation,
    Outcome,
)
from longops.domain.read_models import CategoryActivity, LogEntry
from longops.domain.status import Status
from longops.store.protocols.operations import Companies, OperationQuery


@dataclass(frozen=True, slots=True)
class AttemptQuery:
    """Log entries (attempts) of one company, newest first: the Log Entries page."""

    company: str
    companies: frozenset[str] | None = None
    """Only these companies (core sets it to the actor's); None means every company."""
    task: str | None = None
    outcomes: tuple[Outcome, ...] = ()
    operation_id: uuid.UUID | None = None
    started_from: datetime | None = None
    started_to: datetime | None = None
    """Runs that started in ``[started_from, started_to)``."""
    before_entry_no: int | None = None
    """Keyset paging: the entries before the last one a page showed."""
    limit: int = 100


class ReadModelStore(Protocol):
    """Reads shaped for the pages (each one read, bounded)."""

    def count_capped(self, queries: Sequence[OperationQuery], cap: int) -> list[int]:
        """How many operations each query's filter matches (its limit and paging ignored),
        counted no further than ``cap``; one read for all of them."""
        ...

    def count_by_status(self, query: OperationQuery, cap: int) -> dict[Status, int]:
        """How many operations the query's filter (its statuses, limit and paging ignored)
        matches per status, in one read of at most ``cap`` operations: when the counts add
        up to ``cap``, the filter may match more, and each is a lower bound (a status
        without any may still have some)."""
        ...

    def list_running(
        self,
        company: str | None = None,
        *,
        user: str | None = None,
        companies: Companies = None,
        limit: int = 100,
    ) -> list[Operation]:
        """Operations in process, the one that started first first."""
        ...

    def runs_per_hour(
        self, company: str, since: datetime, hours: int, *, bucket_seconds: int = 3600
    ) -> list[tuple[int, int, int]]:
        """(bucket index after ``since``, runs that succeeded, runs that failed) for the
        buckets that had any, over ``hours`` hours; index 0 is ``[since, since + bucket)``
        (an hour unless ``bucket_seconds`` says otherwise)."""
        ...

    def category_activity(self, company: str, cap: int) -> list[CategoryActivity]: ...
    def list_company_attempts(self, query: AttemptQuery) -> list[LogEntry]:
        """Log entries newest first, each with its operation's description."""
        ...
