"""OperationService: the one place front ends go through to create and act on operations.

Every method runs for an actor (``actor=``, or the one the service is bound to) and asks the
permission table first (``core.access``); reads pass the actor's companies down to the
store, so another company's rows are filtered out in SQL, and an operation of a company the
actor holds no permission set in is reported exactly as a missing one.

Every action names the statuses it may start from (``domain.status.ACTIONS``) and the store
applies it only to a row still in one of them, so two people acting at once cannot push an
operation through a transition the table does not allow. Operator actions are written to
the audit log in the same transaction.

Example::

    service = OperationService(store, registry, SystemClock()).as_actor(Actor.local())
    op = service.enqueue(EnqueueRequest(task="post_invoices", args=("2026-01",)))
    service.hold(op.id)
    alice = Actor.for_user("alice", [("default", PermissionSet.USER)])
    service.set_ready(op.id, actor=alice)        # refused: not alice's operation
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import EllipsisType
from typing import Any
from zoneinfo import ZoneInfo

from longops import telemetry
from longops.core.access import ActorBound, acting, require
from longops.domain.clock import Clock
from longops.domain.errors import (
    Conflict,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from longops.domain.limits import PayloadLimits
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
    Outcome,
    Priority,
    Session,
    SessionEvent,
    _check_name,
)
from longops.domain.pages import (
    COUNT_CAP,
    CategoryActivity,
    HourBucket,
    LogEntry,
    Notification,
    Overview,
)
from longops.domain.progress import Progress, history_estimate
from longops.domain.recurrence import Recurrence, initial_run_time
from longops.domain.retry import RetryPolicy
from longops.domain.security import PERMISSIONS, Actor, Verdict, companies_for, decide, satisfies
from longops.domain.status import ACTIONS, Status, allowed_from, target_of
from longops.domain.waiting import WaitReason, wait_reason
from longops.store.base import ActionParams, AttemptQuery, OperationEdit, OperationQuery, Store
from longops.store.migrate import MigrationState
from longops.telemetry.prometheus import render
from longops.worker.registry import TaskDef, TaskRegistry

REMOVE_FAILED_AFTER = timedelta(seconds=30)  # Business Central's filter is 30,000 ms
DURATIONS_FRESH_FOR = 60.0
"""Seconds a task's recent run durations (the ETA before any progress) are reused."""
METRICS_FRESH_FOR = 5.0
"""Seconds the fleet's /metrics figures are reused (one query per period, however many
scrapers)."""

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
    """Who it runs on behalf of; by default the actor. Naming another user needs SUPER."""
    dedup_key: str | None = None
    labels: Mapping[str, str] | None = None
    on_hold: bool = False
    operation_id: uuid.UUID | None = None
    """A client-chosen id (the REST API's ``Operation-Id``): sent again with the same
    request it returns the same operation; with another request it is refused."""
    request_hash: str | None = None
    """What the client asked for, hashed, to tell a retry from a conflict (with
    ``operation_id``)."""


class OperationService(ActorBound):
    """Enqueue, read and act on operations; see the module docstring."""

    def __init__(
        self,
        store: Store,
        registry: TaskRegistry,
        clock: Clock,
        *,
        actor: Actor | None = None,
        limits: PayloadLimits | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.actor = actor
        self.limits = limits or PayloadLimits()
        # Companies and categories are read once and remembered: enqueue is a hot path.
        self._known: dict[tuple[str, str | None], ZoneInfo] = {}
        self._known_lock = threading.Lock()
        self._durations: dict[str, tuple[float, timedelta | None]] = {}
        # A dict, not an attribute: actor-bound copies (as_actor) share it.
        self._metrics: dict[str, tuple[float, str]] = {}

    # -- enqueue ---------------------------------------------------------------------------
    @acting
    def build(self, request: EnqueueRequest, *, actor: Actor | None = None) -> NewOperation:
        """Validate a request fully, permissions included (nothing is written)."""
        return self._build(request, self._who(actor))

    def _build(self, request: EnqueueRequest, who: Actor) -> NewOperation:
        # Called once per row by enqueue_many: no per-row actor resolution or scoping.
        task = self.registry.resolve(request.task)
        task.check_arguments(request.args, request.kwargs)
        category = request.category if request.category is not None else task.category
        _require_in(who, "enqueue", request.company)
        tz = self._check_scope(request.company, category)
        user = self._runs_as(who, request.user)
        required = task.requires
        if not satisfies(who, request.company, required):
            assert required is not None
            raise PermissionDenied(
                who.name, "enqueue", f"task {task.name}", f"the task requires {required.value}"
            )
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
        built = NewOperation.build(
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
            user=user,
            dedup_key=request.dedup_key,
            labels=request.labels,
            on_hold=request.on_hold,
            stall_after=task.stall_after,
            required_permission=required,
            operation_id=request.operation_id,
            request_hash=request.request_hash,
        )
        # Every front end enqueues through here: a payload over the limit is refused before
        # anything is written (a bulk enqueue's transaction rolls back).
        PayloadLimits.check(
            "args", built.args_json, self.limits.arguments, "LONGOPS_MAX_ARGUMENT_BYTES"
        )
        return built

    def enqueue(
        self, request: EnqueueRequest, *, connection: Any = None, actor: Actor | None = None
    ) -> Operation:
        """Create one operation; committed before this returns (or with ``connection``'s
        transaction). With a dedup key held by an active operation, returns that one."""
        return self.enqueue_checked(request, connection=connection, actor=actor)[0]

    @acting
    def enqueue_checked(
        self, request: EnqueueRequest, *, connection: Any = None, actor: Actor | None = None
    ) -> tuple[Operation, bool]:
        """:meth:`enqueue`, also saying whether the operation is new (False when its dedup
        key matched an active operation, which is returned instead)."""
        built = self._build(request, self._who(actor))
        with telemetry.sending(built.queue) as sent:
            [op] = self.store.insert_operations([sent.stamp(built)], connection=connection)
            sent.sent(op, built)
        if request.operation_id is not None and op.id == built.id:
            if op.request_hash != built.request_hash or op.company != built.company:
                raise Conflict(
                    "OperationIdConflict",
                    f"Operation-Id {built.id} was already used for a different request",
                )
            if op.created_at != built.created_at:
                return op, False  # the same request again: the same operation
        if op.user is not None and op.user != self._who(actor).user:
            # Enqueued on behalf of someone else: say whether that user can still act.
            [op] = self._flag([op])
        return op, op.id == built.id

    @acting
    def enqueue_many(
        self, requests: Sequence[EnqueueRequest], *, actor: Actor | None = None
    ) -> list[uuid.UUID]:
        """Create many operations in one transaction: all of them, or none when any request
        is refused (the error names the first bad field)."""
        who = self._who(actor)
        if any(r.dedup_key is not None for r in requests):
            # Dedup keys need the checked, row-by-row insert.
            with telemetry.sending() as sent:
                built = [sent.stamp(self._build(r, who)) for r in requests]
                return [op.id for op in self.store.insert_operations(built)]
        ids: list[uuid.UUID] = []

        def validated() -> Iterator[NewOperation]:
            # Rows are built while the bulk insert streams them, so validation and the
            # database's work overlap; a bad request raises inside the open transaction,
            # which then rolls back and nothing is written.
            for request in requests:
                op = sent.stamp(self._build(request, who))
                ids.append(op.id)
                yield op

        with telemetry.sending() as sent:
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
            raise _no_company(company)
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

    def _runs_as(self, actor: Actor, requested: str | None) -> str | None:
        """Who an operation will run on behalf of: the actor, unless SUPER names another."""
        if requested is None or requested == actor.user:
            return actor.user if requested is None else requested
        _check_name("user", requested)
        require(actor, "act_on_behalf", target=f"user {requested}")
        return requested

    # -- reads -----------------------------------------------------------------------------
    @acting
    def get(
        self, operation_id: OperationRef, company: str | None = None, *, actor: Actor | None = None
    ) -> Operation:
        """Read an operation by its id, or by its entry number (as ``ops list`` shows it)."""
        [op] = self._flag([self._find(operation_id, company, self._who(actor), "get_operation")])
        return op

    def _find(
        self, operation_id: OperationRef, company: str | None, actor: Actor, action: str
    ) -> Operation:
        """The operation if ``actor`` may see it; else NotFound, exactly as if it did not exist."""
        visible = companies_for(actor, action)
        found: Operation | None
        if isinstance(operation_id, int) or (
            isinstance(operation_id, str) and operation_id.isascii() and operation_id.isdigit()
        ):
            entry_no = int(operation_id)
            found = self.store.get_operation_by_entry_no(entry_no, company, companies=visible)
            missing: NotFound = NotFound("operation with entry number", entry_no)
        else:
            oid = _uuid(operation_id)
            found = self.store.get_operation(oid, company, companies=visible)
            missing = NotFound("operation", oid)
        if found is None:
            raise missing
        # The store already filtered by company; the table decides the rest (and would hide
        # the row even if a filter were forgotten).
        require(
            actor,
            action,
            target=_target(found),
            company=found.company,
            owner=found.user,
            hidden=lambda: missing,
        )
        return found

    def _flag(self, ops: Sequence[Operation]) -> list[Operation]:
        """Mark operations whose user no longer exists or is disabled (one query)."""
        names = {op.user for op in ops if op.user is not None}
        if not names:
            return list(ops)
        active = self.store.active_users(names)
        return [
            dataclasses.replace(op, user_inactive=True)
            if op.user is not None and op.user not in active
            else op
            for op in ops
        ]

    @acting
    def list_operations(
        self, query: OperationQuery, *, actor: Actor | None = None
    ) -> list[Operation]:
        """Operations in entry order, of the companies the actor may read only."""
        if not 1 <= query.limit <= 1000:
            raise ValidationError("limit", "must be between 1 and 1000", query.limit)
        visible = companies_for(self._who(actor), "list_operations")
        return self._flag(self.store.list_operations(_narrow(query, visible)))

    @acting
    def count_operations(
        self, company: str | None = None, *, actor: Actor | None = None
    ) -> dict[Status, int]:
        """Operations per status, of the companies the actor may read only."""
        visible = companies_for(self._who(actor), "count_operations")
        return self.store.count_operations(company, companies=visible)

    @acting
    def attempts(
        self, operation_id: OperationRef, company: str | None = None, *, actor: Actor | None = None
    ) -> list[Attempt]:
        """An operation's attempts (log entries), first run first."""
        who = self._who(actor)
        op = self._find(operation_id, company, who, "list_attempts")
        return self.store.list_attempts(op.id, companies=companies_for(who, "list_attempts"))

    @acting
    def events(
        self,
        operation_id: OperationRef,
        *,
        after_id: int | None = None,
        types: Sequence[EventType] = (),
        limit: int = 1000,
        company: str | None = None,
        actor: Actor | None = None,
    ) -> list[OperationEvent]:
        """The operation's timeline, oldest first (after ``after_id`` when given)."""
        if not 1 <= limit <= 10_000:
            raise ValidationError("limit", "must be between 1 and 10000", limit)
        op = self._find(operation_id, company, self._who(actor), "list_events")
        return self.store.list_events(op.id, after_id=after_id, types=types, limit=limit)

    @acting
    def company_events(
        self,
        company: str,
        *,
        after_id: int = 0,
        limit: int = 1000,
        actor: Actor | None = None,
    ) -> list[OperationEvent]:
        """A company's timeline after an event id, oldest first (a list stream resuming)."""
        if not 1 <= limit <= 10_000:
            raise ValidationError("limit", "must be between 1 and 10000", limit)
        who = self._who(actor)
        visible = companies_for(who, "list_operations")
        if visible is not None and company not in visible:
            raise _no_company(company)
        return self.store.company_events_since(company, after_id, limit)

    @acting
    def progress_history(
        self,
        operation_id: OperationRef,
        *,
        points: int = 120,
        company: str | None = None,
        actor: Actor | None = None,
    ) -> list[dict[str, Any]]:
        """The latest run's progress over time, thinned to at most ``points`` readings
        (enough for a sparkline): ``[{"at", "percent", "completed"}, ...]``."""
        if not 2 <= points <= 10_000:
            raise ValidationError("points", "must be between 2 and 10000", points)
        op = self._find(operation_id, company, self._who(actor), "list_events")
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
    def _visible(self, ops: Sequence[Operation], actor: Actor | None) -> list[Operation]:
        """The operations of ``ops`` in companies the actor may list (derived reads say
        nothing about the others)."""
        visible = companies_for(self._who(actor), "list_operations")
        return [op for op in ops if visible is None or op.company in visible]

    @acting
    def wait_reasons(
        self, ops: Sequence[Operation], *, actor: Actor | None = None
    ) -> dict[uuid.UUID, WaitReason]:
        """Why each ready operation waits, derived now from one consistent read."""
        ready = [op for op in self._visible(ops, actor) if op.status is Status.READY]
        if not ready:
            return {}
        ctx = self.store.wait_context(self.clock.now())
        out: dict[uuid.UUID, WaitReason] = {}
        for op in ready:
            reason = wait_reason(op, ctx, self._zone(op))
            if reason is not None:
                out[op.id] = reason
        return out

    @acting
    def estimated(
        self, ops: Sequence[Operation], *, actor: Actor | None = None
    ) -> dict[uuid.UUID, Progress | None]:
        """Each operation's progress; a running one whose rate gives no ETA yet gets one
        from the median of its task's recent successful run durations."""
        return {op.id: self._estimate(op) for op in self._visible(ops, actor)}

    def _estimate(self, op: Operation) -> Progress | None:
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

    @acting
    def describe(
        self, ops: Sequence[Operation], *, actor: Actor | None = None
    ) -> list[dict[str, Any]]:
        """Operations as JSON with what is derived at read time: the wait reason of each
        ready one and the ETA estimate of each running one."""
        shown = self._visible(ops, actor)
        reasons = self.wait_reasons(shown, actor=actor)
        out = []
        for op in shown:
            data = op.to_json()
            progress = self._estimate(op)
            data["progress"] = None if progress is None else progress.to_json()
            reason = reasons.get(op.id)
            data["wait_reason"] = None if reason is None else reason.to_json()
            out.append(data)
        return out

    # -- actions (Business Central's page actions) ------------------------------------------
    def set_ready(
        self,
        operation_id: OperationRef,
        *,
        user: str | None = None,
        company: str | None = None,
        actor: Actor | None = None,
    ) -> Operation:
        """Set Status to Ready: recompute the start, reset attempts. It then runs on behalf
        of the actor (Business Central: the user who last set it ready); SUPER may name
        another ``user``."""
        return self._ready("set_ready", operation_id, user=user, company=company, actor=actor)

    def restart(
        self,
        operation_id: OperationRef,
        *,
        user: str | None = None,
        company: str | None = None,
        actor: Actor | None = None,
    ) -> Operation:
        """Restart a finished, failed or cancelled operation from scratch."""
        return self._ready("restart", operation_id, user=user, company=company, actor=actor)

    def run_now(
        self,
        operation_id: OperationRef,
        *,
        user: str | None = None,
        company: str | None = None,
        actor: Actor | None = None,
    ) -> Operation:
        """Make it due now, ignoring its schedule and run window."""
        return self._ready(
            "run_now", operation_id, user=user, company=company, now=True, actor=actor
        )

    @acting
    def hold(
        self, operation_id: OperationRef, *, company: str | None = None, actor: Actor | None = None
    ) -> Operation:
        """Set On Hold. Refused while running: cancel a running operation instead."""
        return self._act("hold", operation_id, company=company, actor=self._who(actor))

    @acting
    def cancel(
        self,
        operation_id: OperationRef,
        *,
        reason: str | None = None,
        by: str | None = None,
        force: bool = False,
        company: str | None = None,
        actor: Actor | None = None,
    ) -> Operation:
        """Cancel: at once when not running (mode ``before_start``); a running operation
        gets a request (shown as *Cancelling*) that its code sees within a second on
        PostgreSQL, within the poll interval on SQLite. Code that does not stop within its
        task's ``cancel_grace`` is stopped by force; ``force=True`` (admins) skips the
        grace. ``by`` (who asks) is the actor; SUPER may name someone else.

        Example::

            service.cancel(op.id, reason="wrong month")
        """
        who = self._who(actor)
        op = self._find(operation_id, company, who, "get_operation")
        require(who, "cancel", target=_target(op), company=op.company, owner=op.user)
        if force:
            require(who, "force_cancel", target=_target(op), company=op.company, owner=op.user)
        if reason is not None and len(reason) > 500:
            raise ValidationError("reason", "must be at most 500 characters")
        by = self._runs_as(who, by)
        if op.status is Status.IN_PROCESS:
            audit = self._entry(
                who,
                "cancel",
                str(op.id),
                op.company,
                {"entry_no": op.entry_no, "running": True, "force": force},
            )
            at = self.clock.now()
            requested = self.store.request_cancel(
                op.id, op.company, at, by, reason, force=force, audit=audit
            )
            if requested is not None:
                telemetry.cancel_requested(requested, force)
                return requested
            op = self._find(op.id, company, who, "get_operation")
            if op.status is Status.IN_PROCESS:
                return op  # a cancel request (forced, if that was asked) was already pending
        try:
            return self._act(
                "cancel",
                op.id,
                company=company,
                reason="cancelled",
                actor=who,
                cancel=(by, reason),
            )
        except InvalidTransition:
            # Claimed between our read and our write: it is running now, so ask it.
            current = self._find(op.id, company, who, "get_operation")
            if current.status is not Status.IN_PROCESS:
                raise
            requested = self.store.request_cancel(
                op.id, op.company, self.clock.now(), by, reason, force=force
            )
            return requested or self._find(op.id, company, who, "get_operation")

    @acting
    def delete(
        self, operation_id: OperationRef, *, company: str | None = None, actor: Actor | None = None
    ) -> None:
        """Delete an operation and forget it. Refused while it is in process."""
        who = self._who(actor)
        op = self._find(operation_id, company, who, "get_operation")
        require(who, "delete", target=_target(op), company=op.company, owner=op.user)
        if op.status is Status.IN_PROCESS:
            raise InvalidTransition("delete", op.status.value, op.id)
        audit = self._entry(
            who, "delete", str(op.id), op.company, {"entry_no": op.entry_no, "task": op.task}
        )
        if not self.store.delete_operation(op.id, op.company, audit=audit):
            current = self._find(op.id, company, who, "get_operation")
            raise InvalidTransition("delete", current.status.value, op.id)

    @acting
    def remove_failed(self, company: str = DEFAULT_COMPANY, *, actor: Actor | None = None) -> int:
        """Delete non-recurring operations in error whose last run ended at least 30 s ago."""
        who = self._who(actor)
        _require_in(who, "remove_failed", company)
        audit = self._entry(who, "remove_failed", f"company {company}", company)
        return self.store.delete_failed(
            company, self.clock.now() - REMOVE_FAILED_AFTER, audit=audit
        )

    @acting
    def _ready(
        self,
        action: str,
        operation_id: OperationRef,
        *,
        user: str | None,
        company: str | None,
        now: bool = False,
        actor: Actor | None = None,
    ) -> Operation:
        who = self._who(actor)
        op = self._find(operation_id, company, who, "get_operation")
        require(who, action, target=_target(op), company=op.company, owner=op.user)
        runs_as = self._runs_as(who, user)
        if not satisfies(who, op.company, op.required_permission):
            assert op.required_permission is not None
            raise PermissionDenied(
                who.name,
                PERMISSIONS[action].what,
                _target(op),
                f"its task requires {op.required_permission.value}",
            )
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
            user=runs_as,
            reason="run_now" if now else None,
            current=op,
            clear_checkpoint=action == "restart",
            actor=who,
        )

    def _act(
        self,
        action: str,
        operation_id: OperationRef,
        *,
        company: str | None,
        actor: Actor,
        start: datetime | None = None,
        reset: bool = False,
        user: str | None = None,
        reason: str | None = None,
        current: Operation | None = None,
        cancel: tuple[str | None, str | None] | None = None,
        clear_checkpoint: bool = False,
    ) -> Operation:
        assert action in ACTIONS
        op = current or self._find(operation_id, company, actor, "get_operation")
        require(actor, action, target=_target(op), company=op.company, owner=op.user)
        oid = op.id
        sources = allowed_from(action)
        if op.status not in sources:
            raise InvalidTransition(action.replace("_", " "), op.status.value, oid)
        target = target_of(action)
        details: dict[str, Any] = {"entry_no": op.entry_no, "from": op.status.value}
        if user is not None and user != op.user:
            details["runs_as"] = user
        updated = self.store.apply_action(
            ActionParams(
                operation_id=oid,
                company=op.company,
                allowed_from=sources,
                status=target,
                at=self.clock.now(),
                status_reason=reason,
                earliest_start_at=start,
                reset_attempts=reset,
                user=user,
                action=action,
                by=actor.user,
                cancel_mode=None if cancel is None else CancelMode.BEFORE_START,
                cancel_by=None if cancel is None else cancel[0],
                cancel_reason=None if cancel is None else cancel[1],
                clear_checkpoint=clear_checkpoint,
            ),
            audit=self._entry(actor, action, str(oid), op.company, details),
        )
        if updated is None:
            # Someone else moved it first; report where it is now.
            now_op = self._find(oid, company, actor, "get_operation")
            raise InvalidTransition(action.replace("_", " "), now_op.status.value, oid)
        telemetry.acted(action, updated)
        [flagged] = self._flag([updated])
        return flagged

    def _zone(self, op: Operation) -> ZoneInfo:
        """The time zone of the operation's company, disabled or not (reads need it too)."""
        try:
            return self._check_scope(op.company, None)
        except ValidationError:
            found = self.store.get_company(op.company)
            return ZoneInfo(found.time_zone if found else "UTC")

    # -- the pages: editing, log entries, overview, facets, notifications ---------------------
    @acting
    def update_operation(
        self,
        operation_id: OperationRef,
        *,
        description: str | EllipsisType | None = ...,
        priority: Priority | str | int | EllipsisType = ...,
        category: str | EllipsisType | None = ...,
        earliest_start: datetime | EllipsisType | None = ...,
        recurrence: Recurrence | str | Mapping[str, Any] | EllipsisType | None = ...,
        max_attempts: int | EllipsisType = ...,
        timeout: timedelta | float | EllipsisType = ...,
        company: str | None = None,
        actor: Actor | None = None,
    ) -> Operation:
        """Edit an operation's definition; only while it is on hold (Business Central's
        rule), by its owner or the company's admins. What is not given keeps its value;
        None clears the description, the category or the recurrence, and sets the earliest
        start to now.

        Raises ValidationError field ``status`` rule ``must be on hold to edit`` otherwise.

        Example::

            service.hold(op.id)
            service.update_operation(op.id, priority="high", recurrence="every 2h")
        """
        who = self._who(actor)
        op = self._find(operation_id, company, who, "get_operation")
        require(who, "update_operation", target=_target(op), company=op.company, owner=op.user)
        if op.status is not Status.ON_HOLD:
            raise ValidationError("status", "must be on hold to edit", op.status.value)
        now = self.clock.now()
        new_category = op.category if isinstance(category, EllipsisType) else category
        if new_category is not None and new_category != op.category:
            self._check_scope(op.company, new_category)
        start = op.earliest_start_at if isinstance(earliest_start, EllipsisType) else earliest_start
        checked = NewOperation.build(
            task=op.task,
            now=now,
            company=op.company,
            queue=op.queue,
            description=op.description if isinstance(description, EllipsisType) else description,
            category=new_category,
            priority=op.priority if isinstance(priority, EllipsisType) else priority,
            earliest_start_at=start,
            expires_at=op.expires_at,
            max_attempts=op.max_attempts
            if isinstance(max_attempts, EllipsisType)
            else max_attempts,
            timeout=op.timeout if isinstance(timeout, EllipsisType) else timeout,
            recurrence=(
                op.recurrence if isinstance(recurrence, EllipsisType) else _recurrence(recurrence)
            ),
        )
        edit = OperationEdit(
            description=checked.description,
            priority=checked.priority,
            category=checked.category,
            # A start in the past means "as soon as set ready"; build moved it to now.
            earliest_start_at=checked.earliest_start_at,
            recurrence=checked.recurrence,
            max_attempts=checked.max_attempts,
            timeout=checked.timeout,
        )
        before = (
            op.description,
            op.priority,
            op.category,
            op.earliest_start_at,
            op.recurrence,
            op.max_attempts,
            op.timeout,
        )
        after = (
            edit.description,
            edit.priority,
            edit.category,
            edit.earliest_start_at,
            edit.recurrence,
            edit.max_attempts,
            edit.timeout,
        )
        names = _EDITABLE
        # What the audit names is what changed, not what the form sent again.
        changed = sorted(n for n, b, a in zip(names, before, after, strict=True) if b != a)
        audit = self._entry(
            who,
            "update_operation",
            str(op.id),
            op.company,
            {"entry_no": op.entry_no, "changed": changed},
        )
        saved = self.store.update_operation(op.id, op.company, edit, now, audit=audit)
        if saved is None:
            # Set ready (or cancelled) between our read and our write.
            current = self._find(op.id, company, who, "get_operation")
            raise ValidationError("status", "must be on hold to edit", current.status.value)
        [flagged] = self._flag([saved])
        return flagged

    @acting
    def list_attempts(
        self,
        company: str,
        *,
        task: str | None = None,
        outcome: Outcome | str | Sequence[Outcome | str] | None = None,
        operation_id: OperationRef | None = None,
        started_from: datetime | None = None,
        started_to: datetime | None = None,
        before_entry_no: int | None = None,
        limit: int = 100,
        actor: Actor | None = None,
    ) -> list[LogEntry]:
        """A company's log entries (every attempt of every operation), newest first, with
        filters; page on with ``before_entry_no`` = the last entry's ``attempt.id``.

        Example::

            page = service.list_attempts("CRONUS", outcome="error", limit=50)
            more = service.list_attempts("CRONUS", outcome="error",
                                         before_entry_no=page[-1].attempt.id)
        """
        who = self._who(actor)
        _require_in(who, "list_log_entries", company)
        if isinstance(limit, bool) or not 1 <= limit <= 1000:
            raise ValidationError("limit", "must be between 1 and 1000", limit)
        for name, value in (("started_from", started_from), ("started_to", started_to)):
            if value is not None and value.tzinfo is None:
                raise ValidationError(name, "must be timezone-aware")
        oid = None
        if operation_id is not None:
            oid = self._find(operation_id, company, who, "list_attempts").id
        return self.store.list_company_attempts(
            AttemptQuery(
                company=company,
                companies=companies_for(who, "list_log_entries"),
                task=task,
                outcomes=_outcomes(outcome),
                operation_id=oid,
                started_from=started_from,
                started_to=started_to,
                before_entry_no=before_entry_no,
                limit=limit,
            )
        )

    @acting
    def delete_log_entries(
        self, company: str, *, older_than_days: int, actor: Actor | None = None
    ) -> int:
        """Delete the company's log entries of runs that ended more than ``older_than_days``
        days ago (Business Central: "Delete Entries older than"); returns how many.

        Example::

            service.delete_log_entries("CRONUS", older_than_days=30)
        """
        who = self._who(actor)
        _require_in(who, "delete_log_entries", company)
        if (
            isinstance(older_than_days, bool)
            or not isinstance(older_than_days, int)
            or not 0 <= older_than_days <= 36_500
        ):
            raise ValidationError(
                "older_than_days", "must be a whole number of days from 0 to 36500", older_than_days
            )
        cut = self.clock.now() - timedelta(days=older_than_days)
        audit = self._entry(
            who,
            "delete_log_entries",
            f"company {company}",
            company,
            {"older_than_days": older_than_days},
        )
        return self.store.delete_attempts(company, cut, audit=audit)

    @acting
    def overview(self, company: str, *, actor: Actor | None = None) -> Overview:
        """The company's role centre: cues (ready, in process, failed, my failures,
        stalled; capped at COUNT_CAP), runs finished and failed per hour over the last 24
        hours, and the five longest-running operations.

        Example::

            view = service.overview("CRONUS")
            view.failed, [b.failed for b in view.per_hour]
        """
        who = self._who(actor)
        _require_in(who, "list_operations", company)
        visible = companies_for(who, "list_operations")
        base = OperationQuery(company=company, companies=visible)
        cues = [
            replace(base, statuses=(Status.READY,)),
            replace(base, statuses=(Status.IN_PROCESS,)),
            replace(base, statuses=(Status.ERROR,)),
            replace(base, statuses=(Status.IN_PROCESS,), stalled=True),
        ]
        if who.user is not None:
            cues.append(replace(base, statuses=(Status.ERROR,), user=who.user))
        counts = self.store.count_capped(cues, COUNT_CAP + 1)
        ready, in_process, failed, stalled = counts[:4]
        mine = counts[4] if who.user is not None else 0
        now = self.clock.now()
        since = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
        found = {b: (f, e) for b, f, e in self.store.runs_per_hour(company, since, 24)}
        per_hour = [
            HourBucket(since + timedelta(hours=i), *found.get(i, (0, 0))) for i in range(24)
        ]
        longest = self.store.list_running(company, companies=visible, limit=5)
        return Overview(
            company=company,
            ready=ready,
            in_process=in_process,
            failed=failed,
            my_failures=mine,
            stalled=stalled,
            per_hour=per_hour,
            longest_running=self._flag(longest),
        )

    @acting
    def status_counts(
        self,
        company: str,
        *,
        query: OperationQuery | None = None,
        actor: Actor | None = None,
    ) -> dict[Status, int]:
        """Facet counts: for each status, how many operations match ``query``'s filter with
        its status filter (and paging) replaced by that status. Each count stops at
        COUNT_CAP + 1, which reads "10,000+" (``domain.pages.format_count``).

        Example::

            service.status_counts("CRONUS", query=OperationQuery(task="post_invoices"))
        """
        who = self._who(actor)
        _require_in(who, "count_operations", company)
        base = _narrow(
            replace(
                query or OperationQuery(),
                company=company,
                statuses=(),
                after_entry_no=None,
                before_entry_no=None,
            ),
            companies_for(who, "count_operations"),
        )
        statuses = list(Status)
        counts = self.store.count_capped(
            [replace(base, statuses=(s,)) for s in statuses], COUNT_CAP + 1
        )
        return dict(zip(statuses, counts, strict=True))

    @acting
    def running_for_user(self, company: str, *, actor: Actor | None = None) -> list[Operation]:
        """The actor's own operations in process in the company, the oldest first (the
        pages' background indicator); none for an actor without a user name.

        Example::

            n = len(service.running_for_user("CRONUS", actor=alice))
        """
        who = self._who(actor)
        _require_in(who, "list_operations", company)
        if who.user is None:
            return []
        visible = companies_for(who, "list_operations")
        return self.store.list_running(company, user=who.user, companies=visible, limit=100)

    @acting
    def category_activity(
        self, company: str, *, actor: Actor | None = None
    ) -> dict[str, CategoryActivity]:
        """How many operations of each category are running and waiting (ready) now, by
        category code (none, for a company the actor cannot see)."""
        _check_name("company", company)
        if decide(self._who(actor), "list_categories", company=company) is Verdict.HIDDEN:
            return {}
        return {a.code: a for a in self.store.category_activity(company, COUNT_CAP + 1)}

    @acting
    def session_operations(self, *, actor: Actor | None = None) -> dict[uuid.UUID, list[Operation]]:
        """The operations each live session is running now, by session id (SUPER only,
        as sessions are)."""
        require(self._who(actor), "list_sessions", target="")
        out: dict[uuid.UUID, list[Operation]] = {}
        for op in self.store.list_running(limit=10_000):
            if op.session_id is not None:
                out.setdefault(op.session_id, []).append(op)
        return out

    @acting
    def notifications(
        self,
        company: str,
        *,
        unread_only: bool = False,
        limit: int = 50,
        before_id: int | None = None,
        actor: Actor | None = None,
    ) -> list[Notification]:
        """The actor's own notifications in the company, newest first (page on with
        ``before_id``); none for an actor without a user name.

        Example::

            for n in service.notifications("CRONUS", unread_only=True, actor=alice):
                print(n.kind.caption, n.title)
        """
        who = self._who(actor)
        _require_in(who, "list_notifications", company)
        if isinstance(limit, bool) or not 1 <= limit <= 1000:
            raise ValidationError("limit", "must be between 1 and 1000", limit)
        if who.user is None:
            return []
        return self.store.list_notifications(
            company, who.user, unread_only=unread_only, limit=limit, before_id=before_id
        )

    @acting
    def unread_notifications(self, company: str, *, actor: Actor | None = None) -> int:
        """How many of the actor's notifications in the company are unread."""
        who = self._who(actor)
        _require_in(who, "list_notifications", company)
        if who.user is None:
            return 0
        return self.store.count_unread_notifications(company, who.user)

    @acting
    def mark_notifications_read(
        self,
        company: str,
        ids: Sequence[int] | None = None,
        *,
        actor: Actor | None = None,
    ) -> int:
        """Mark the actor's unread notifications read: those of ``ids``, or all (None).
        Returns how many changed; ids of other users' notifications change nothing.

        Example::

            service.mark_notifications_read("CRONUS", None, actor=alice)   # all
        """
        who = self._who(actor)
        _require_in(who, "mark_notifications_read", company)
        if ids is not None:
            ids = list(ids)
            if len(ids) > 1000 or any(isinstance(i, bool) or not isinstance(i, int) for i in ids):
                raise ValidationError("ids", "must be at most 1000 notification ids", ids[:5])
        if who.user is None:
            return 0
        return self.store.mark_notifications_read(company, who.user, ids, self.clock.now())

    # -- companies, categories and queues ----------------------------------------------------
    @acting
    def add_company(
        self,
        name: str,
        *,
        display_name: str | None = None,
        time_zone: str | None = None,
        max_in_process: int | EllipsisType | None = ...,
        actor: Actor | None = None,
    ) -> Company:
        """Create a company (or change it; a disabled company becomes active again). What
        is not given keeps its value (a new company: UTC, no cap).

        ``max_in_process`` caps how many of its operations run at once (None: no cap).

        Example::

            service.add_company("CRONUS-UK", time_zone="Europe/London", max_in_process=20)
        """
        who = self._who(actor)
        require(who, "add_company", target=f"company {name}")
        _check_name("company", name)
        current = self.store.get_company(name)
        if time_zone is None:
            time_zone = current.time_zone if current else "UTC"
        if display_name is None and current is not None:
            display_name = current.display_name
        if isinstance(max_in_process, EllipsisType):
            max_in_process = current.max_in_process if current else None
        try:
            ZoneInfo(time_zone)
        except (ValueError, KeyError, OSError):
            raise ValidationError(
                "time_zone", "must be an IANA time zone such as Europe/Amsterdam", time_zone
            ) from None
        if display_name is not None and len(display_name) > 250:
            raise ValidationError("display_name", "must be at most 250 characters")
        if max_in_process is not None and (
            isinstance(max_in_process, bool) or not 1 <= max_in_process <= 100_000
        ):
            raise ValidationError(
                "max_in_process", "must be between 1 and 100000 (or none)", max_in_process
            )
        company = Company(name, display_name or name, time_zone, True, max_in_process)
        audit = self._entry(who, "add_company", f"company {name}", name, company.to_json())
        saved = self.store.upsert_company(company, audit=audit)
        self._forget_company(name)
        return saved

    @acting
    def disable_company(self, name: str, *, actor: Actor | None = None) -> Company:
        """Disable a company: it takes no new operations and its ready ones are not claimed
        until it is added again."""
        who = self._who(actor)
        require(who, "disable_company", target=f"company {name}")
        _check_name("company", name)
        found = self.store.get_company(name)
        if found is None:
            raise NotFound("company", name)
        audit = self._entry(who, "disable_company", f"company {name}", name)
        saved = self.store.upsert_company(dataclasses.replace(found, active=False), audit=audit)
        self._forget_company(name)
        return saved

    def _forget_company(self, name: str) -> None:
        # In place: services bound to other actors (as_actor) share this cache.
        with self._known_lock:
            for key in [k for k in self._known if k[0] == name]:
                del self._known[key]

    @acting
    def list_companies(self, *, actor: Actor | None = None) -> list[Company]:
        """The companies the actor holds a permission set in (SUPER: all)."""
        return self.store.list_companies(companies_for(self._who(actor), "list_companies"))

    # -- categories and queues --------------------------------------------------------------
    @acting
    def set_category(
        self,
        company: str,
        code: str,
        *,
        max_concurrent: int | None = None,
        description: str | None = None,
        paused: bool | None = None,
        actor: Actor | None = None,
    ) -> Category:
        """Create or update a category (Business Central: job queue category); pausing and
        resuming a category is this too (``paused``). What is not given keeps its value (a
        new category: one at a time, no description, running)."""
        who = self._who(actor)
        _require_in(who, "set_category", company)
        _check_name("category", code)
        current = self.store.get_category(company, code)
        if max_concurrent is None:
            max_concurrent = current.max_concurrent if current else 1
        if description is None:
            description = current.description if current else ""
        if paused is None:
            paused = current.paused if current else False
        if isinstance(max_concurrent, bool) or not 1 <= max_concurrent <= 1000:
            raise ValidationError("max_concurrent", "must be between 1 and 1000", max_concurrent)
        if len(description) > 250:
            raise ValidationError("description", "must be at most 250 characters")
        self._check_scope(company, None)
        category = Category(company, code, description, max_concurrent, paused)
        details = {"max_concurrent": max_concurrent, "paused": paused}
        audit = self._entry(who, "set_category", f"category {code}", company, details)
        return self.store.upsert_category(category, audit=audit)

    @acting
    def list_categories(
        self, company: str = DEFAULT_COMPANY, *, actor: Actor | None = None
    ) -> list[Category]:
        """A company's categories (none, for a company the actor cannot see)."""
        _check_name("company", company)
        if decide(self._who(actor), "list_categories", company=company) is Verdict.HIDDEN:
            return []  # as for a company that does not exist
        return self.store.list_categories(company)

    @acting
    def pause_queue(self, name: str, *, actor: Actor | None = None) -> None:
        """Stop claims from a queue, in every company (so SUPER only)."""
        self._queue(name, True, self._who(actor))

    @acting
    def resume_queue(self, name: str, *, actor: Actor | None = None) -> None:
        self._queue(name, False, self._who(actor))

    def _queue(self, name: str, paused: bool, actor: Actor) -> None:
        require(actor, "pause_queue", target=f"queue {name}")
        _check_name("queue", name)
        action = "pause_queue" if paused else "resume_queue"
        audit = self._entry(actor, action, f"queue {name}", None)
        self.store.set_queue_paused(name, paused, self.clock.now(), audit=audit)

    @acting
    def paused_queues(self, *, actor: Actor | None = None) -> frozenset[str]:
        require(self._who(actor), "list_paused_queues", target="")
        return self.store.paused_queues()

    # -- sessions and maintenance ------------------------------------------------------------
    @acting
    def list_sessions(
        self, *, active_only: bool = False, actor: Actor | None = None
    ) -> list[Session]:
        """Worker sessions, newest first (they serve many companies: SUPER only)."""
        require(self._who(actor), "list_sessions", target="")
        return self.store.list_sessions(active_only=active_only)

    @acting
    def fleet_metrics(self, *, actor: Actor | None = None) -> str:
        """The fleet's figures in Prometheus's text format (SUPER: they span companies),
        read at most once per ``METRICS_FRESH_FOR`` seconds however often it is scraped."""
        require(self._who(actor), "list_sessions", target="")
        now = time.monotonic()
        with self._known_lock:
            cached = self._metrics.get("fleet")
        if cached is not None and now - cached[0] < METRICS_FRESH_FOR:
            return cached[1]
        text = render(self.store.fleet_metrics(self.clock.now()))
        with self._known_lock:
            self._metrics["fleet"] = (now, text)
        return text

    @acting
    def drain_session(self, session_id: uuid.UUID | str, *, actor: Actor | None = None) -> Session:
        """Ask a live worker session to drain: it stops claiming at its next heartbeat, lets
        running work finish within its grace period and ends (SUPER only)."""
        who = self._who(actor)
        sid = _uuid(session_id) if isinstance(session_id, str) else session_id
        require(who, "drain_session", target=f"session {sid}")
        audit = self._entry(who, "drain_session", f"session {sid}", None, {})
        drained = self.store.request_drain(
            sid, self.clock.now(), f"drain requested by {who.name}", audit=audit
        )
        if drained is None:
            raise NotFound("session", f"{sid} (live)")
        return drained

    @acting
    def session_events(
        self, session_id: uuid.UUID | None = None, *, actor: Actor | None = None
    ) -> list[SessionEvent]:
        require(self._who(actor), "list_sessions", target="")
        return self.store.list_session_events(session_id)

    @acting
    def check_worker(
        self, companies: Sequence[str] | None = None, *, actor: Actor | None = None
    ) -> tuple[str, ...] | None:
        """May the actor run a worker session, serving ``companies`` (None: all)? Returns
        the companies, checked to exist, sorted."""
        require(self._who(actor), "run_worker", target="")
        if companies is None:
            return None
        names = sorted(set(companies))
        if not names:
            raise ValidationError("companies", "must name at least one company (or none: all)")
        for name in names:
            _check_name("company", name)
            if self.store.get_company(name) is None:
                raise _no_company(name)
        return tuple(names)

    @acting
    def migrate(self, *, actor: Actor | None = None) -> list[str]:
        """Apply pending schema migrations."""
        require(self._who(actor), "maintain_schema", target="")
        return self.store.migrate()

    @acting
    def migration_status(self, *, actor: Actor | None = None) -> list[MigrationState]:
        require(self._who(actor), "maintain_schema", target="")
        return self.store.migration_status()

    @acting
    def migration_sql(self, *, actor: Actor | None = None) -> str:
        require(self._who(actor), "maintain_schema", target="")
        return self.store.migration_sql()


def _require_in(actor: Actor, action: str, company: str) -> None:
    """A company-wide action: refused, or (company unseen) the error of a missing company."""
    _check_name("company", company)
    require(
        actor,
        action,
        target=f"company {company}",
        company=company,
        hidden=lambda: _no_company(company),
    )


def _no_company(company: str) -> ValidationError:
    # The same words whether the company does not exist or the actor cannot see it.
    return ValidationError("company", "must be an existing company", company)


def _target(op: Operation) -> str:
    return f"operation {op.entry_no}"


def _narrow(query: OperationQuery, visible: frozenset[str] | None) -> OperationQuery:
    if visible is None:
        return query
    wanted = visible if query.companies is None else visible & query.companies
    return dataclasses.replace(query, companies=wanted)


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationError(
            "id", "must be an operation id (a UUID) or an entry number", value
        ) from None


_EDITABLE = (
    "description",
    "priority",
    "category",
    "earliest_start",
    "recurrence",
    "max_attempts",
    "timeout",
)
"""The fields ``update_operation`` edits, as the audit log names them."""


def _outcomes(value: Outcome | str | Sequence[Outcome | str] | None) -> tuple[Outcome, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    out = []
    for item in items:
        try:
            out.append(Outcome(item))
        except ValueError:
            raise ValidationError(
                "outcome", f"must be one of {', '.join(o.value for o in Outcome)}", item
            ) from None
    return tuple(out)


def _recurrence(value: Recurrence | str | Mapping[str, Any] | None) -> Recurrence | None:
    if value is None or isinstance(value, Recurrence):
        return value
    if isinstance(value, str):
        return Recurrence.parse(value)
    return Recurrence.from_json(value)
