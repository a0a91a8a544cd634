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
from typing import TYPE_CHECKING, Any

from longops import telemetry
from longops.core import (
    CompanyService,
    CoreServices,
    EnqueueRequest,
    InboxService,
    MaintenanceService,
    NotificationSetupService,
    OperationService,
    ReadModelService,
    SchemaService,
    SecurityService,
    SessionService,
)
from longops.core.apps import AppService
from longops.core.tasks import TaskCatalog
from longops.domain.apps import AppInfo, AppTask
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
from longops.domain.progress import Progress
from longops.domain.recurrence import Recurrence
from longops.domain.retry import RetryPolicy
from longops.domain.security import Actor, FrontEnd
from longops.domain.status import Status
from longops.domain.waiting import WaitReason
from longops.settings import Settings
from longops.store.base import Store, StoreOptions, open_store
from longops.worker.registry import TaskDef, TaskRegistry

if TYPE_CHECKING:
    from longops.services.delivery import DeliveryService
    from longops.worker.session import Worker


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
    """What the library offers for one actor: enqueue and follow operations here, and every
    other noun through its bound service (``service`` for operations, ``companies``,
    ``sessions``, ``schema``, ``read_models``, ``inbox``, ``notification_setup``,
    ``security``). ``Longops`` is the front of the local super actor; ``app.as_user(name)``
    gives a user's.

    Example::

        alice = app.as_user("alice")
        alice.read_models.overview("CRONUS").failed
        alice.inbox.notifications("CRONUS", unread_only=True)
    """

    @property
    def core(self) -> CoreServices:
        """Every core service, bound to this front's actor."""
        raise NotImplementedError

    @property
    def service(self) -> OperationService:
        """Operations: enqueue, reads and actions."""
        return self.core.operations

    @property
    def companies(self) -> CompanyService:
        """Companies, their categories, and queues."""
        return self.core.companies

    @property
    def sessions(self) -> SessionService:
        """Worker sessions (SUPER)."""
        return self.core.sessions

    @property
    def schema(self) -> SchemaService:
        """Schema migrations (SUPER)."""
        return self.core.schema

    @property
    def read_models(self) -> ReadModelService:
        """What the pages show at a glance: overview, facet counts, log entries."""
        return self.core.read_models

    @property
    def inbox(self) -> InboxService:
        """The actor's own notifications."""
        return self.core.inbox

    @property
    def apps(self) -> AppService:
        """Apps as the database knows them: list, export, uninstall (SUPER only)."""
        ops = self.core.operations
        return AppService(ops.store, ops.clock, actor=ops.actor, operations=ops)

    @property
    def security(self) -> SecurityService:
        """Users, permission sets, tokens, the audit log."""
        return self.core.security

    @property
    def notification_setup(self) -> NotificationSetupService:
        """Notification rules, notified admins, channels and the delivery log."""
        return self.core.notification_setup

    @property
    def maintenance(self) -> MaintenanceService:
        """Maintenance mode: start and stop it (SUPER), see whether it is on."""
        return self.core.maintenance

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
        return self.companies.set_category(
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
        return self.companies.add_company(
            name, display_name=display_name, time_zone=time_zone, max_in_process=max_in_process
        )


class ActorView(Front):
    """The application as one actor sees it: every call is checked against that actor's
    permission sets and reads only that actor's companies.

    Example::

        alice = app.as_user("alice")
        alice.enqueue("post_invoices", "2026-01", company="CRONUS")
        alice.service.list_operations(OperationFilter())   # CRONUS only
    """

    def __init__(self, app: Longops, actor: Actor) -> None:
        self.app = app
        self.actor = actor
        self._core: CoreServices | None = None

    @property
    def core(self) -> CoreServices:
        if self._core is None:
            self._core = self.app._shared_core().as_actor(self.actor)
        return self._core


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
        name: str | None = None,
        version: str | None = None,
    ) -> None:
        settings = Settings()
        self.name = name
        """The app's name (an entry point's name in ``longops.apps``); a worker records
        the apps it serves and their tasks under their names (``longops apps list``)."""
        self.version = version
        """The app's version (its package's, when found by entry point)."""
        self._served: tuple[AppInfo, ...] | None = None
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
        self._core: CoreServices | None = None
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

    def _shared_core(self) -> CoreServices:
        """The core services of this app's store, made once (they share caches), acting
        as the local super actor."""
        store = self.store
        with self._lock:
            if self._core is None:
                self._core = CoreServices.create(
                    store,
                    self.registry,
                    self.clock,
                    self.actor,
                    limits=self.limits,
                    secret_key=self.secret_key,
                    previous_keys=self.previous_secret_keys,
                )
            setup = self._core.notification_setup
            if (setup.secret_key, setup.previous_keys) != (
                self.secret_key,
                self.previous_secret_keys,
            ):
                # The keys are attributes of the app that may be set after first use (as the
                # delivery service reads them when it is made): channels follow them.
                setup.secret_key = self.secret_key
                setup.previous_keys = tuple(self.previous_secret_keys)
            return self._core

    @property
    def core(self) -> CoreServices:
        """Every core service, acting as the local super actor."""
        return self._shared_core()

    @property
    def tasks(self) -> TaskCatalog:
        """The registered tasks as the front ends show them (argument examples, hints)."""
        return TaskCatalog(self.registry)

    def as_user(self, name: str, front_end: FrontEnd = FrontEnd.LIBRARY) -> ActorView:
        """Act as an existing, active user, under that user's permission sets.

        The user's permission sets are read now; make a new view to see later changes.

        Example::

            bob = app.as_user("bob")
            bob.service.hold(op_id)        # PermissionDenied unless bob may
        """
        return ActorView(self, self.security.actor_for(name, front_end))

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
            view.service.list_operations(OperationFilter())
        """
        return ActorView(self, self.security.authenticate_token(token, front_end))

    def migrate(self) -> list[str]:
        """Create or upgrade the schema; returns the migrations applied."""
        return self.store.migrate()

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
            self._store = None
            self._core = None

    def __enter__(self) -> Longops:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- apps --------------------------------------------------------------------------------
    def app_infos(self) -> tuple[AppInfo, ...]:
        """The apps this object serves, with their tasks: itself when it has a ``name``,
        or each app :meth:`combine` joined.

        Example::

            Longops(url, name="billing", version="2.0").app_infos()[0].label  # 'billing 2.0'
        """
        if self._served is not None:
            return self._served
        if self.name is None:
            return ()
        return (_app_info(self.name, self.version, list(self.registry)),)

    @classmethod
    def combine(cls, apps: Sequence[Longops], database_url: str | None = None) -> Longops:
        """One application serving the tasks of several named apps (``longops worker``
        without ``--app`` serves every installed one). The first app's settings are used;
        a task name two apps both register is refused.

        Example::

            both = Longops.combine([billing_app, crm_app])
        """
        if len(apps) == 1 and database_url is None:
            return apps[0]
        first = apps[0] if apps else cls(database_url)
        url = database_url or (first.database_url if apps else None)
        combined = cls(url, clock=first.clock, limits=first.limits)
        infos: list[AppInfo] = []
        for app in apps:
            combined.registry.merge(app.registry)
            infos.extend(app.app_infos())
        combined._served = tuple(infos)
        return combined

    # -- workers -------------------------------------------------------------------------------
    def worker(self, *, actor: Actor | None = None, **options: Any) -> Worker:
        """A worker session for this app; ``run()`` it, or ``start()``/``stop()`` it.

        ``companies=[...]`` serves only those companies (default: all). Running a worker
        needs SUPER (``actor``, default the local super actor).
        """
        # Imported here, not at the top: the worker's room and the services (a tenth of a
        # command line's start-up) are for the processes that run a worker.
        from longops.services.leader import maintenance_for
        from longops.services.watch import NotificationWatch
        from longops.worker.session import Worker, WorkerOptions

        if "queues" in options:
            options["queues"] = tuple(options["queues"])
        if options.get("companies") is not None:
            options["companies"] = tuple(options["companies"])
        sessions = self.sessions if actor is None else self.as_actor(actor).sessions
        options["companies"] = sessions.check_worker(options.get("companies"))
        options.setdefault("apps", self.app_infos())
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
        from longops.notify.secrets import SecretBox
        from longops.services.delivery import DeliveryService

        secrets = SecretBox(self.secret_key, self.previous_secret_keys) if self.secret_key else None
        options.setdefault("customer_content", self.notify_customer_content)
        return DeliveryService(
            self.store, self.clock, secrets=secrets, base_url=self.base_url, **options
        )


def _app_info(name: str, version: str | None, tasks: Sequence[TaskDef]) -> AppInfo:
    return AppInfo(name, version, tuple(AppTask(t.name, t.worker_wait) for t in tasks))


__all__ = ["ActorView", "Front", "Longops", "LongopsError", "OperationHandle"]
