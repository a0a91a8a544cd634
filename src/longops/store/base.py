"""The Store protocol: one method per named query, the same on every dialect.

Each method is a short statement or a short transaction; none is held open while task
code runs. Every write that changes an operation's status names the statuses it may start
from (taken from ``domain.status.ACTIONS``) and, for a running operation, its lease token,
so a stale writer changes nothing.

Example::

    store = open_store("sqlite:///longops.db")
    store.migrate()
    [op] = store.insert_operations([NewOperation.build(task="t", now=clock.now())])
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from longops.domain.apps import AppInfo, AppRecord
from longops.domain.clock import Clock
from longops.domain.filters import OperationFilter
from longops.domain.maintenance import MaintenanceMode
from longops.domain.notify import Channel as NotifyChannel
from longops.domain.notify import (
    Delivery,
    DeliveryStatus,
    OutboxEntry,
    PlannedDelivery,
    Watched,
)
from longops.domain.notify import Rule as NotifyRule
from longops.domain.operation import (
    Attempt,
    CancelMode,
    Category,
    Company,
    EventType,
    NewOperation,
    Operation,
    OperationEvent,
    Outcome,
    Priority,
    Session,
    SessionEvent,
    SessionEventType,
    SessionState,
    StopMode,
)
from longops.domain.read_models import CategoryActivity, LogEntry, Notification
from longops.domain.recurrence import Recurrence
from longops.domain.security import PermissionSet
from longops.domain.status import Status
from longops.domain.users import ApiToken, AuditEntry, User, UserState, WebSession
from longops.domain.waiting import WaitContext
from longops.store.migrate import MigrationState
from longops.telemetry.prometheus import FleetSnapshot

Companies = Collection[str] | None
"""A company filter: the companies a read may return rows of; None means every company."""


DEFAULT_POOL_SIZE = 8
DEFAULT_LOCK_TIMEOUT = 5.0
DEFAULT_STATEMENT_TIMEOUT = 30.0
DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT = 60.0
DEFAULT_MAINTENANCE_TIMEOUT = 600.0
DEFAULT_BUSY_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """How a store uses its database connections. Times in seconds; 0 turns a timeout off.

    PostgreSQL sets ``lock_timeout``, ``statement_timeout`` and
    ``idle_in_transaction_session_timeout`` on every connection longops opens (the pool,
    the ``LISTEN`` connections); work that is long by nature (migrations, pruning, a
    streamed bulk enqueue) runs under ``maintenance_timeout`` as its statement timeout.
    SQLite waits at most ``busy_timeout`` for its write lock. A wait cut short by a
    timeout raises :class:`~longops.domain.errors.DatabaseBusy`.

    Example::

        store = open_store("postgresql://root@127.0.0.1/longops", pool_size=4, lock_timeout=2)
    """

    pool_size: int = DEFAULT_POOL_SIZE
    """PostgreSQL: most pooled connections (``LONGOPS_POOL_SIZE``)."""
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    """PostgreSQL: longest wait for a lock another session holds (``LONGOPS_LOCK_TIMEOUT``)."""
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT
    """PostgreSQL: longest run of one statement (``LONGOPS_STATEMENT_TIMEOUT``)."""
    idle_in_transaction_timeout: float = DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT
    """PostgreSQL: a session idle inside an open transaction this long is ended by the
    server (``LONGOPS_IDLE_IN_TRANSACTION_TIMEOUT``)."""
    maintenance_timeout: float = DEFAULT_MAINTENANCE_TIMEOUT
    """PostgreSQL: the statement timeout of migrations, pruning and streamed bulk enqueues
    (``LONGOPS_MAINTENANCE_TIMEOUT``)."""
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    """SQLite: longest wait for the write lock (``LONGOPS_BUSY_TIMEOUT``)."""

    def __post_init__(self) -> None:
        from longops.domain.errors import ValidationError

        if not 1 <= self.pool_size <= 1000:
            raise ValidationError("pool_size", "must be between 1 and 1000", self.pool_size)
        for name in (
            "lock_timeout",
            "statement_timeout",
            "idle_in_transaction_timeout",
            "maintenance_timeout",
            "busy_timeout",
        ):
            value = getattr(self, name)
            if not 0 <= value <= 86_400:
                raise ValidationError(name, "must be between 0 and 86400 seconds", value)


STORE_OPTION_NAMES = frozenset(StoreOptions.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class ClaimParams:
    """Claim up to ``limit`` ready operations of ``queues`` for ``session_id`` at ``now``."""

    session_id: uuid.UUID
    queues: tuple[str, ...]
    limit: int
    now: datetime
    clock: Clock | None = None
    """When given, the claim reads the time as late as it can (on SQLite, under the write
    lock). The attempt's recorded start is corrected to when its code began when the run
    ends (``RunResult.started_at``)."""
    companies: tuple[str, ...] | None = None
    """Claim only these companies' operations (None: every active company)."""
    tasks: tuple[str, ...] | None = None
    """Claim only operations of these tasks, the ones the worker can run (None: any)."""
    finished: tuple[RunResult, ...] = ()
    """Results to write first, in the claim's own transaction (as :meth:`Store.finish_runs`
    would, each under its lease): one commit for a worker's finished runs and its next
    claim. Whether each applied is :attr:`Claimed.finished`."""

    def at(self) -> datetime:
        return self.clock.now() if self.clock is not None else self.now


class Claimed(list["ClaimedRun"]):
    """What :meth:`Store.claim` returns: the runs claimed, in order, and for each result
    of ``ClaimParams.finished`` whether it applied (False: fenced, as ``finish_runs``)."""

    finished: list[bool]
    contended: bool
    """Rows the claim chose were taken by a concurrent claim first (PostgreSQL): more work
    may be ready than it got, so the caller should claim again rather than wait."""

    def __init__(
        self,
        runs: Iterable[ClaimedRun] = (),
        finished: Sequence[bool] = (),
        *,
        contended: bool = False,
    ) -> None:
        super().__init__(runs)
        self.finished = list(finished)
        self.contended = contended


@dataclass(frozen=True, slots=True)
class ClaimedRun:
    """An operation just claimed, with the run number of its new attempt row."""

    operation: Operation
    run_no: int

    @property
    def lease_token(self) -> uuid.UUID:
        token = self.operation.lease_token
        assert token is not None  # a claimed row always carries one (CHECK constraint)
        return token


@dataclass(frozen=True, slots=True)
class RunResult:
    """How one run ended and where its operation goes next; applied only under its lease."""

    operation_id: uuid.UUID
    lease_token: uuid.UUID
    run_no: int
    at: datetime
    outcome: Outcome
    status: Status
    status_reason: str | None = None
    earliest_start_at: datetime | None = None
    attempt_count: int | None = None
    error_message: str | None = None
    traceback: str | None = None
    result_json: str | None = None
    started_at: datetime | None = None
    """When task code began (None when it never ran, e.g. rescued or handed back): the
    attempt's start becomes this, so an attempt's interval is the time its code ran."""
    progress_json: str | None = None
    """The run's last progress reading (the flush "at the end"); None keeps the last one
    flushed."""
    stop_mode: StopMode | None = None
    cancel_mode: CancelMode | None = None
    clear_checkpoint: bool = False
    """A run that finished its work leaves no checkpoint for the next one."""
    peak_rss: int | None = None
    """Peak resident memory of the attempt's child process, in bytes (process isolation)."""


@dataclass(frozen=True, slots=True)
class ProgressUpdate:
    """A progress reading to write for a running operation, fenced by its lease."""

    operation_id: uuid.UUID
    lease_token: uuid.UUID
    at: datetime
    progress_json: str
    moved: bool
    """Whether the work moved since the last reading (completed, total, step or message
    changed): it resets the stall clock and ends a stall."""


@dataclass(frozen=True, slots=True)
class CancelSignal:
    """A pending request to stop a running operation, as a worker learns of it."""

    operation_id: uuid.UUID
    force: bool = False
    reason: str | None = None
    requested_by: str | None = None


OperationQuery = OperationFilter
"""The store reads operations by the domain's filter (``domain.filters``), as core has
narrowed it to the actor's companies."""


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


class CancelListener(Protocol):
    """Cancel requests pushed as they are made (PostgreSQL NOTIFY)."""

    def wait(self, timeout: float) -> list[uuid.UUID]:
        """Block up to ``timeout`` seconds; the operations asked to stop meanwhile."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PersonalData:
    """Every row that names a user: what ``longops users export`` prints."""

    user: User | None
    tokens: list[ApiToken]
    operations: list[Operation]
    attempts: list[Attempt]
    audit: list[AuditEntry]
    events: list[OperationEvent] = field(default_factory=list)
    """Timeline entries that name the user (who asked to cancel, who acted)."""
    notifications: list[Notification] = field(default_factory=list)
    """The user's inbox, in every company."""


class Wakeups(Protocol):
    """Tells a dispatcher that work may be ready: NOTIFY on PostgreSQL, a poll on SQLite."""

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True when woken early."""
        ...

    def interrupt(self) -> None:
        """End the current (or the next) :meth:`wait` at once; callable from any thread
        (a drain uses it so that an idle dispatcher does not sleep out its poll)."""
        ...

    def close(self) -> None: ...


class Store(Protocol):
    """Everything longops keeps, behind named operations."""

    dialect: str
    url: str

    def close(self) -> None: ...

    # schema ---------------------------------------------------------------------------
    def migrate(self) -> list[str]: ...
    def migration_status(self) -> list[MigrationState]: ...
    def migration_sql(self) -> str: ...
    def schema_is_current(self) -> bool: ...

    def scope(self, companies: Companies) -> AbstractContextManager[None]:
        """Within the block, row-level security (PostgreSQL, when on) shows only these
        companies' rows to this thread's transactions. None means every company."""
        ...

    # companies, categories, queues ----------------------------------------------------
    def get_company(self, name: str) -> Company | None: ...
    def list_companies(self, companies: Companies = None) -> list[Company]: ...
    def upsert_company(self, company: Company, *, audit: AuditEntry | None = None) -> Company: ...
    def get_operation_by_entry_no(
        self, entry_no: int, company: str | None = None, *, companies: Companies = None
    ) -> Operation | None: ...
    def upsert_category(
        self, category: Category, *, audit: AuditEntry | None = None
    ) -> Category: ...
    def get_category(self, company: str, code: str) -> Category | None: ...
    def list_categories(self, company: str) -> list[Category]: ...
    def set_queue_paused(
        self, name: str, paused: bool, at: datetime, *, audit: AuditEntry | None = None
    ) -> None: ...
    def paused_queues(self) -> frozenset[str]: ...

    # operations -----------------------------------------------------------------------
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
        self, operation_id: uuid.UUID, company: str | None, *, audit: AuditEntry | None = None
    ) -> bool: ...
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

    def wait_context(self, now: datetime) -> WaitContext: ...
    def recent_durations(self, task: str, limit: int = 20) -> list[float]: ...

    # running --------------------------------------------------------------------------
    # maintenance mode (store/maintenance.py)
    def maintenance_mode(self) -> MaintenanceMode: ...
    def start_maintenance(
        self,
        reason: str | None,
        drain_timeout: timedelta,
        at: datetime,
        *,
        audit: AuditEntry | None = None,
    ) -> MaintenanceMode | None: ...
    def stop_maintenance(
        self, at: datetime, *, audit: AuditEntry | None = None
    ) -> MaintenanceMode | None: ...

    def claim(self, params: ClaimParams) -> Claimed: ...
    def finish_runs(self, results: Sequence[RunResult]) -> list[bool]: ...
    def next_due_at(
        self, queues: Sequence[str], companies: Sequence[str] | None = None
    ) -> datetime | None: ...
    def cancel_requested(self, operation_ids: Sequence[uuid.UUID]) -> list[CancelSignal]: ...
    def cancel_listener(self) -> CancelListener | None:
        """Pushed cancel requests, or None where the worker must poll (SQLite)."""
        ...

    def wakeups(self) -> Wakeups: ...
    def flush_progress(self, updates: Sequence[ProgressUpdate]) -> list[bool]: ...
    def save_checkpoint(
        self,
        operation_id: uuid.UUID,
        lease_token: uuid.UUID,
        at: datetime,
        state_json: str,
        progress_json: str | None = None,
        *,
        moved: bool = False,
    ) -> bool: ...
    def mark_cancel_overdue(
        self, operation_id: uuid.UUID, lease_token: uuid.UUID, at: datetime, data: dict[str, Any]
    ) -> bool: ...
    def record_run_event(
        self,
        operation_id: uuid.UUID,
        lease_token: uuid.UUID,
        at: datetime,
        type: EventType,
        data: dict[str, Any],
    ) -> bool: ...

    # sessions -------------------------------------------------------------------------
    def register_session(self, session: Session) -> None: ...
    def heartbeat(self, session_id: uuid.UUID, at: datetime) -> SessionState | None: ...
    def end_session(
        self,
        session_id: uuid.UUID,
        state: SessionState,
        at: datetime,
        event: SessionEventType,
        comment: str | None = None,
    ) -> None: ...
    def record_session_event(
        self, session_id: uuid.UUID, event: SessionEventType, at: datetime, comment: str | None
    ) -> None: ...
    def request_drain(
        self, session_id: uuid.UUID, at: datetime, comment: str, *, audit: AuditEntry | None = None
    ) -> Session | None:
        """Ask a live session to drain (it sees it at its next heartbeat); None if it is
        not active."""
        ...

    def list_sessions(self, *, active_only: bool = False) -> list[Session]: ...
    def fleet_metrics(self, now: datetime) -> FleetSnapshot:
        """The fleet's figures for ``/metrics``, in one statement."""
        ...

    def list_session_events(self, session_id: uuid.UUID | None = None) -> list[SessionEvent]: ...

    # apps (issue 15: the schema guard, the app registry, uninstall and export) --------
    def set_session_tasks(self, session_id: uuid.UUID, tasks: Sequence[str]) -> None: ...
    def applied_migrations(self) -> dict[int, tuple[str, frozenset[str]]]: ...
    def record_apps(self, apps: Sequence[AppInfo], at: datetime) -> None: ...
    def list_apps(self) -> list[AppRecord]: ...
    def mark_app_uninstalled(
        self,
        name: str,
        at: datetime | None,
        purge_at: datetime | None,
        *,
        audit: AuditEntry | None = None,
    ) -> None: ...
    def mark_app_exported(self, name: str, at: datetime) -> None: ...
    def app_exported_at(self, name: str) -> datetime | None: ...
    def operations_of_tasks(
        self, tasks: Sequence[str], companies: Sequence[str] | None, *, after_entry: int = 0
    ) -> list[Operation]: ...
    def delete_unused_categories(self, company: str, codes: Sequence[str]) -> list[str]: ...
    def fail_unserved(self, now: datetime) -> list[uuid.UUID]: ...
    def purge_uninstalled(self, now: datetime) -> int: ...

    # services -------------------------------------------------------------------------
    def mark_lost_sessions(self, now: datetime, timeout: timedelta) -> list[uuid.UUID]: ...
    def orphaned_runs(self, limit: int = 1000) -> list[ClaimedRun]: ...
    def session_runs(self, session_id: uuid.UUID) -> list[ClaimedRun]:
        """The operations the database says ``session_id`` runs (``in_process`` under it),
        in entry order: a worker hands back those it does not know of."""
        ...

    def expire_operations(self, now: datetime) -> list[uuid.UUID]: ...
    def flag_stalled(self, now: datetime) -> list[uuid.UUID]: ...
    def prune(self, older_than: datetime) -> int: ...
    def try_lead(self, name: str, session_id: uuid.UUID, now: datetime, ttl: timedelta) -> bool: ...
    def resign(self, name: str, session_id: uuid.UUID) -> None: ...
    def ready_recurring(self, now: datetime, limit: int) -> list[Operation]: ...
    def move_start(
        self, operation_id: uuid.UUID, expected_start: datetime, new_start: datetime, at: datetime
    ) -> bool: ...

    # users, permission sets, tokens, audit ------------------------------------------------
    def insert_user(
        self, user: User, password_hash: str | None, *, audit: AuditEntry | None = None
    ) -> bool:
        """Create a user with its grants; False (and nothing written) when the name is taken."""
        ...

    def get_user(self, name: str) -> User | None: ...
    def list_users(self) -> list[User]: ...
    def get_password_hash(self, name: str) -> str | None: ...
    def set_password_hash(self, name: str, password_hash: str, at: datetime) -> bool: ...
    def set_user_state(
        self, name: str, state: UserState, at: datetime, *, audit: AuditEntry | None = None
    ) -> bool: ...
    def set_user_super(
        self, name: str, is_super: bool, at: datetime, *, audit: AuditEntry | None = None
    ) -> bool: ...
    def delete_user(self, name: str, *, audit: AuditEntry | None = None) -> bool: ...
    def grant(
        self,
        name: str,
        company: str,
        permission_set: PermissionSet,
        at: datetime,
        *,
        audit: AuditEntry | None = None,
    ) -> bool:
        """Add a membership; False when the user already holds it."""
        ...

    def revoke(
        self,
        name: str,
        company: str,
        permission_set: PermissionSet,
        *,
        audit: AuditEntry | None = None,
    ) -> bool: ...
    def active_users(self, names: Collection[str]) -> set[str]:
        """Those of ``names`` that are users in the active state."""
        ...

    def insert_token(
        self, token: ApiToken, token_hash: str, *, audit: AuditEntry | None = None
    ) -> bool:
        """Store a token's hash; False when the user has an unrevoked token of that name."""
        ...

    def get_token(self, token_id: uuid.UUID) -> tuple[ApiToken, str, UserState] | None:
        """A token, its stored hash and its user's state."""
        ...

    def token_user(self, token_id: uuid.UUID) -> tuple[ApiToken, str, User] | None:
        """A token, its stored hash and its user with the user's grants, in one read (what
        every API request needs first); None when either is missing."""
        ...

    def web_session_user(self, session_id: uuid.UUID) -> tuple[WebSession, str, User] | None:
        """A session of the pages, its stored secret hash and its user, in one read."""
        ...

    def touch_token(self, token_id: uuid.UUID, at: datetime, not_since: datetime) -> None:
        """Set last_used_at, unless it was already set after ``not_since`` (a cheap no-op)."""
        ...

    def list_tokens(self, user: str) -> list[ApiToken]: ...
    def revoke_token(
        self, token_id: uuid.UUID, at: datetime, *, audit: AuditEntry | None = None
    ) -> bool: ...
    def insert_web_session(
        self, session: WebSession, secret_hash: str, *, audit: AuditEntry | None = None
    ) -> None:
        """Store a new sign-in of the pages (the secret only as its hash)."""
        ...

    def get_web_session(self, session_id: uuid.UUID) -> tuple[WebSession, str, UserState] | None:
        """A session, its stored secret hash and its user's state."""
        ...

    def touch_web_session(self, session_id: uuid.UUID, at: datetime, not_since: datetime) -> None:
        """Set last_seen_at, unless it was already set after ``not_since`` (a cheap no-op)."""
        ...

    def list_web_sessions(self, user: str) -> list[WebSession]:
        """The user's sessions, newest first (ended ones too, until pruned)."""
        ...

    def revoke_web_sessions(
        self,
        user: str,
        at: datetime,
        session_id: uuid.UUID | None = None,
        *,
        audit: AuditEntry | None = None,
    ) -> int:
        """End one live session of ``user`` (``session_id``) or all of them; how many ended."""
        ...

    def record_audit(self, entry: AuditEntry) -> None: ...
    def list_audit(
        self,
        companies: Companies,
        *,
        include_global: bool,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditEntry]:
        """Newest first. Rows of companies outside ``companies`` are never returned; rows
        of no company (global actions) only with ``include_global``."""
        ...

    def personal_data(self, name: str) -> PersonalData: ...
    def forget_user(self, name: str, pseudonym: str, *, audit: AuditEntry | None = None) -> int:
        """Replace ``name`` by ``pseudonym`` in operations, attempts, notifications and the
        audit log and delete the user (memberships and tokens go with it); returns the rows
        changed."""
        ...

    # the pages ------------------------------------------------------------------------------
    def count_capped(self, queries: Sequence[OperationQuery], cap: int) -> list[int]:
        """How many operations each query's filter matches (its limit and paging ignored),
        counted no further than ``cap``; one read for all of them."""
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
        self, company: str, since: datetime, hours: int
    ) -> list[tuple[int, int, int]]:
        """(hour index after ``since``, runs that succeeded, runs that failed) for the hours
        that had any; index 0 is ``[since, since + 1 h)``."""
        ...

    def category_activity(self, company: str, cap: int) -> list[CategoryActivity]: ...
    def list_company_attempts(self, query: AttemptQuery) -> list[LogEntry]:
        """Log entries newest first, each with its operation's description."""
        ...

    def delete_attempts(
        self, company: str, ended_before: datetime, *, audit: AuditEntry | None = None
    ) -> int: ...
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

    def list_notifications(
        self,
        company: str,
        user: str,
        *,
        unread_only: bool = False,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[Notification]:
        """A user's inbox in a company, newest first."""
        ...

    def count_unread_notifications(self, company: str, user: str) -> int: ...
    def mark_notifications_read(
        self, company: str, user: str, ids: Sequence[int] | None, at: datetime
    ) -> int:
        """Mark the user's unread notifications (those of ``ids``; None: all) read."""
        ...

    def notifications_since(self, after_id: int, limit: int = 1000) -> list[Notification]:
        """Every notification after ``after_id``, in id order (the pages' toasts)."""
        ...

    def last_notification_id(self) -> int: ...

    # notifications: rules, notified admins, channels, the outbox and its deliveries
    def upsert_notify_rule(
        self, rule: NotifyRule, *, audit: AuditEntry | None = None
    ) -> NotifyRule: ...
    def delete_notify_rule(
        self, company: str, name: str, *, audit: AuditEntry | None = None
    ) -> bool: ...
    def list_notify_rules(self, company: str) -> list[NotifyRule]: ...
    def set_notify_mute(
        self,
        company: str,
        user: str,
        rule: str,
        muted: bool,
        *,
        audit: AuditEntry | None = None,
    ) -> None: ...
    def set_user_contact(
        self,
        name: str,
        email: str | None,
        notify_by_email: bool,
        at: datetime,
        *,
        audit: AuditEntry | None = None,
    ) -> bool:
        """A user's email address and choice (in-app only, or also email); False: no user."""
        ...

    def get_user_contact(self, name: str) -> tuple[str | None, bool] | None:
        """(email, notify_by_email) of a user, None when there is no such user."""
        ...

    def email_recipients(self) -> dict[str, str]:
        """Active users who chose "also email" and have an address: name -> address."""
        ...

    def set_personal_email_channel(
        self, company: str, name: str | None, *, audit: AuditEntry | None = None
    ) -> bool:
        """Make ``name`` the company's channel for people's own email (None: no channel);
        False when there is no such channel."""
        ...

    def personal_email_channel(self, company: str) -> str | None: ...
    def list_notify_mutes(self, company: str) -> set[tuple[str, str]]:
        """(user, rule) pairs: who muted which rule in ``company``."""
        ...

    def list_watch_rules(self) -> list[NotifyRule]:
        """Every company's enabled rules that watch a condition (running long...)."""
        ...

    def insert_watched(self, found: Sequence[Watched], at: datetime) -> int: ...
    def add_notified_admin(
        self, company: str, user: str, *, audit: AuditEntry | None = None
    ) -> bool: ...
    def remove_notified_admin(
        self, company: str, user: str, *, audit: AuditEntry | None = None
    ) -> bool: ...
    def list_notified_admins(self, company: str) -> list[str]: ...
    def upsert_notify_channel(
        self, channel: NotifyChannel, url_secret: str, *, audit: AuditEntry | None = None
    ) -> NotifyChannel: ...
    def delete_notify_channel(
        self, company: str, name: str, *, audit: AuditEntry | None = None
    ) -> bool: ...
    def list_notify_channels(self, company: str) -> list[NotifyChannel]: ...
    def get_notify_channel_secret(
        self, company: str, name: str
    ) -> tuple[str, int | None, int] | None:
        """The encrypted URL, rate limit and window of a channel (None: no such channel)."""
        ...

    def pending_outbox(self, limit: int = 100) -> list[OutboxEntry]: ...
    def expand_outbox(
        self, entry: OutboxEntry, planned: Sequence[PlannedDelivery], at: datetime
    ) -> int: ...
    def claim_deliveries(self, now: datetime, lease: timedelta, limit: int) -> list[Delivery]: ...
    def finish_delivery(
        self,
        delivery: Delivery,
        status: DeliveryStatus,
        at: datetime,
        *,
        next_at: datetime | None = None,
        error: str | None = None,
        inbox_title: str | None = None,
        uncharge: bool = False,
    ) -> bool: ...
    def list_deliveries(
        self, company: str, *, status: DeliveryStatus | None = None, limit: int = 100
    ) -> list[Delivery]: ...
    def count_recent_sends(self, company: str, recipient: str, since: datetime) -> int: ...
    def retry_delivery(
        self, company: str, delivery_id: int, at: datetime, *, audit: AuditEntry | None = None
    ) -> bool: ...


def open_store(url: str, **options: Any) -> Store:
    """Open the store a database URL names.

    ``sqlite:///path.db`` (or ``sqlite:///:memory:``) and ``postgresql://...`` are accepted.
    The fields of :class:`StoreOptions` may be given as keywords (``pool_size=4``), or all
    at once as ``options=StoreOptions(...)``; a dialect ignores those it has no use for.

    Example::

        store = open_store("postgresql://root@127.0.0.1/longops", lock_timeout=2.0)
    """
    from longops.domain.errors import ValidationError

    connection = options.pop("options", None) or StoreOptions()
    chosen = {k: options.pop(k) for k in list(options) if k in STORE_OPTION_NAMES}
    if chosen:
        connection = replace(connection, **chosen)
    if url.startswith("sqlite:"):
        from longops.store.sqlite import SqliteStore

        return SqliteStore(url, options=connection, **options)
    if url.startswith(("postgresql:", "postgres:")):
        from longops.store.postgres import PostgresStore

        return PostgresStore(url, options=connection, **options)
    raise ValidationError(
        "database_url", "must start with sqlite:/// or postgresql://", url.split(":")[0]
    )
