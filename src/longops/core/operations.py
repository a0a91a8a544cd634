"""OperationService: enqueue, read and act on operations, for one actor.

Every method asks the permission table first (``core.access``). Every action names the
statuses it may start from (``domain.status.ACTIONS``) and the store applies it only to a
row still in one of them, so two people acting at once cannot push an operation through a
transition the table does not allow. Operator actions are written to the audit log in the
same transaction. The reads are in ``core.reads``; companies, categories and queues in
``core.companies``; sessions in ``core.sessions``; the pages' read models in
``core.read_models``.

Example::

    service = OperationService(store, registry, SystemClock(), actor=Actor.local())
    op = service.enqueue(EnqueueRequest(task="post_invoices", args=("2026-01",)))
    service.hold(op.id)
    alice = service.as_actor(Actor.for_user("alice", [("default", PermissionSet.USER)]))
    alice.set_ready(op.id)        # refused: not alice's operation
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from types import EllipsisType
from typing import Any

from longops import telemetry
from longops.core.access import acting, no_company, require, require_in
from longops.core.companies import CompanyZones
from longops.core.enqueue import EnqueueRequest, OperationBuilder, parse_recurrence
from longops.core.reads import OperationReads, OperationRef, operation_target
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
    CancelMode,
    NewOperation,
    Operation,
    Priority,
)
from longops.domain.recurrence import Recurrence, initial_run_time
from longops.domain.security import PERMISSIONS, Action, Actor, satisfies
from longops.domain.status import ACTIONS, Status, StatusReason, allowed_from, target_of
from longops.store.base import ActionParams, DeletedCopy, OperationEdit, Store
from longops.worker.registry import TaskRegistry

REMOVE_FAILED_AFTER = timedelta(seconds=30)  # Business Central's filter is 30,000 ms


class OperationService(OperationReads):
    """Enqueue, read and act on operations; see the module docstring."""

    def __init__(
        self,
        store: Store,
        registry: TaskRegistry,
        clock: Clock,
        *,
        actor: Actor,
        limits: PayloadLimits | None = None,
        zones: CompanyZones | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.actor = actor
        self.limits = limits or PayloadLimits()
        self.zones = zones or CompanyZones(store)
        self.builder = OperationBuilder(registry, clock, self.zones, self.limits)
        # A dict, not an attribute: actor-bound copies (as_actor) share it.
        self._durations: dict[str, tuple[float, timedelta | None]] = {}
        self._profiles: dict[str, tuple[float, tuple[float, ...] | None]] = {}

    # -- enqueue ---------------------------------------------------------------------------
    @acting
    def build(self, request: EnqueueRequest) -> NewOperation:
        """Validate a request fully, permissions included (nothing is written)."""
        return self.builder.build(request, self.actor)

    def enqueue(self, request: EnqueueRequest, *, connection: Any = None) -> Operation:
        """Create one operation; committed before this returns (or with ``connection``'s
        transaction). With a dedup key held by an active operation, returns that one."""
        return self.enqueue_checked(request, connection=connection)[0]

    @acting
    def enqueue_checked(
        self, request: EnqueueRequest, *, connection: Any = None
    ) -> tuple[Operation, bool]:
        """:meth:`enqueue`, also saying whether the operation is new (False when its dedup
        key matched an active operation, which is returned instead)."""
        built = self.builder.build(request, self.actor)
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
        if op.user is not None and op.user != self.actor.user:
            # Enqueued on behalf of someone else: say whether that user can still act.
            [op] = self._flag([op])
        return op, op.id == built.id

    @acting
    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[uuid.UUID]:
        """Create many operations in one transaction: all of them, or none when any request
        is refused (the error names the first bad field)."""
        who = self.actor
        if any(r.dedup_key is not None for r in requests):
            # Dedup keys need the checked, row-by-row insert.
            with telemetry.sending() as sent:
                built = [sent.stamp(self.builder.build(r, who)) for r in requests]
                return [op.id for op in self.store.insert_operations(built)]
        ids: list[uuid.UUID] = []

        def validated() -> Iterator[NewOperation]:
            # Rows are built while the bulk insert streams them, so validation and the
            # database's work overlap; a bad request raises inside the open transaction,
            # which then rolls back and nothing is written.
            for built in self.builder.build_many(requests, who):
                op = sent.stamp(built)
                ids.append(op.id)
                yield op

        with telemetry.sending() as sent:
            self.store.insert_operations_bulk(validated())
        return ids

    # -- actions (Business Central's page actions) ------------------------------------------
    def set_ready(
        self,
        operation_id: OperationRef,
        *,
        user: str | None = None,
        company: str | None = None,
    ) -> Operation:
        """Set Status to Ready: recompute the start, reset attempts. It then runs on behalf
        of the actor (Business Central: the user who last set it ready); SUPER may name
        another ``user``."""
        return self._ready(Action.SET_READY, operation_id, user=user, company=company)

    def restart(
        self,
        operation_id: OperationRef,
        *,
        user: str | None = None,
        company: str | None = None,
    ) -> Operation:
        """Restart a finished, failed or cancelled operation from scratch."""
        return self._ready(Action.RESTART, operation_id, user=user, company=company)

    def run_now(
        self,
        operation_id: OperationRef,
        *,
        user: str | None = None,
        company: str | None = None,
    ) -> Operation:
        """Make it due now, ignoring its schedule and run window."""
        return self._ready(Action.RUN_NOW, operation_id, user=user, company=company, now=True)

    @acting
    def hold(self, operation_id: OperationRef, *, company: str | None = None) -> Operation:
        """Set On Hold. Refused while running: cancel a running operation instead."""
        return self._act(Action.HOLD, operation_id, company=company)

    @acting
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
        task's ``cancel_grace`` is stopped by force; ``force=True`` (admins) skips the
        grace. ``by`` (who asks) is the actor; SUPER may name someone else.

        Example::

            service.cancel(op.id, reason="wrong month")
        """
        who = self.actor
        op = self._find(operation_id, company, who, Action.GET_OPERATION)
        require(who, Action.CANCEL, target=operation_target(op), company=op.company, owner=op.user)
        if force:
            require(
                who,
                Action.FORCE_CANCEL,
                target=operation_target(op),
                company=op.company,
                owner=op.user,
            )
        if reason is not None and len(reason) > 500:
            raise ValidationError("reason", "must be at most 500 characters")
        by = self.builder.runs_as(who, by)
        if op.status is Status.IN_PROCESS:
            audit = self._audit_entry(
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
            op = self._find(op.id, company, who, Action.GET_OPERATION)
            if op.status is Status.IN_PROCESS:
                return op  # a cancel request (forced, if that was asked) was already pending
        try:
            return self._act(
                Action.CANCEL,
                op.id,
                company=company,
                reason=StatusReason.CANCELLED,
                cancel=(by, reason),
            )
        except InvalidTransition:
            # Claimed between our read and our write: it is running now, so ask it.
            current = self._find(op.id, company, who, Action.GET_OPERATION)
            if current.status is not Status.IN_PROCESS:
                raise
            requested = self.store.request_cancel(
                op.id, op.company, self.clock.now(), by, reason, force=force
            )
            return requested or self._find(op.id, company, who, Action.GET_OPERATION)

    @acting
    def delete(
        self,
        operation_id: OperationRef,
        *,
        company: str | None = None,
        undo_for: timedelta | None = None,
    ) -> None:
        """Delete an operation and forget it. Refused while it is in process.

        With ``undo_for`` a copy of it is kept that long, and :meth:`undelete` by the same
        user puts it back as it was (the pages' Undo); its timeline stays as long."""
        who = self.actor
        op = self._find(operation_id, company, who, Action.GET_OPERATION)
        require(who, Action.DELETE, target=operation_target(op), company=op.company, owner=op.user)
        if op.status is Status.IN_PROCESS:
            raise InvalidTransition("delete", op.status.value, op.id)
        audit = self._audit_entry(
            who, "delete", str(op.id), op.company, {"entry_no": op.entry_no, "task": op.task}
        )
        keep = None
        if undo_for is not None and undo_for > timedelta(0):
            keep = DeletedCopy(at=audit.at, until=audit.at + undo_for, by=who.user)
        if not self.store.delete_operation(op.id, op.company, audit=audit, keep=keep):
            current = self._find(op.id, company, who, Action.GET_OPERATION)
            raise InvalidTransition("delete", current.status.value, op.id)

    @acting
    def undelete(self, operation_id: uuid.UUID, *, company: str) -> Operation:
        """Put back an operation this user deleted with ``undo_for``, while its time lasts:
        as it was (same id, entry number, status, arguments, result, timeline). NotFound
        when there is nothing to put back (not deleted so, its time is up, deleted by
        another user, put back already); Conflict when its dedup key is taken meanwhile
        by another operation."""
        who = self.actor
        # Only its deleter may put it back (the store matches deleted_by): who deleted it
        # was allowed to; here as for an operation of their own, so that a user who may
        # delete only their own operations may undo their deletes.
        require(
            who,
            Action.DELETE,
            target=f"operation {operation_id}",
            company=company,
            owner=who.user,
            hidden=lambda: no_company(company),
        )
        audit = self._audit_entry(who, "undelete", str(operation_id), company)
        if not self.store.restore_operation(operation_id, company, audit.at, who.user, audit=audit):
            raise NotFound("deleted operation that can be put back", operation_id)
        return self._find(operation_id, company, who, Action.GET_OPERATION)

    @acting
    def remove_failed(self, company: str = DEFAULT_COMPANY) -> int:
        """Delete non-recurring operations in error whose last run ended at least 30 s ago."""
        who = self.actor
        require_in(who, Action.REMOVE_FAILED, company)
        audit = self._audit_entry(who, "remove_failed", f"company {company}", company)
        return self.store.delete_failed(
            company, self.clock.now() - REMOVE_FAILED_AFTER, audit=audit
        )

    @acting
    def _ready(
        self,
        action: Action,
        operation_id: OperationRef,
        *,
        user: str | None,
        company: str | None,
        now: bool = False,
    ) -> Operation:
        who = self.actor
        op = self._find(operation_id, company, who, Action.GET_OPERATION)
        require(who, action, target=operation_target(op), company=op.company, owner=op.user)
        runs_as = self.builder.runs_as(who, user)
        if not satisfies(who, op.company, op.required_permission):
            assert op.required_permission is not None
            raise PermissionDenied(
                who.name,
                PERMISSIONS[action].what,
                operation_target(op),
                f"its task requires {op.required_permission.value}",
            )
        at = self.clock.now()
        if now:
            start = at
        elif op.recurrence is not None:
            start = initial_run_time(
                op.recurrence, at, op.earliest_start_at, self.zones.zone_of(op)
            )
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
            reason=StatusReason.RUN_NOW if now else None,
            current=op,
            clear_checkpoint=action == "restart",
        )

    def _act(
        self,
        action: Action,
        operation_id: OperationRef,
        *,
        company: str | None,
        start: datetime | None = None,
        reset: bool = False,
        user: str | None = None,
        reason: StatusReason | None = None,
        current: Operation | None = None,
        cancel: tuple[str | None, str | None] | None = None,
        clear_checkpoint: bool = False,
    ) -> Operation:
        assert action in ACTIONS
        actor = self.actor
        op = current or self._find(operation_id, company, actor, Action.GET_OPERATION)
        require(actor, action, target=operation_target(op), company=op.company, owner=op.user)
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
            audit=self._audit_entry(actor, action, str(oid), op.company, details),
        )
        if updated is None:
            # Someone else moved it first; report where it is now.
            now_op = self._find(oid, company, actor, Action.GET_OPERATION)
            raise InvalidTransition(action.replace("_", " "), now_op.status.value, oid)
        telemetry.acted(action, updated)
        [flagged] = self._flag([updated])
        return flagged

    # -- editing and log entries ----------------------------------------------------------
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
        who = self.actor
        op = self._find(operation_id, company, who, Action.GET_OPERATION)
        require(
            who,
            Action.UPDATE_OPERATION,
            target=operation_target(op),
            company=op.company,
            owner=op.user,
        )
        if op.status is not Status.ON_HOLD:
            raise ValidationError("status", "must be on hold to edit", op.status.value)
        now = self.clock.now()
        new_category = op.category if isinstance(category, EllipsisType) else category
        if new_category is not None and new_category != op.category:
            self.zones.zone_to_enqueue(op.company, new_category)
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
                op.recurrence
                if isinstance(recurrence, EllipsisType)
                else parse_recurrence(recurrence)
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
        audit = self._audit_entry(
            who,
            "update_operation",
            str(op.id),
            op.company,
            {"entry_no": op.entry_no, "changed": changed},
        )
        saved = self.store.update_operation(op.id, op.company, edit, now, audit=audit)
        if saved is None:
            # Set ready (or cancelled) between our read and our write.
            current = self._find(op.id, company, who, Action.GET_OPERATION)
            raise ValidationError("status", "must be on hold to edit", current.status.value)
        [flagged] = self._flag([saved])
        return flagged

    @acting
    def delete_log_entries(self, company: str, *, older_than_days: int) -> int:
        """Delete the company's log entries of runs that ended more than ``older_than_days``
        days ago (Business Central: "Delete Entries older than"); returns how many.

        Example::

            service.delete_log_entries("CRONUS", older_than_days=30)
        """
        who = self.actor
        require_in(who, Action.DELETE_LOG_ENTRIES, company)
        if (
            isinstance(older_than_days, bool)
            or not isinstance(older_than_days, int)
            or not 0 <= older_than_days <= 36_500
        ):
            raise ValidationError(
                "older_than_days", "must be a whole number of days from 0 to 36500", older_than_days
            )
        cut = self.clock.now() - timedelta(days=older_than_days)
        audit = self._audit_entry(
            who,
            "delete_log_entries",
            f"company {company}",
            company,
            {"older_than_days": older_than_days},
        )
        return self.store.delete_attempts(company, cut, audit=audit)


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
