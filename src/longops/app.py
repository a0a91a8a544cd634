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
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from longops.core.service import EnqueueRequest, OperationService
from longops.domain.clock import Clock, SystemClock
from longops.domain.errors import LongopsError
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
from longops.domain.status import Status
from longops.domain.waiting import WaitReason
from longops.services.leader import maintenance_for
from longops.settings import Settings
from longops.store.base import Store, open_store
from longops.worker.registry import TaskDef, TaskRegistry
from longops.worker.session import Worker, WorkerOptions


class OperationHandle:
    """A reference to one operation: its id, last-seen state, and ways to follow it."""

    def __init__(self, app: Longops, operation: Operation, *, duplicate: bool = False) -> None:
        self._app = app
        self.operation = operation
        self.duplicate = duplicate
        """True when a dedup key matched an operation that already existed."""

    @property
    def id(self) -> uuid.UUID:
        return self.operation.id

    @property
    def status(self) -> Status:
        return self.operation.status

    def refresh(self) -> Operation:
        """Re-read the operation."""
        self.operation = self._app.service.get(self.operation.id)
        return self.operation

    @property
    def progress(self) -> Progress | None:
        """The last reading (as of the last refresh), with an ETA from history if needed."""
        return self._app.service.estimated_progress(self.operation)

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
        return f"<OperationHandle {self.id} {self.status.value}>"


class Longops:
    """A longops application. The database is opened on first use.

    Args:
        database_url: ``sqlite:///path.db`` or ``postgresql://...``; defaults to
            ``LONGOPS_DATABASE_URL`` or ``sqlite:///longops.db``.
        clock: where the current time comes from (tests pass a controllable clock).
    """

    def __init__(self, database_url: str | None = None, *, clock: Clock | None = None) -> None:
        self.database_url = database_url or Settings().database_url
        self.clock: Clock = clock or SystemClock()
        self.registry = TaskRegistry()
        self.task = self.registry.task
        """Register a task (a decorator): ``@app.task`` or ``@app.task(name=..., ...)``;
        its options become defaults of the task's operations. See :meth:`TaskRegistry.task`."""
        self._store: Store | None = None
        self._service: OperationService | None = None
        self._lock = threading.Lock()

    # -- wiring -------------------------------------------------------------------------------
    @property
    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                self._store = open_store(self.database_url)
            return self._store

    @property
    def service(self) -> OperationService:
        store = self.store
        with self._lock:
            if self._service is None:
                self._service = OperationService(store, self.registry, self.clock)
            return self._service

    def migrate(self) -> list[str]:
        """Create or upgrade the schema; returns the migrations applied."""
        return self.store.migrate()

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
            self._store = None
            self._service = None

    def __enter__(self) -> Longops:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- tasks ---------------------------------------------------------------------------------
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
        self, name: str, *, display_name: str | None = None, time_zone: str = "UTC"
    ) -> Company:
        """Create a company (or change its display name and time zone).

        Example::

            app.add_company("CRONUS-UK", time_zone="Europe/London")
        """
        return self.service.add_company(name, display_name=display_name, time_zone=time_zone)

    # -- workers -------------------------------------------------------------------------------
    def worker(self, **options: Any) -> Worker:
        """A worker session for this app; ``run()`` it, or ``start()``/``stop()`` it."""
        if "queues" in options:
            options["queues"] = tuple(options["queues"])
        opts = WorkerOptions(**options)
        maintenance = maintenance_for(
            self.store,
            self.clock,
            self.registry,
            session_timeout=timedelta(seconds=opts.session_timeout),
            rescuer_interval=timedelta(seconds=opts.rescuer_interval),
            retention=opts.retention,
        )
        return Worker(self.store, self.registry, self.clock, opts, maintenance=maintenance)


__all__ = ["Longops", "LongopsError", "OperationHandle"]
