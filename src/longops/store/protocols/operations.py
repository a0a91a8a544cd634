"""What a store keeps about operations: insert, read, act on, edit and delete them,
their attempts, timelines, and what they wait for."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from longops.domain.filters import OperationFilter
from longops.domain.operation import (
    Attempt,
    CancelMode,
    EventType,
    NewOperation,
    Operation,
    OperationEvent,
    Priority,
)
from longops.domain.recurrence import Recurrence
from longops.domain.status import Status
from longops.domain.users import AuditEntry
from longops.domain.waiting import WaitContext

Companies = Collection[str] | None
"""A company filter: the companies a read may return rows of; None means every company."""


OperationQuery = OperationFilter
"""The store reads operations by the domain's filter (``domain.filters``), as core has
narrowed it to the actor's companies."""


@dataclass(frozen=True, slots=True)
class OperationEdit:
    """The definition of an operation on hold as it is to be saved (every editable field)."""

    description: str | None
    priority: Priority
    category: str | None
    earliest_start_at: datetime
    recurrence: Recurrence | None
    max_attempts: int
    timeout: timedelta


@dataclass(frozen=True, slots=True)
class DeletedCopy:
    """A Delete that can be undone: keep a copy of the row, deleted ``at`` by ``by``, until
    ``until`` (migration 0017); the timeline stays as long as the copy does."""

    at: datetime
    until: datetime
    by: str | None


@dataclass(frozen=True, slots=True)
class ActionParams:
    """A guarded change of status made by a person or a service (not by a run)."""

    operation_id: uuid.UUID
    company: str | None
    allowed_from: frozenset[Status]
    status: Status
    at: datetime
    status_reason: str | None = None
    earliest_start_at: datetime | None = None
    reset_attempts: bool = False
    user: str | None = None
    clear_cancel_request: bool = True
    action: str = ""
    """The action's name, as the timeline records it."""
    by: str | None = None
    """Who acted (the timeline's "by")."""
    cancel_mode: CancelMode | None = None
    cancel_by: str | None = None
    cancel_reason: str | None = None
    clear_checkpoint: bool = False


class OperationStore(Protocol):
    """Operations and their history, as people and services see them."""

    def get_operation_by_entry_no(
        self, entry_no: int, company: str | None = None, *, companies: Companies = None
    ) -> Operation | None: ...
    def insert_operations(
        self, ops: Sequence[NewOperation], *, connection: Any = None
    ) -> list[Operation]: ...
    def insert_operations_bulk(self, ops: Iterable[NewOperation]) -> int: ...
    def get_operation(
        self, operation_id: uuid.UUID, company: str | None = None, *, companies: Companies = None
    ) -> Operation | None: ...
    def list_operations(self, query: OperationQuery) -> list[Operation]: ...
    def count_operations(
        self, company: str | None = None, *, companies: Companies = None
    ) -> dict[Status, int]: ...
    def apply_action(
        self, params: ActionParams, *, audit: AuditEntry | None = None
    ) -> Operation | None: ...
    def request_cancel(
        self,
        operation_id: uuid.UUID,
        company: str | None,
        at: datetime,
        by: str | None,
        reason: str | None,
        *,
        force: bool = False,
        audit: AuditEntry | None = None,
    ) -> Operation | None: ...
    def delete_operation(
        self,
        operation_id: uuid.UUID,
        company: str | None,
        *,
        audit: AuditEntry | None = None,
        keep: DeletedCopy | None = None,
    ) -> bool: ...
    def restore_operation(
        self,
        operation_id: uuid.UUID,
        company: str | None,
        at: datetime,
        by: str | None,
        *,
        audit: AuditEntry | None = None,
    ) -> bool:
        """Put back, as it was, an operation deleted with ``keep`` by ``by`` whose copy is
        kept until ``at`` or later; False when there is none (never kept, past its time,
        deleted by another, restored already) or its dedup key is taken meanwhile. Copies
        past their time are removed on the way."""
        ...

    def delete_failed(
        self, company: str, ended_before: datetime, *, audit: AuditEntry | None = None
    ) -> int: ...
    def list_attempts(
        self, operation_id: uuid.UUID, *, companies: Companies = None
    ) -> list[Attempt]: ...
    def list_events(
        self,
        operation_id: uuid.UUID,
        *,
        after_id: int | None = None,
        types: Sequence[EventType] = (),
        limit: int = 1000,
        run_no: int | None = None,
        newest_first: bool = False,
    ) -> list[OperationEvent]: ...
    def events_since(self, after_id: int, limit: int = 1000) -> list[OperationEvent]:
        """Every operation's timeline after ``after_id``, in id order (live streams)."""
        ...

    def company_events_since(
        self, company: str, after_id: int, limit: int = 1000
    ) -> list[OperationEvent]: ...
    def last_event_id(self) -> int: ...
    def last_entry_no(self) -> int: ...
    def writers_snapshot(self) -> str | None:
        """A token naming the transactions writing to this database now (PostgreSQL: the
        ids of those holding one), for :meth:`writers_done`; None where a lower id can
        never commit after a higher one is visible (SQLite: one writer at a time)."""
        ...

    def writers_done(self, token: str) -> bool:
        """Whether every transaction that was writing at ``token`` has ended (committed or
        rolled back), so an id it held and that is still missing will never appear."""
        ...

    def wait_context(self, now: datetime) -> WaitContext:
        """What wait reasons are derived from, maintenance mode included, in one read
        (PostgreSQL: one statement)."""
        ...

    def recent_durations(self, task: str, limit: int = 20) -> list[float]: ...
    def update_operation(
        self,
        operation_id: uuid.UUID,
        company: str,
        edit: OperationEdit,
        at: datetime,
        *,
        audit: AuditEntry | None = None,
    ) -> Operation | None:
        """Save an on-hold operation's definition; None when it is no longer on hold."""
        ...

    def delete_attempts(
        self, company: str, ended_before: datetime, *, audit: AuditEntry | None = None
    ) -> int: ...
