"""Enqueue requests, and how one becomes a new operation: the task's defaults filled in,
every field checked, the permissions asked, the payload measured (nothing is written).

Example::

    builder = OperationBuilder(registry, clock, zones, PayloadLimits())
    new = builder.build(EnqueueRequest(task="post_invoices", args=("2026-01",)), actor)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from longops.core.access import require, require_in
from longops.core.companies import CompanyZones
from longops.domain.clock import Clock
from longops.domain.errors import PermissionDenied, ValidationError
from longops.domain.ids import new_id
from longops.domain.limits import PayloadLimits
from longops.domain.operation import (
    DEFAULT_COMPANY,
    NewOperation,
    Priority,
    _check_name,
    encode_args,
)
from longops.domain.recurrence import Recurrence, initial_run_time
from longops.domain.retry import RetryPolicy
from longops.domain.security import Action, Actor, satisfies
from longops.worker.registry import TaskDef, TaskRegistry


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


class OperationBuilder:
    """Turns requests into new operations for an actor; shared by the services of a store."""

    def __init__(
        self, registry: TaskRegistry, clock: Clock, zones: CompanyZones, limits: PayloadLimits
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.zones = zones
        self.limits = limits

    def build(self, request: EnqueueRequest, who: Actor) -> NewOperation:
        """The operation ``who`` asks for, checked; raises ValidationError naming the
        field, or PermissionDenied (called once per row by enqueue_many)."""
        task = self.registry.resolve(request.task)
        task.check_arguments(request.args, request.kwargs)
        category = request.category if request.category is not None else task.category
        require_in(who, Action.ENQUEUE, request.company)
        tz = self.zones.zone_to_enqueue(request.company, category)
        user = self.runs_as(who, request.user)
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
        recurrence = parse_recurrence(request.recurrence)
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

    def build_many(self, requests: Iterable[EnqueueRequest], who: Actor) -> Iterator[NewOperation]:
        """:meth:`build` for each request, in order, validated once per distinct request
        apart from its arguments (a bulk enqueue is mostly one task, company and category
        with different arguments). A request like one already built gets that one's
        checked values; only what depends on its own arguments is checked again (their fit
        to the task's signature and types, JSON, size), in the order :meth:`build` checks
        them, so the first bad request raises what :meth:`build` would."""
        templates: dict[tuple[Any, ...], tuple[NewOperation, TaskDef]] = {}
        for request in requests:
            key = _template_key(request)
            hit = None if key is None else templates.get(key)
            if hit is None:
                built = self.build(request, who)
                if key is not None:
                    templates[key] = (built, self.registry.resolve(request.task))
                yield built
            else:
                yield self._like(hit[0], hit[1], request)

    def _like(self, template: NewOperation, task: TaskDef, request: EnqueueRequest) -> NewOperation:
        """``request`` built from ``template``, the operation of a request equal to it in all
        but its arguments (and with no value that depends on the time: see _template_key)."""
        task.check_arguments(request.args, request.kwargs)
        args_json = encode_args(request.args, request.kwargs)
        PayloadLimits.check("args", args_json, self.limits.arguments, "LONGOPS_MAX_ARGUMENT_BYTES")
        now = self.clock.now()
        return NewOperation(
            id=new_id(now),
            company=template.company,
            task=template.task,
            args_json=args_json,
            description=template.description,
            queue=template.queue,
            category=template.category,
            priority=template.priority,
            status=template.status,
            earliest_start_at=now,
            expires_at=None,
            max_attempts=template.max_attempts,
            rerun_delay=template.rerun_delay,
            retry_policy=template.retry_policy,
            timeout=template.timeout,
            recurrence=None,
            user=template.user,
            created_at=now,
            dedup_key=None,
            labels=template.labels,
            stall_after=template.stall_after,
            required_permission=template.required_permission,
        )

    def runs_as(self, actor: Actor, requested: str | None) -> str | None:
        """Who an operation will run on behalf of: the actor, unless SUPER names another."""
        if requested is None or requested == actor.user:
            return actor.user if requested is None else requested
        _check_name("user", requested)
        require(actor, Action.ACT_ON_BEHALF, target=f"user {requested}")
        return requested


def _template_key(request: EnqueueRequest) -> tuple[Any, ...] | None:
    """What makes two requests build the same operation but for their arguments, id and
    creation time; None for a request built on its own: one whose values depend on the
    time it is built (a start, a delay, an expiry or a recurrence), is unique (a dedup key,
    a client's Operation-Id) or carries a mapping (labels, a retry policy as JSON)."""
    if (
        request.earliest_start_at is not None
        or request.delay is not None
        or request.expires_at is not None
        or request.recurrence is not None
        or request.dedup_key is not None
        or request.operation_id is not None
        or request.request_hash is not None
        or request.labels
        or isinstance(request.retry_policy, Mapping)
    ):
        return None
    key = (
        request.task,
        request.company,
        request.description,
        request.queue,
        request.category,
        request.priority,
        request.max_attempts,
        request.rerun_delay,
        request.retry_policy,
        request.timeout,
        request.user,
        request.on_hold,
    )
    try:
        hash(key)
    except TypeError:
        return None
    return key


def parse_recurrence(value: Recurrence | str | Mapping[str, Any] | None) -> Recurrence | None:
    if value is None or isinstance(value, Recurrence):
        return value
    if isinstance(value, str):
        return Recurrence.parse(value)
    return Recurrence.from_json(value)
