"""OperationService: the one place front ends go through to create and act on operations.

Every action names the statuses it may start from (``domain.status.ACTIONS``) and the store
applies it only to a row still in one of them, so two people acting at once cannot push an
operation through a transition the table does not allow.

Example::

    service = OperationService(store, registry, SystemClock())
    op = service.enqueue(EnqueueRequest(task="post_invoices", args=("2026-01",)))
    service.hold(op.id)
    service.set_ready(op.id, user="alice")
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from longops.domain.clock import Clock
from longops.domain.errors import InvalidTransition, NotFound, ValidationError
from longops.domain.operation import (
    DEFAULT_COMPANY,
    Attempt,
    CancelMode,
    Category,
    Company,
    EventType,
    NewOperation,
    Operation,
    OperationEvent,
    Priority,
    _check_name,
)
from longops.domain.progress import Progress, history_estimate
from longops.domain.recurrence import Recurrence, initial_run_time
from longops.domain.retry import RetryPolicy
from longops.domain.status import ACTIONS, Status, allowed_from, target_of
from longops.domain.waiting import WaitReason, wait_reason
from longops.store.base import ActionParams, OperationQuery, Store
from longops.worker.registry import TaskDef, TaskRegistry

REMOVE_FAILED_AFTER = timedelta(seconds=30)  # Business Central's filter is 30,000 ms
DURATIONS_FRESH_FOR = 60.0
"""Seconds a task's recent run durations (the ETA before any progress) are reused."""

OperationRef = uuid.UUID | str | int
"""An operation's id, or its entry number."""


@dataclass(frozen=True, slots=True)
class EnqueueRequest:
    """What a caller asks for; unset options take the task's defaults."""

    task: str | Callable[..., Any] | TaskDef
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    company: str = DEFAULT_COMPANY
    description: str | None = None
    queue: str | None = None
    category: str | None = None
    priority: Priority | str | None = None
    earliest_start_at: datetime | None = None
    delay: timedelta | float | None = None
    expires_at: datetime | None = None
    max_attempts: int | None = None
    rerun_delay: int | None = None
    retry_policy: RetryPolicy | Mapping[str, Any] | None = None
    timeout: timedelta | float | None = None
    recurrence: Recurrence | str | Mapping[str, Any] | None = None
    user: str | None = None
    dedup_key: str | None = None
    labels: Mapping[str, str] | None = None
    on_hold: bool = False


class OperationService:
    def __init__(self, store: Store, registry: TaskRegistry, clock: Clock) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        # Companies and categories are read once and remembered: enqueue is a hot path.
        self._known: dict[tuple[str, str | None], ZoneInfo] = {}
        self._known_lock = threading.Lock()
        self._durations: dict[str, tuple[float, timedelta | None]] = {}

    # -- enqueue ---------------------------------------------------------------------------
    def build(self, request: EnqueueRequest) -> NewOperation:
        """Validate a request fully (nothing is written)."""
        task = self.registry.resolve(request.task)
        task.check_arguments(request.args, request.kwargs)
        category = request.category if request.category is not None else task.category
        tz = self._check_scope(request.company, category)
        now = self.clock.now()
        if request.delay is not None and request.earliest_start_at is not None:
            raise ValidationError("delay", "give either delay or earliest_start_at, not both")
        start = request.earliest_start_at
        if request.delay is not None:
            delay = (
                request.delay
                if isinstance(request.delay, timedelta)
                else timedelta(seconds=float(request.delay))
            )
            if delay < timedelta(0):
                raise ValidationError(
                    "delay", "must not be negative (seconds)", delay.total_seconds()
                )
            start = now + delay
        recurrence = _recurrence(request.recurrence)
        if recurrence is not None:
            start = initial_run_time(recurrence, now, start, tz)
        return NewOperation.build(
            task=task.name,
            now=now,
            args=request.args,
            kwargs=request.kwargs,
            company=request.company,
            description=request.description or task.description,
            queue=request.queue if request.queue is not None else task.queue,
            category=category,
            priority=request.priority if request.priority is not None else task.priority,
            earliest_start_at=start,
            expires_at=request.expires_at,
            max_attempts=(
                request.max_attempts if request.max_attempts is not None else task.max_attempts
            ),
            rerun_delay=request.rerun_delay
            if request.rerun_delay is not None
            else task.rerun_delay,
            retry_policy=request.retry_policy or task.retry_policy,
            timeout=request.timeout if request.timeout is not None else task.timeout,
            recurrence=recurrence,
            user=request.user,
            dedup_key=request.dedup_key,
            labels=request.labels,
            on_hold=request.on_hold,
            stall_after=task.stall_after,
        )

    def enqueue(self, request: EnqueueRequest, *, connection: Any = None) -> Operation:
        """Create one operation; committed before this returns (or with ``connection``'s
        transaction). With a dedup key held by an active operation, returns that one."""
        return self.enqueue_checked(request, connection=connection)[0]

    def enqueue_checked(
        self, request: EnqueueRequest, *, connection: Any = None
    ) -> tuple[Operation, bool]:
        """:meth:`enqueue`, also saying whether the operation is new (False when its dedup
        key matched an active operation, which is returned instead)."""
        built = self.build(request)
        [op] = self.store.insert_operations([built], connection=connection)
        return op, op.id == built.id

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[uuid.UUID]:
        """Create many operations in one transaction: all of them, or none when any request
        is refused (the error names the first bad field)."""
        if any(r.dedup_key is not None for r in requests):
            # Dedup keys need the checked, row-by-row insert.
            built = [self.build(r) for r in requests]
            return [op.id for op in self.store.insert_operations(built)]
        ids: list[uuid.UUID] = []

        def validated() -> Iterator[NewOperation]:
            # Rows are built while the bulk insert streams them, so validation and the
            # database's work overlap; a bad request raises inside the open transaction,
            # which then rolls back and nothing is written.
            for request in requests:
                op = self.build(request)
                ids.append(op.id)
                yield op

        self.store.insert_operations_bulk(validated())
        return ids

    def _check_scope(self, company: str, category: str | None) -> ZoneInfo:
        key = (company, category)
        with self._known_lock:
            zone = self._known.get(key)
        if zone is not None:
            return zone
        _check_name("company", company)
        found = self.store.get_company(company)
        if found is None:
            raise ValidationError("company", "must be an existing company", company)
        if not found.active:
            raise ValidationError("company", "is disabled", company)
        if category is not None:
            _check_name("category", category)
            if self.store.get_category(company, category) is None:
                raise ValidationError(
                    "category", f"must be an existing category of company {company}", category
                )
        zone = ZoneInfo(found.time_zone)
        with self._known_lock:
            self._known[key] = zone
        return zone

    # -- reads -----------------------------------------------------------------------------
    def get(self, operation_id: OperationRef, company: str | None = None) -> Operation:
        """Read an operation by its id, or by its entry number (as ``ops list`` shows it)."""
        if isinstance(operation_id, int) or (
            isinstance(operation_id, str) and operation_id.isdigit()
        ):
            entry_no = int(operation_id)
            found = self.store.get_operation_by_entry_no(entry_no, company)
            if found is None:
                raise NotFound("operation with entry number", entry_no)
            return found
        oid = _uuid(operation_id)
        op = self.store.get_operation(oid, company)
        if op is None:
            raise NotFound("operation", oid)
        return op

    def list_operations(self, query: OperationQuery) -> list[Operation]:
        if not 1 <= query.limit <= 1000:
            raise ValidationError("limit", "must be between 1 and 1000", query.limit)
        return self.store.list_operations(query)

    def attempts(self, operation_id: OperationRef, company: str | None = None) -> list[Attempt]:
        op = self.get(operation_id, company)
        return self.store.list_attempts(op.id)

    def events(
        self,
        operation_id: OperationRef,
        *,
        after_id: int | None = None,
        types: Sequence[EventType] = (),
        limit: int = 1000,
        company: str | None = None,
    ) -> list[OperationEvent]:
        """The operation's timeline, oldest first (after ``after_id`` when given)."""
        if not 1 <= limit <= 10_000:
            raise ValidationError("limit", "must be between 1 and 10000", limit)
        op = self.get(operation_id, company)
        return self.store.list_events(op.id, after_id=after_id, types=types, limit=limit)

    def progress_history(
        self, operation_id: OperationRef, *, points: int = 120, company: str | None = None
    ) -> list[dict[str, Any]]:
        """The latest run's progress over time, thinned to at most ``points`` readings
        (enough for a sparkline): ``[{"at", "percent", "completed"}, ...]``."""
        if not 2 <= points <= 10_000:
            raise ValidationError("points", "must be between 2 and 10000", points)
        op = self.get(operation_id, company)
        last = self.store.list_events(
            op.id, types=(EventType.PROGRESS,), newest_first=True, limit=1
        )
        if not last:
            return []
        # The latest run that reported, newest readings first (a long run is thinned from
        # its most recent 20,000), then in time order.
        readings = self.store.list_events(
            op.id,
            types=(EventType.PROGRESS,),
            run_no=last[0].run_no,
            newest_first=True,
            limit=20_000,
        )[::-1]
        if len(readings) > points:
            step = (len(readings) - 1) / (points - 1)
            readings = [readings[round(i * step)] for i in range(points)]
        return [
            {
                "at": e.at.isoformat(),
                "percent": e.data.get("percent"),
                "completed": e.data.get("completed"),
            }
            for e in readings
        ]

    # -- tracking: wait reasons and estimates -------------------------------------------------
    def wait_reasons(self, ops: Sequence[Operation]) -> dict[uuid.UUID, WaitReason]:
        """Why each ready operation waits, derived now from one consistent read."""
        ready = [op for op in ops if op.status is Status.READY]
        if not ready:
            return {}
        ctx = self.store.wait_context(self.clock.now())
        out: dict[uuid.UUID, WaitReason] = {}
        for op in ready:
            reason = wait_reason(op, ctx, self._zone(op))
            if reason is not None:
                out[op.id] = reason
        return out

    def estimated_progress(self, op: Operation) -> Progress | None:
        """The operation's progress; before its rate gives an ETA, an ETA from the
        median of the task's recent successful run durations."""
        progress = op.progress
        if op.status is not Status.IN_PROCESS or op.started_at is None:
            return progress
        if progress is not None and progress.eta_at is not None:
            return progress
        typical = self._typical_duration(op.task)
        if typical is None:
            return progress
        return replace(progress or Progress(), eta_at=op.started_at + typical, eta_source="history")

    def _typical_duration(self, task: str) -> timedelta | None:
        now = time.monotonic()
        cached = self._durations.get(task)
        if cached is not None and now - cached[0] < DURATIONS_FRESH_FOR:
            return cached[1]
        typical = history_estimate(self.store.recent_durations(task))
        self._durations[task] = (now, typical)
        return typical

    def describe(self, ops: Sequence[Operation]) -> list[dict[str, Any]]:
        """Operations as JSON with what is derived at read time: the wait reason of each
        ready one and the ETA estimate of each running one."""
        reasons = self.wait_reasons(ops)
        out = []
        for op in ops:
            data = op.to_json()
            progress = self.estimated_progress(op)
            data["progress"] = None if progress is None else progress.to_json()
            reason = reasons.get(op.id)
            data["wait_reason"] = None if reason is None else reason.to_json()
            out.append(data)
        return out

    # -- actions (Business Central's page actions) ------------------------------------------
    def set_ready(
        self, operation_id: OperationRef, *, user: str | None = None, company: str | None = None
    ) -> Operation:
        """Set Status to Ready: recompute the start, reset attempts; runs as ``user``."""
        return self._ready("set_ready", operation_id, user=user, company=company)

    def restart(
        self, operation_id: OperationRef, *, user: str | None = None, company: str | None = None
    ) -> Operation:
        """Restart a finished, failed or cancelled operation from scratch."""
        return self._ready("restart", operation_id, user=user, company=company)

    def run_now(
        self, operation_id: OperationRef, *, user: str | None = None, company: str | None = None
    ) -> Operation:
        """Make it due now, ignoring its schedule and run window."""
        return self._ready("run_now", operation_id, user=user, company=company, now=True)

    def hold(self, operation_id: OperationRef, *, company: str | None = None) -> Operation:
        """Set On Hold. Refused while running: cancel a running operation instead."""
        return self._act("hold", operation_id, company=company)

    def cancel(
        self,
        operation_id: OperationRef,
        *,
        reason: str | None = None,
        by: str | None = None,
        force: bool = False,
        company: str | None = None,
    ) -> Operation:
        """Cancel: at once when not running (mode ``before_start``); a running operation
        gets a request (shown as *Cancelling*) that its code sees within a second on
        PostgreSQL, within the poll interval on SQLite. Code that does not stop within its
        task's ``cancel_grace`` is stopped by force; ``force=True`` skips the grace.

        Example::

            service.cancel(op.id, reason="wrong month", by="alice")
        """
        op = self.get(operation_id, company)
        if reason is not None and len(reason) > 500:
            raise ValidationError("reason", "must be at most 500 characters")
        if op.status is Status.IN_PROCESS:
            requested = self.store.request_cancel(
                op.id, company, self.clock.now(), by, reason, force=force
            )
            if requested is not None:
                return requested
            op = self.get(op.id, company)
            if op.status is Status.IN_PROCESS:
                return op  # a cancel request (forced, if that was asked) was already pending
        try:
            return self._act(
                "cancel",
                op.id,
                company=company,
                reason="cancelled",
                user=None,
                cancel=(by, reason),
            )
        except InvalidTransition:
            # Claimed between our read and our write: it is running now, so ask it.
            current = self.get(op.id, company)
            if current.status is not Status.IN_PROCESS:
                raise
            requested = self.store.request_cancel(
                op.id, company, self.clock.now(), by, reason, force=force
            )
            return requested or self.get(op.id, company)

    def delete(self, operation_id: OperationRef, *, company: str | None = None) -> None:
        """Delete an operation and forget it. Refused while it is in process."""
        op = self.get(operation_id, company)
        if op.status is Status.IN_PROCESS:
            raise InvalidTransition("delete", op.status.value, op.id)
        if not self.store.delete_operation(op.id, company):
            current = self.get(op.id, company)
            raise InvalidTransition("delete", current.status.value, op.id)

    def remove_failed(self, company: str = DEFAULT_COMPANY) -> int:
        """Delete non-recurring operations in error whose last run ended at least 30 s ago."""
        return self.store.delete_failed(company, self.clock.now() - REMOVE_FAILED_AFTER)

    def _ready(
        self,
        action: str,
        operation_id: OperationRef,
        *,
        user: str | None,
        company: str | None,
        now: bool = False,
    ) -> Operation:
        op = self.get(operation_id, company)
        at = self.clock.now()
        if now:
            start = at
        elif op.recurrence is not None:
            start = initial_run_time(op.recurrence, at, op.earliest_start_at, self._zone(op))
        else:
            start = max(op.earliest_start_at, at)
        if op.expires_at is not None and op.expires_at <= start:
            raise ValidationError(
                "expires_at", "has passed; the operation would expire before it starts"
            )
        return self._act(
            action,
            op.id,
            company=company,
            start=start,
            reset=True,
            user=user,
            reason="run_now" if now else None,
            current=op,
            clear_checkpoint=action == "restart",
        )

    def _act(
        self,
        action: str,
        operation_id: OperationRef,
        *,
        company: str | None,
        start: datetime | None = None,
        reset: bool = False,
        user: str | None = None,
        reason: str | None = None,
        current: Operation | None = None,
        cancel: tuple[str | None, str | None] | None = None,
        clear_checkpoint: bool = False,
    ) -> Operation:
        assert action in ACTIONS
        op = current or self.get(operation_id, company)
        oid = op.id
        sources = allowed_from(action)
        if op.status not in sources:
            raise InvalidTransition(action.replace("_", " "), op.status.value, oid)
        updated = self.store.apply_action(
            ActionParams(
                operation_id=oid,
                company=company,
                allowed_from=sources,
                status=target_of(action),
                at=self.clock.now(),
                status_reason=reason,
                earliest_start_at=start,
                reset_attempts=reset,
                user=user,
                action=action,
                cancel_mode=None if cancel is None else CancelMode.BEFORE_START,
                cancel_by=None if cancel is None else cancel[0],
                cancel_reason=None if cancel is None else cancel[1],
                clear_checkpoint=clear_checkpoint,
            )
        )
        if updated is None:
            # Someone else moved it first; report where it is now.
            now_op = self.get(oid, company)
            raise InvalidTransition(action.replace("_", " "), now_op.status.value, oid)
        return updated

    def _zone(self, op: Operation) -> ZoneInfo:
        return self._check_scope(op.company, None)

    # -- companies, categories and queues ----------------------------------------------------
    def add_company(
        self, name: str, *, display_name: str | None = None, time_zone: str = "UTC"
    ) -> Company:
        """Create a company (or update its display name and time zone).

        Example::

            service.add_company("CRONUS-UK", time_zone="Europe/London")
        """
        _check_name("company", name)
        try:
            ZoneInfo(time_zone)
        except (ValueError, KeyError, OSError):
            raise ValidationError(
                "time_zone", "must be an IANA time zone such as Europe/Amsterdam", time_zone
            ) from None
        if display_name is not None and len(display_name) > 250:
            raise ValidationError("display_name", "must be at most 250 characters")
        company = self.store.upsert_company(Company(name, display_name or name, time_zone))
        with self._known_lock:
            self._known = {k: v for k, v in self._known.items() if k[0] != name}
        return company

    def list_companies(self) -> list[Company]:
        return self.store.list_companies()

    # -- categories and queues --------------------------------------------------------------
    def set_category(
        self,
        company: str,
        code: str,
        *,
        max_concurrent: int = 1,
        description: str = "",
        paused: bool = False,
    ) -> Category:
        """Create or update a category (Business Central: job queue category)."""
        _check_name("category", code)
        if isinstance(max_concurrent, bool) or not 1 <= max_concurrent <= 1000:
            raise ValidationError("max_concurrent", "must be between 1 and 1000", max_concurrent)
        if len(description) > 250:
            raise ValidationError("description", "must be at most 250 characters")
        self._check_scope(company, None)
        category = self.store.upsert_category(
            Category(company, code, description, max_concurrent, paused)
        )
        return category

    def pause_queue(self, name: str) -> None:
        _check_name("queue", name)
        self.store.set_queue_paused(name, True, self.clock.now())

    def resume_queue(self, name: str) -> None:
        _check_name("queue", name)
        self.store.set_queue_paused(name, False, self.clock.now())


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationError(
            "id", "must be an operation id (a UUID) or an entry number", value
        ) from None


def _recurrence(value: Recurrence | str | Mapping[str, Any] | None) -> Recurrence | None:
    if value is None or isinstance(value, Recurrence):
        return value
    if isinstance(value, str):
        return Recurrence.parse(value)
    return Recurrence.from_json(value)
