"""The Store protocol: the union of one protocol per noun, the same on every dialect.

The nouns live in ``store/protocols/``: :class:`AdminStore` (schema, companies, categories,
queues), :class:`OperationStore`, :class:`RunStore` (claim, finish, progress),
:class:`SessionStore`, :class:`ServiceStore` (leader, sweeps), :class:`SecurityStore`
(users, tokens, audit), :class:`ReadModelStore` (the pages' reads),
:class:`NotificationStore`, :class:`AppStore` (the app registry, uninstall) and
:class:`MaintenanceStore`. This module unites them as :class:`Store` and keeps every name
callers import from ``longops.store.base``.

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

from dataclasses import dataclass, replace
from typing import Any, Protocol

from longops.store.protocols.admin import AdminStore
from longops.store.protocols.apps import AppStore
from longops.store.protocols.maintenance import MaintenanceStore
from longops.store.protocols.notifications import NotificationStore
from longops.store.protocols.operations import (
    ActionParams,
    Companies,
    DeletedCopy,
    OperationEdit,
    OperationQuery,
    OperationStore,
)
from longops.store.protocols.read_models import AttemptQuery, ReadModelStore
from longops.store.protocols.runs import (
    CancelListener,
    CancelSignal,
    Claimed,
    ClaimedRun,
    ClaimParams,
    ProgressUpdate,
    RunResult,
    RunStore,
    ServiceStore,
    SessionStore,
    Wakeups,
)
from longops.store.protocols.security import PersonalData, SecurityStore

__all__ = [
    "DEFAULT_BUSY_TIMEOUT",
    "DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT",
    "DEFAULT_LOCK_TIMEOUT",
    "DEFAULT_MAINTENANCE_TIMEOUT",
    "DEFAULT_POOL_SIZE",
    "DEFAULT_STATEMENT_TIMEOUT",
    "STORE_OPTION_NAMES",
    "ActionParams",
    "AdminStore",
    "AppStore",
    "AttemptQuery",
    "CancelListener",
    "CancelSignal",
    "ClaimParams",
    "Claimed",
    "ClaimedRun",
    "Companies",
    "DeletedCopy",
    "MaintenanceStore",
    "NotificationStore",
    "OperationEdit",
    "OperationQuery",
    "OperationStore",
    "PersonalData",
    "ProgressUpdate",
    "ReadModelStore",
    "RunResult",
    "RunStore",
    "SecurityStore",
    "ServiceStore",
    "SessionStore",
    "Store",
    "StoreOptions",
    "Wakeups",
    "open_store",
]


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


class Store(
    AdminStore,
    OperationStore,
    RunStore,
    SessionStore,
    ServiceStore,
    SecurityStore,
    ReadModelStore,
    NotificationStore,
    AppStore,
    MaintenanceStore,
    Protocol,
):
    """Everything longops keeps, behind named operations: every noun's protocol at once."""

    dialect: str
    url: str

    def close(self) -> None: ...


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
