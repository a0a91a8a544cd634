"""Reading operations: one by id or entry number, lists and counts, attempts, the
timeline, progress over time, and what is derived at read time (wait reasons, ETAs).

Every read passes the actor's companies down to the store, so another company's rows are
filtered out in SQL, and an operation of a company the actor cannot see is reported exactly
as a missing one. ``OperationService`` (``core.operations``) adds enqueue and the actions.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from longops.core.access import ActorBound, acting, no_company, require
from longops.core.companies import CompanyZones
from longops.domain.errors import NotFound, ValidationError
from longops.domain.filters import OperationFilter
from longops.domain.operation import Attempt, EventType, Operation, OperationEvent
from longops.domain.progress import (
    Progress,
    history_estimate,
    profile_eta,
    step_durations,
    step_profile,
)
from longops.domain.security import Action, Actor, companies_for
from longops.domain.status import Status
from longops.domain.waiting import WaitContext, WaitReason, wait_reason
from longops.store.base import Store

DURATIONS_FRESH_FOR = 60.0
"""Seconds a task's recent run durations (the ETA before any progress) are reused."""

PROFILE_RUNS = 3
"""Finished runs of a task whose steps' durations make its step profile (the ETA)."""

OperationRef = uuid.UUID | str | int
"""An operation's id, or its entry number."""


class OperationReads(ActorBound):
    """The reads of ``OperationService``, for the bound actor."""

    store: Store
    zones: CompanyZones
    _durations: dict[str, tuple[float, timedelta | None]]
    _profiles: dict[str, tuple[float, tuple[float, ...] | None]]

    # -- reads -----------------------------------------------------------------------------
    @acting
    def get(self, operation_id: OperationRef, company: str | None = None) -> Operation:
        """Read an operation by its id, or by its entry number (as ``ops list`` shows it)."""
        [op] = self._flag([self._find(operation_id, company, self.actor, Action.GET_OPERATION)])
        return op

    def _find(
        self, operation_id: OperationRef, company: str | None, actor: Actor, action: Action
    ) -> Operation:
        return find_operation(self.store, actor, operation_id, company, action)

    def _flag(self, ops: Sequence[Operation]) -> list[Operation]:
        return flag_inactive(self.store, ops)

    @acting
    def list_operations(self, query: OperationFilter) -> list[Operation]:
        """Operations in entry order, of the companies the actor may read only."""
        if not 1 <= query.limit <= 1000:
            raise ValidationError("limit", "must be between 1 and 1000", query.limit)
        visible = companies_for(self.actor, Action.LIST_OPERATIONS)
        return self._flag(self.store.list_operations(narrow(query, visible)))

    @acting
    def count_operations(self, company: str | None = None) -> dict[Status, int]:
        """Operations per status, of the companies the actor may read only."""
        visible = companies_for(self.actor, Action.COUNT_OPERATIONS)
        return self.store.count_operations(company, companies=visible)

    @acting
    def attempts(self, operation_id: OperationRef, company: str | None = None) -> list[Attempt]:
        """An operation's attempts (log entries), first run first."""
        who = self.actor
        op = self._find(operation_id, company, who, Action.LIST_ATTEMPTS)
        return self.store.list_attempts(op.id, companies=companies_for(who, Action.LIST_ATTEMPTS))

    @acting
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
        op = self._find(operation_id, company, self.actor, Action.LIST_EVENTS)
        return self.store.list_events(op.id, after_id=after_id, types=types, limit=limit)

    @acting
    def company_events(
        self,
        company: str,
        *,
        after_id: int = 0,
        limit: int = 1000,
    ) -> list[OperationEvent]:
        """A company's timeline after an event id, oldest first (a list stream resuming)."""
        if not 1 <= limit <= 10_000:
            raise ValidationError("limit", "must be between 1 and 10000", limit)
        who = self.actor
        visible = companies_for(who, Action.LIST_OPERATIONS)
        if visible is not None and company not in visible:
            raise no_company(company)
        return self.store.company_events_since(company, after_id, limit)

    @acting
    def progress_history(
        self,
        operation_id: OperationRef,
        *,
        points: int = 120,
        company: str | None = None,
    ) -> list[dict[str, Any]]:
        """The latest run's progress over time, thinned to at most ``points`` readings
        (enough for a sparkline): ``[{"at", "percent", "completed"}, ...]``."""
        if not 2 <= points <= 10_000:
            raise ValidationError("points", "must be between 2 and 10000", points)
        op = self._find(operation_id, company, self.actor, Action.LIST_EVENTS)
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
    def _visible(self, ops: Sequence[Operation]) -> list[Operation]:
        """The operations of ``ops`` in companies the actor may list (derived reads say
        nothing about the others)."""
        visible = companies_for(self.actor, Action.LIST_OPERATIONS)
        return [op for op in ops if visible is None or op.company in visible]

    @acting
    def wait_context(self) -> WaitContext:
        """What wait reasons are derived from, read now: one consistent read of the
        queues, categories, worker sessions, companies and users, and maintenance mode
        (which holds back every due operation, domain/maintenance.py), in one store read.
        Read under the actor's scope: hand it back to ``wait_reasons`` of the same scope
        only."""
        return self.store.wait_context(self.clock.now())

    @acting
    def wait_reasons(
        self, ops: Sequence[Operation], context: WaitContext | None = None
    ) -> dict[uuid.UUID, WaitReason]:
        """Why each ready operation waits, derived now from one consistent read (or from
        ``context``, one ``wait_context`` read lately, taken as of now)."""
        ready = [op for op in self._visible(ops) if op.status is Status.READY]
        if not ready:
            return {}
        ctx = self.wait_context() if context is None else replace(context, now=self.clock.now())
        out: dict[uuid.UUID, WaitReason] = {}
        for op in ready:
            reason = wait_reason(op, ctx, self.zones.zone_of(op))
            if reason is not None:
                out[op.id] = reason
        return out

    @acting
    def estimated(self, ops: Sequence[Operation]) -> dict[uuid.UUID, Progress | None]:
        """Each operation's progress; a running one whose rate gives no ETA yet gets one
        from the median of its task's recent successful run durations."""
        return {op.id: self._estimate(op) for op in self._visible(ops)}

    def _estimate(self, op: Operation) -> Progress | None:
        progress = op.progress
        if op.status is not Status.IN_PROCESS or op.started_at is None:
            return progress
        if progress is not None and progress.step_count:
            # Steps: each step's share of the run learned from the task's past runs.
            profile = self._step_profile(op.task)
            learned = None if profile is None else profile_eta(progress, op.started_at, profile)
            if learned is not None:
                return learned
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

    def _step_profile(self, task: str) -> tuple[float, ...] | None:
        """Each step's seconds in the task's last few finished runs (median per step),
        from their progress timelines; cached like the durations."""
        now = time.monotonic()
        cached = self._profiles.get(task)
        if cached is not None and now - cached[0] < DURATIONS_FRESH_FOR:
            return cached[1]
        past = self.store.list_operations(
            OperationFilter(
                task=task, statuses=(Status.FINISHED,), descending=True, limit=PROFILE_RUNS
            )
        )
        runs = []
        for op in past:
            if op.ended_at is None or not (op.progress and op.progress.step_count):
                continue
            newest = self.store.list_events(
                op.id, types=(EventType.PROGRESS,), newest_first=True, limit=5000
            )
            last_run = [e for e in newest if e.run_no == newest[0].run_no][::-1] if newest else []
            steps = step_durations([_step_of(e) for e in last_run], op.ended_at)
            if steps is not None:
                runs.append(steps)
        profile = step_profile(runs)
        self._profiles[task] = (now, profile)
        return profile

    @acting
    def describe(self, ops: Sequence[Operation]) -> list[dict[str, Any]]:
        """Operations as JSON with what is derived at read time: the wait reason of each
        ready one and the ETA estimate of each running one."""
        shown = self._visible(ops)
        reasons = self.wait_reasons(shown)
        out = []
        for op in shown:
            data = op.to_json()
            progress = self._estimate(op)
            data["progress"] = None if progress is None else progress.to_json()
            reason = reasons.get(op.id)
            data["wait_reason"] = None if reason is None else reason.to_json()
            out.append(data)
        return out


def find_operation(
    store: Store, actor: Actor, operation_id: OperationRef, company: str | None, action: Action
) -> Operation:
    """The operation if ``actor`` may see it; else NotFound, exactly as if it did not exist."""
    visible = companies_for(actor, action)
    found: Operation | None
    if isinstance(operation_id, int) or (
        isinstance(operation_id, str) and operation_id.isascii() and operation_id.isdigit()
    ):
        entry_no = int(operation_id)
        found = store.get_operation_by_entry_no(entry_no, company, companies=visible)
        missing: NotFound = NotFound("operation with entry number", entry_no)
    else:
        oid = operation_uuid(operation_id)
        found = store.get_operation(oid, company, companies=visible)
        missing = NotFound("operation", oid)
    if found is None:
        raise missing
    # The store already filtered by company; the table decides the rest (and would hide
    # the row even if a filter were forgotten).
    require(
        actor,
        action,
        target=operation_target(found),
        company=found.company,
        owner=found.user,
        hidden=lambda: missing,
    )
    return found


def flag_inactive(store: Store, ops: Sequence[Operation]) -> list[Operation]:
    """Mark operations whose user no longer exists or is disabled (one query)."""
    names = {op.user for op in ops if op.user is not None}
    if not names:
        return list(ops)
    active = store.active_users(names)
    return [
        dataclasses.replace(op, user_inactive=True)
        if op.user is not None and op.user not in active
        else op
        for op in ops
    ]


def operation_target(op: Operation) -> str:
    """How the audit log and refusals name an operation."""
    return f"operation {op.entry_no}"


def narrow(query: OperationFilter, visible: frozenset[str] | None) -> OperationFilter:
    """The filter limited to the companies the actor may read (None: all)."""
    if visible is None:
        return query
    wanted = visible if query.companies is None else visible & query.companies
    return dataclasses.replace(query, companies=wanted)


def operation_uuid(value: uuid.UUID | str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationError(
            "id", "must be an operation id (a UUID) or an entry number", value
        ) from None


def _step_of(event: OperationEvent) -> tuple[datetime, int | None, int | None]:
    """A progress event's time and step (index, count), None where it had no step."""
    step = event.data.get("step")
    if not isinstance(step, dict):
        return event.at, None, None
    return event.at, step.get("index"), step.get("of")
