"""The library front: ``Longops`` ties a database, a task registry and a clock together.

Example::

    from longops import Longops, RunContext

    app = Longops("sqlite:///longops.db")

    @app.task(category="POSTING", max_attempts=3)
    def post_invoices(ctx: RunContext, month: str) -> int:
        ...

    handle = app.enqueue(post_invoices, "2026-01")
    handle.wait(timeout=60)
    print(handle.status)

    alice = app.as_user("alice")              # acts under alice's permission sets
    alice.enqueue(post_invoices, "2026-02", company="CRONUS")
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from types import EllipsisType
from typing import Any

from longops import telemetry
from longops.core.notify import NotificationSetupService
from longops.core.security import SecurityService
from longops.core.service import EnqueueRequest, OperationService
from longops.domain.clock import Clock, SystemClock
from longops.domain.errors import ConfigurationError, LongopsError
from longops.domain.limits import PayloadLimits
from longops.domain.operation import (
    DEFAULT_COMPANY,
    Category,
    Company,
    Operation,
    OperationEvent,
    Priority,
)
from longops.domain.pages import LogEntry, Notification, Overview
from longops.domain.progress import Progress
from longops.domain.recurrence import Recurrence
from longops.domain.retry import RetryPolicy
from longops.domain.security import Actor, FrontEnd
from longops.domain.status import Status
from longops.domain.waiting import WaitReason
from longops.notify.secrets import SecretBox
from longops.services.delivery import DeliveryService
from longops.services.leader import maintenance_for
from longops.services.watch import NotificationWatch
from longops.settings import Settings
from longops.store.base import OperationQuery, Store, StoreOptions, open_store
from longops.worker.registry import TaskDef, TaskRegistry
from longops.worker.session import Worker, WorkerOptions


class OperationHandle:
    """A reference to one operation: its id, ways to follow it and act on it.

    ``status`` and ``progress`` read the operation anew on each access (a polling loop sees
    it move); ``operation`` is the last read, which ``refresh()`` renews. It reads through
    the front that made it, so as the same actor.
    """

    def __init__(self, app: Front, operation: Operation, *, duplicate: bool = False) -> None:
        self._app = app
        self.operation = operation
        self.duplicate = duplicate
        """True when a dedup key matched an operation that already existed."""

    @property
    def id(self) -> uuid.UUID:
        return self.operation.id

    @property
    def status(self) -> Status:
        """The status now: each read asks the database (``operation`` keeps the last read)."""
        return self.refresh().status

    def refresh(self) -> Operation:
        """Re-read the operation."""
        self.operation = self._app.service.get(self.operation.id)
        return self.operation

    @property
    def progress(self) -> Progress | None:
        """The last reading now (re-read like ``status``), with an ETA from history if
        needed."""
        return self._app.service.estimated([self.refresh()]).get(self.id)

    def wait_reason(self) -> WaitReason | None:
        """Why it waits, if it is ready (derived now)."""
        return self._app.service.wait_reasons([self.refresh()]).get(self.id)

    def events(self, *, after_id: int | None = None) -> list[OperationEvent]:
        """Its timeline, oldest first."""
        return self._app.service.events(self.id, after_id=after_id)

    def cancel(
        self, *, reason: str | None = None, by: str | None = None, force: bool = False
    ) -> Operation:
        """Cancel it: at once if it is not running; a running one is asked to stop and,
        after its task's ``cancel_grace`` (at once with ``force``), stopped by force.

        Example::

            handle.cancel(reason="wrong month", by="alice")
            handle.wait(timeout=60).cancel_mode      # CancelMode.COOPERATIVE
        """
        self.operation = self._app.service.cancel(self.id, reason=reason, by=by, force=force)
        return self.operation

    def hold(self) -> Operation:
        """Set On Hold (not while it runs)."""
        self.operation = self._app.service.hold(self.id)
        return self.operation

    def set_ready(self, *, user: str | None = None) -> Operation:
        """Set Status to Ready (attempts reset; a checkpoint is kept)."""
        self.operation = self._app.service.set_ready(self.id, user=user)
        return self.operation

    def restart(self, *, user: str | None = None) -> Operation:
        """Restart from scratch (a checkpoint is cleared)."""
        self.operation = self._app.service.restart(self.id, user=user)
        return self.operation

    def run_now(self, *, user: str | None = None) -> Operation:
        """Make it due now, ignoring its schedule."""
        self.operation = self._app.service.run_now(self.id, user=user)
        return self.operation

    def wait(self, timeout: float | None = None, *, poll: float = 0.05) -> Operation:
        """Block until the operation is done (finished, error, cancelled).

        A recurring operation is never done while its schedule runs: give a ``timeout``.

        Raises :class:`TimeoutError` when ``timeout`` seconds pass first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            op = self.refresh()
            if op.done:
                return op
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"operation {op.id} still {op.status.value} after {timeout} s")
            time.sleep(poll)
            poll = min(poll * 1.5, 1.0)

    async def wait_async(self, timeout: float | None = None) -> Operation:
        return await asyncio.to_thread(self.wait, timeout)

    def __repr__(self) -> str:
        return f"<OperationHandle {self.id} {self.operation.status.value}>"


class Front:
    """What the library offers for one actor: enqueue, read, set up. ``Longops`` is the
    front of the local super actor; ``app.as_user(name)`` gives a user's."""

    @property
    def service(self) -> OperationService:
        raise NotImplementedError

    @property
    def security(self) -> SecurityService:
        raise NotImplementedError

    @property
    def notification_setup(self) -> NotificationSetupService:
        """Notification rules, notified admins, channels and the delivery log."""
        raise NotImplementedError

    # -- enqueue -------------------------------------------------------------------------------
    def enqueue(
        self,
        task: str | Callable[..., Any] | TaskDef,
        *args: Any,
        company: str = DEFAULT_COMPANY,
        description: str | None = None,
        queue: str | None = None,
        category: str | None = None,
        priority: Priority | str | None = None,
        earliest_start_at: datetime | None = None,
        delay: timedelta | float | None = None,
        expires_at: datetime | None = None,
        max_attempts: int | None = None,
        rerun_delay: int | None = None,
        retry_policy: RetryPolicy | Mapping[str, Any] | None = None,
        timeout: timedelta | float | None = None,
        recurrence: Recurrence | str | Mapping[str, Any] | None = None,
        user: str | None = None,
        dedup_key: str | None = None,
        labels: Mapping[str, str] | None = None,
        on_hold: bool = False,
        connection: Any = None,
        **kwargs: Any,
    ) -> OperationHandle:
        """Create an operation that runs ``task(*args, **kwargs)``; durable on return.

        The keyword names above are longops options; every other keyword goes to the task.
        With ``connection`` (a psycopg connection, PostgreSQL only) the operation joins the
        caller's transaction: it exists if and only if the caller commits.

        Raises :class:`ValidationError` naming the offending field; nothing is written then.
        """
        request = EnqueueRequest(
            task=task,
            args=args,
            kwargs=kwargs,
            company=company,
            description=description,
            queue=queue,
            category=category,
            priority=priority,
            earliest_start_at=earliest_start_at,
            delay=delay,
            expires_at=expires_at,
            max_attempts=max_attempts,
            rerun_delay=rerun_delay,
            retry_policy=retry_policy,
            timeout=timeout,
            recurrence=recurrence,
            user=user,
            dedup_key=dedup_key,
            labels=labels,
            on_hold=on_hold,
        )
        op, created = self.service.enqueue_checked(request, connection=connection)
        return OperationHandle(self, op, duplicate=not created)

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[uuid.UUID]:
        """Create many operations in one transaction (COPY on PostgreSQL); returns ids."""
        return self.service.enqueue_many(requests)

    async def enqueue_async(
        self, task: str | Callable[..., Any] | TaskDef, *args: Any, **options: Any
    ) -> OperationHandle:
        """``enqueue`` for async code: runs the blocking write in a thread."""
        return await asyncio.to_thread(lambda: self.enqueue(task, *args, **options))

    def get(self, operation_id: uuid.UUID | str) -> OperationHandle:
        return OperationHandle(self, self.service.get(operation_id))

    async def get_async(self, operation_id: uuid.UUID | str) -> OperationHandle:
        return await asyncio.to_thread(self.get, operation_id)

    # -- set-up -----------------------------------------------------------------------------------
    def set_category(
        self,
        code: str,
        *,
        max_concurrent: int = 1,
        description: str = "",
        paused: bool = False,
        company: str = DEFAULT_COMPANY,
    ) -> Category:
        """Create or update a category: at most ``max_concurrent`` of its operations run at once.

        Example::

            app.set_category("POSTING")               # one at a time, like Business Central
            app.set_category("EXPORTS", max_concurrent=3)
        """
        return self.service.set_category(
            company, code, max_concurrent=max_concurrent, description=description, paused=paused
        )

    def add_company(
        self,
        name: str,
        *,
        display_name: str | None = None,
        time_zone: str | None = None,
        max_in_process: int | EllipsisType | None = ...,
    ) -> Company:
        """Create a company, or change what is given of it (display name, time zone, limit
        of operations in process; None: no limit); a disabled company becomes active again.

        Example::

            app.add_company("CRONUS-UK", time_zone="Europe/London")
        """
        return self.service.add_company(
            name, display_name=display_name, time_zone=time_zone, max_in_process=max_in_process
        )

    # -- the pages' reads and actions (for the front's actor unless ``actor`` names one) -----
    def notifications(
        self,
        company: str,
        *,
        actor: Actor | None = None,
        unread_only: bool = False,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[Notification]:
        """The actor's notifications in ``company``, newest first.

        Example::

            app.as_user("alice").notifications("CRONUS", unread_only=True)
        """
        return self.service.notifications(
            company, unread_only=unread_only, limit=limit, before_id=before_id, actor=actor
        )

    def unread_notifications(self, company: str, *, actor: Actor | None = None) -> int:
        return self.service.unread_notifications(company, actor=actor)

    def mark_notifications_read(
        self, company: str, ids: Sequence[int] | None = None, *, actor: Actor | None = None
    ) -> int:
        """Mark notifications read (``ids``; None: all of the actor's in ``company``)."""
        return self.service.mark_notifications_read(company, ids, actor=actor)

    def update_operation(
        self, operation_id: uuid.UUID | str | int, *, actor: Actor | None = None, **changes: Any
    ) -> Operation:
        """Edit an operation on hold; see :meth:`OperationService.update_operation`.

        Example::

            app.update_operation(op.id, description="January run", priority="high")
        """
        return self.service.update_operation(operation_id, actor=actor, **changes)

    def delete_log_entries(
        self, company: str, *, older_than_days: int, actor: Actor | None = None
    ) -> int:
        return self.service.delete_log_entries(
            company, older_than_days=older_than_days, actor=actor
        )

    def overview(self, company: str, *, actor: Actor | None = None) -> Overview:
        return self.service.overview(company, actor=actor)

    def status_counts(
        self, company: str, *, actor: Actor | None = None, query: OperationQuery | None = None
    ) -> dict[Status, int]:
        return self.service.status_counts(company, query=query, actor=actor)

    def list_attempts(
        self, company: str, *, actor: Actor | None = None, **filters: Any
    ) -> list[LogEntry]:
        """The company's log entries; see :meth:`OperationService.list_attempts`."""
        return self.service.list_attempts(company, actor=actor, **filters)

    def running_for_user(self, company: str, *, actor: Actor | None = None) -> list[Operation]:
        return self.service.running_for_user(company, actor=actor)


class ActorView(Front):
    """The application as one actor sees it: every call is checked against that actor's
    permission sets and reads only that actor's companies.

    Example::

        alice = app.as_user("alice")
        alice.enqueue("post_invoices", "2026-01", company="CRONUS")
        alice.service.list_operations(OperationQuery())   # CRONUS only
    """

    def __init__(self, app: Longops, actor: Actor) -> None:
        self.app = app
        self.actor = actor

    @property
    def service(self) -> OperationService:
        return self.app._operations().as_actor(self.actor)

    @property
    def security(self) -> SecurityService:
        return self.app._security().as_actor(self.actor)

    @property
    def notification_setup(self) -> NotificationSetupService:
        return self.app._notify_setup().as_actor(self.actor)


class Longops(Front):
    """A longops application. The database is opened on first use.

    The library acts as the local super actor (it holds the database URL, so it could do
    anything anyway); :meth:`as_user` acts under a user's permission sets instead.

    Args:
        database_url: ``sqlite:///path.db`` or ``postgresql://...``; defaults to
            ``LONGOPS_DATABASE_URL`` or ``sqlite:///longops.db``.
        clock: where the current time comes from (tests pass a controllable clock).
        row_level_security: on PostgreSQL, scope every transaction to its actor's companies
            and let the database's policies refuse other companies' rows; defaults to
            ``LONGOPS_ROW_LEVEL_SECURITY``.
        pool_size, lock_timeout, statement_timeout, idle_in_transaction_timeout,
        maintenance_timeout, busy_timeout: how the database's connections are used (see
            :class:`~longops.store.base.StoreOptions`); each defaults to its
            ``LONGOPS_*`` setting (``LONGOPS_POOL_SIZE``, ``LONGOPS_LOCK_TIMEOUT``, ...).
        limits: size limits of arguments, results and checkpoints; defaults to the
            ``LONGOPS_MAX_*_BYTES`` settings (1 MiB each).

    Example::

        app = Longops("postgresql://root@127.0.0.1/longops", pool_size=16, lock_timeout=2.0)
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        clock: Clock | None = None,
        row_level_security: bool | None = None,
        pool_size: int | None = None,
        lock_timeout: float | None = None,
        statement_timeout: float | None = None,
        idle_in_transaction_timeout: float | None = None,
        maintenance_timeout: float | None = None,
        busy_timeout: float | None = None,
        limits: PayloadLimits | None = None,
        secret_key: str | None = None,
        base_url: str | None = None,
        notify_customer_content: bool | None = None,
    ) -> None:
        settings = Settings()
        self.secret_key = secret_key or settings.secret_key
        """Encrypts notification channels' URLs (``LONGOPS_SECRET_KEY``)."""
        self.previous_secret_keys = tuple(
            k.strip() for k in settings.previous_secret_keys.split(",") if k.strip()
        )
        """Earlier secrets that still decrypt channels (``LONGOPS_PREVIOUS_SECRET_KEYS``)."""
        self.base_url = base_url or settings.base_url
        """Where notifications link to (``LONGOPS_BASE_URL``)."""
        self.notify_customer_content = (
            notify_customer_content
            if notify_customer_content is not None
            else settings.notify_customer_content
        )
        """Messages carry an error's text, not only its type (customer content)."""
        self.database_url = database_url or settings.database_url
        self.row_level_security = (
            row_level_security if row_level_security is not None else settings.row_level_security
        )
        given: dict[str, Any] = {
            "pool_size": pool_size,
            "lock_timeout": lock_timeout,
            "statement_timeout": statement_timeout,
            "idle_in_transaction_timeout": idle_in_transaction_timeout,
            "maintenance_timeout": maintenance_timeout,
            "busy_timeout": busy_timeout,
        }
        self.store_options: StoreOptions = replace(
            settings.store_options(), **{k: v for k, v in given.items() if v is not None}
        )
        """How the database's connections are used; change it with :meth:`configure_store`."""
        self.limits: PayloadLimits = limits or settings.payload_limits()
        """Size limits of arguments (checked at enqueue), results and checkpoints (checked
        by this app's workers)."""
        telemetry.configure()  # exporters from the environment (OTEL_*, Application Insights)
        self.actor = Actor.local(FrontEnd.LIBRARY)
        self.clock: Clock = clock or SystemClock()
        self.registry = TaskRegistry(limits=self.limits)
        self.task = self.registry.task
        """Register a task (a decorator): ``@app.task`` or ``@app.task(name=..., ...)``;
        its options become defaults of the task's operations. See :meth:`TaskRegistry.task`."""
        self._store: Store | None = None
        self._service: OperationService | None = None
        self._security_service: SecurityService | None = None
        self._notify_setup_service: NotificationSetupService | None = None
        self._lock = threading.Lock()

    # -- wiring -------------------------------------------------------------------------------
    @property
    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                options = {"row_level_security": True} if self.row_level_security else {}
                self._store = open_store(self.database_url, options=self.store_options, **options)
            return self._store

    def configure_store(self, **changes: Any) -> None:
        """Change how the database will be used (fields of
        :class:`~longops.store.base.StoreOptions`) before it is first opened.

        Example::

            app.configure_store(pool_size=16)   # what `longops worker --pool-size 16` does
        """
        with self._lock:
            if self._store is not None:
                raise ConfigurationError(
                    "the database is already open: configure the store before its first use"
                )
            self.store_options = replace(self.store_options, **changes)

    def _operations(self) -> OperationService:
        store = self.store
        with self._lock:
            if self._service is None:
                self._service = OperationService(
                    store, self.registry, self.clock, limits=self.limits
                )
            return self._service

    def _security(self) -> SecurityService:
        store = self.store
        with self._lock:
            if self._security_service is None:
                self._security_service = SecurityService(store, self.clock)
            return self._security_service

    def _notify_setup(self) -> NotificationSetupService:
        store = self.store
        with self._lock:
            if self._notify_setup_service is None:
                self._notify_setup_service = NotificationSetupService(
                    store,
                    self.clock,
                    secret_key=self.secret_key,
                    previous_keys=self.previous_secret_keys,
                )
            return self._notify_setup_service

    @property
    def notification_setup(self) -> NotificationSetupService:
        """Notification rules, admins, channels and deliveries, as the local super actor."""
        return self._notify_setup().as_actor(self.actor)

    @property
    def service(self) -> OperationService:
        """The operation service, acting as the local super actor."""
        operations = self._operations()
        if operations.actor is None:
            operations.actor = self.actor  # the library's own: bound once, not copied per call
        return operations

    @property
    def security(self) -> SecurityService:
        """Users, tokens, audit, acting as the local super actor."""
        security = self._security()
        if security.actor is None:
            security.actor = self.actor
        return security

    def as_user(self, name: str, front_end: FrontEnd = FrontEnd.LIBRARY) -> ActorView:
        """Act as an existing, active user, under that user's permission sets.

        The user's permission sets are read now; make a new view to see later changes.

        Example::

            bob = app.as_user("bob")
            bob.service.hold(op_id)        # PermissionDenied unless bob may
        """
        return ActorView(self, self._security().actor_for(name, front_end))

    def as_actor(self, actor: Actor) -> ActorView:
        """Act as ``actor`` (the command line passes its own, front end ``cli``).

        Example::

            cli_view = app.as_actor(Actor.local(FrontEnd.CLI))
        """
        return ActorView(self, actor)

    def authenticate(self, token: str, front_end: FrontEnd = FrontEnd.API) -> ActorView:
        """Act as the user an API token belongs to; revoked, expired and disabled users'
        tokens raise PermissionDenied.

        Example::

            view = app.authenticate(request.headers["Authorization"].removeprefix("Bearer "))
            view.service.list_operations(OperationQuery())
        """
        return ActorView(self, self._security().authenticate_token(token, front_end))

    def migrate(self) -> list[str]:
        """Create or upgrade the schema; returns the migrations applied."""
        return self.store.migrate()

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
            self._store = None
            self._service = None
            self._security_service = None

    def __enter__(self) -> Longops:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- workers -------------------------------------------------------------------------------
    def worker(self, *, actor: Actor | None = None, **options: Any) -> Worker:
        """A worker session for this app; ``run()`` it, or ``start()``/``stop()`` it.

        ``companies=[...]`` serves only those companies (default: all). Running a worker
        needs SUPER (``actor``, default the local super actor).
        """
        if "queues" in options:
            options["queues"] = tuple(options["queues"])
        if options.get("companies") is not None:
            options["companies"] = tuple(options["companies"])
        options["companies"] = self.service.check_worker(options.get("companies"), actor=actor)
        opts = WorkerOptions(**options)
        maintenance = maintenance_for(
            self.store,
            self.clock,
            self.registry,
            session_timeout=timedelta(seconds=opts.session_timeout),
            rescuer_interval=timedelta(seconds=opts.rescuer_interval),
            retention=opts.retention,
            notifications=[NotificationWatch(self.store, self.clock), self.delivery_service()],
        )
        return Worker(self.store, self.registry, self.clock, opts, maintenance=maintenance)

    def delivery_service(self, **options: Any) -> DeliveryService:
        """The notification delivery service of this app (workers run it; any number of
        processes may): ``run_once()`` expands the outbox and sends what is due.

        Example::

            app.delivery_service().run_once()
        """
        secrets = SecretBox(self.secret_key, self.previous_secret_keys) if self.secret_key else None
        options.setdefault("customer_content", self.notify_customer_content)
        return DeliveryService(
            self.store, self.clock, secrets=secrets, base_url=self.base_url, **options
        )


__all__ = ["ActorView", "Front", "Longops", "LongopsError", "OperationHandle"]
