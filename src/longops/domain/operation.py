"""The nouns: operation, attempt, category, company, session, session event.

Values here are plain frozen dataclasses; the store turns rows into them and the front ends
turn them into JSON. ``NewOperation`` is the validated request to create one.

Example::

    >>> new = NewOperation.build(task="post_invoices", args=[2026, 1], now=clock.now())
    >>> new.priority, new.max_attempts
    (<Priority.NORMAL: 2000>, 1)
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Any

from longops.domain.errors import ValidationError
from longops.domain.ids import new_id
from longops.domain.limits import dumps
from longops.domain.progress import DEFAULT_STALL_AFTER, Progress
from longops.domain.recurrence import Recurrence
from longops.domain.retry import RetryPolicy, policy_from_json
from longops.domain.security import PermissionSet
from longops.domain.status import TERMINAL, Status, StatusReason

DEFAULT_COMPANY = "default"
DEFAULT_QUEUE = "default"
DEFAULT_TIMEOUT = timedelta(hours=12)
MAX_TIMEOUT = timedelta(days=7)
MAX_ATTEMPTS_LIMIT = 100
MAX_RERUN_DELAY = 3600
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


class Priority(IntEnum):
    """Priority within a category (Business Central enum 470); lower runs first."""

    HIGH = 1000
    NORMAL = 2000
    LOW = 3000

    @classmethod
    def parse(cls, value: Priority | str | int) -> Priority:
        if isinstance(value, Priority):
            return value
        if isinstance(value, str):
            try:
                return cls[value.strip().upper()]
            except KeyError:
                pass
        elif isinstance(value, int) and value in cls._value2member_map_:
            return cls(value)
        raise ValidationError("priority", "must be one of high, normal, low", value)

    @property
    def label(self) -> str:
        return self.name.lower()


class Outcome(StrEnum):
    """How one attempt ended (the log entry's status, refined)."""

    IN_PROCESS = "in_process"
    SUCCESS = "success"
    ERROR = "error"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    LOST = "lost"
    """Its session stopped heartbeating; the rescuer ended the attempt."""
    INTERRUPTED = "interrupted"
    """Handed back by a draining worker; the attempt was not counted."""
    SKIPPED = "skipped"
    """Claimed outside the operation's run window and put back without running."""


class CancelMode(StrEnum):
    """How a cancelled operation came to stop."""

    BEFORE_START = "before_start"
    """Cancelled while on hold or ready: no code was running."""
    COOPERATIVE = "cooperative"
    """The running code saw the request and stopped (``OperationCancelled``)."""
    FORCED = "forced"
    """Stopped by force after the grace period: asyncio cancellation or a killed child."""
    OVERDUE = "overdue"
    """Thread-isolated code ignored the request past its grace period; it could not be
    killed, and its eventual result was discarded."""
    EXPIRED = "expired"
    """Its expiration time passed before it started."""


class StopMode(StrEnum):
    """How a run that was asked to stop (cancel or timeout) ended."""

    COOPERATIVE = "cooperative"
    FORCED = "forced"
    OVERDUE = "overdue"


class EventType(StrEnum):
    """The entries of an operation's timeline (``longops_operation_events``)."""

    ATTEMPT_STARTED = "attempt_started"
    ATTEMPT_ENDED = "attempt_ended"
    STATUS_CHANGED = "status_changed"
    PROGRESS = "progress"
    CHECKPOINT = "checkpoint"
    CANCEL_REQUESTED = "cancel_requested"
    CANCEL_OVERDUE = "cancel_overdue"
    TIMEOUT = "timeout"
    STALLED = "stalled"
    UNSTALLED = "unstalled"


class SessionState(StrEnum):
    ACTIVE = "active"
    DRAINING = "draining"
    STOPPED = "stopped"
    LOST = "lost"


class SessionEventType(StrEnum):
    LOGON = "logon"
    LOGOFF = "logoff"
    LOST = "lost"
    DRAIN_STARTED = "drain_started"
    HEARTBEAT_RESUMED = "heartbeat_resumed"


@dataclass(frozen=True, slots=True)
class Company:
    name: str
    display_name: str
    time_zone: str
    active: bool = True
    max_in_process: int | None = None
    """At most this many of the company's operations run at once (None: no limit)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "display_name": self.display_name,
            "time_zone": self.time_zone,
            "active": self.active,
            "max_in_process": self.max_in_process,
        }


@dataclass(frozen=True, slots=True)
class Category:
    """A serialization group in a company: at most ``max_concurrent`` run at once."""

    company: str
    code: str
    description: str = ""
    max_concurrent: int = 1
    paused: bool = False


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """Who asked an operation to stop, when and why; ``force`` skips the grace period."""

    requested_at: datetime
    requested_by: str | None
    reason: str | None
    force: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "requested_at": _iso(self.requested_at),
            "requested_by": self.requested_by,
            "reason": self.reason,
            "force": self.force,
        }


@dataclass(frozen=True, slots=True)
class Operation:
    """One durable request to run a task (Business Central: a job queue entry)."""

    id: uuid.UUID
    entry_no: int
    company: str
    task: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    description: str | None
    queue: str
    category: str | None
    priority: Priority
    status: Status
    status_reason: StatusReason | None
    earliest_start_at: datetime
    expires_at: datetime | None
    max_attempts: int
    attempt_count: int
    rerun_delay: int
    retry_policy: Mapping[str, Any] | None
    timeout: timedelta
    recurrence: Recurrence | None
    user: str | None
    created_at: datetime
    updated_at: datetime
    ready_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    last_error: str | None
    result: Any
    lease_token: uuid.UUID | None
    session_id: uuid.UUID | None
    dedup_key: str | None
    labels: Mapping[str, str]
    cancel_request: CancelRequest | None
    progress: Progress | None = None
    stall_after: timedelta = DEFAULT_STALL_AFTER
    stalled_at: datetime | None = None
    """Set while an in-process operation's progress has not moved for ``stall_after``."""
    checkpoint: Any = None
    checkpoint_at: datetime | None = None
    cancel_mode: CancelMode | None = None
    cancel_overdue_at: datetime | None = None
    """Set when thread-isolated code ignored a cancel or timeout past its grace period."""
    request_hash: str | None = None
    """The hash of the request a client sent with an Operation-Id (idempotent enqueue)."""
    trace_context: str | None = None
    """The W3C ``traceparent`` of the span that enqueued it (its attempts join that trace)."""
    required_permission: PermissionSet | None = None
    """Whoever enqueues it or sets it ready must hold this set (or more) in its company."""
    user_inactive: bool = False
    """Its user no longer exists or is disabled (Business Central shows such entries in red);
    derived when read, not stored."""

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @property
    def recurring(self) -> bool:
        return self.recurrence is not None

    @property
    def policy(self) -> RetryPolicy:
        return policy_from_json(self.retry_policy)

    @property
    def cancelling(self) -> bool:
        """Running with a cancel request pending (shown as *Cancelling*)."""
        return self.status is Status.IN_PROCESS and self.cancel_request is not None

    def cancellation_json(self) -> dict[str, Any] | None:
        """The cancel request and how it ended, with the time it took; None if never asked."""
        if self.cancel_request is None and self.cancel_mode is None:
            return None
        data: dict[str, Any] = (
            self.cancel_request.to_json()
            if self.cancel_request
            else {"requested_at": None, "requested_by": None, "reason": None, "force": False}
        )
        data["mode"] = None if self.cancel_mode is None else self.cancel_mode.value
        data["overdue_at"] = _iso(self.cancel_overdue_at)
        took = None
        if self.cancel_request and self.status is Status.CANCELLED and self.ended_at:
            took = max((self.ended_at - self.cancel_request.requested_at).total_seconds(), 0.0)
        data["took_seconds"] = took
        return data

    def to_json(self) -> dict[str, Any]:
        """The operation as JSON-ready data; ``status`` is always a top-level key."""
        return {
            "id": str(self.id),
            "entry_no": self.entry_no,
            "company": self.company,
            "task": self.task,
            "status": self.status.value,
            "status_caption": self.status.caption,
            "status_reason": self.status_reason,
            "done": self.done,
            "args": list(self.args),
            "kwargs": dict(self.kwargs),
            "description": self.description,
            "queue": self.queue,
            "category": self.category,
            "priority": self.priority.label,
            "earliest_start_at": _iso(self.earliest_start_at),
            "expires_at": _iso(self.expires_at),
            "max_attempts": self.max_attempts,
            "attempt_count": self.attempt_count,
            "rerun_delay": self.rerun_delay,
            "retry_policy": dict(self.retry_policy) if self.retry_policy else None,
            "timeout_seconds": self.timeout.total_seconds(),
            "recurring": self.recurring,
            "recurrence": self.recurrence.to_json() if self.recurrence else None,
            "user": self.user,
            "user_inactive": self.user_inactive,
            "required_permission": (
                self.required_permission.value if self.required_permission else None
            ),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "ready_at": _iso(self.ready_at),
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "last_error": self.last_error,
            "result": self.result,
            "session_id": str(self.session_id) if self.session_id else None,
            "dedup_key": self.dedup_key,
            "labels": dict(self.labels),
            "cancelling": self.cancelling,
            "cancel_request": self.cancellation_json(),
            "progress": None if self.progress is None else self.progress.to_json(),
            "stalled": self.stalled_at is not None,
            "stalled_at": _iso(self.stalled_at),
            "stall_after_seconds": self.stall_after.total_seconds(),
            "checkpoint": (
                None
                if self.checkpoint_at is None
                else {"at": _iso(self.checkpoint_at), "state": self.checkpoint}
            ),
        }


@dataclass(frozen=True, slots=True)
class Attempt:
    """One execution of an operation (Business Central: a job queue log entry)."""

    id: int
    """The log entry number (time-ordered across all operations)."""
    operation_id: uuid.UUID
    company: str
    number: int
    """Which run of the operation this was (1, 2, ...); never reused."""
    attempt: int
    """The attempt count it spent (interrupted runs spend none, so this can repeat)."""
    session_id: uuid.UUID | None
    user: str | None
    task: str
    started_at: datetime
    ended_at: datetime | None
    outcome: Outcome
    error_message: str | None
    traceback: str | None
    stop_mode: StopMode | None = None
    """How the run ended when it was asked to stop (cancel or timeout)."""
    progress: Progress | None = None
    """The run's last progress reading."""
    peak_rss: int | None = None
    """Peak resident memory of its child process, in bytes (process-isolated tasks only)."""

    @property
    def duration(self) -> timedelta | None:
        return None if self.ended_at is None else self.ended_at - self.started_at

    def to_json(self) -> dict[str, Any]:
        duration = self.duration
        return {
            "id": self.id,
            "operation_id": str(self.operation_id),
            "company": self.company,
            "task": self.task,
            "number": self.number,
            "attempt": self.attempt,
            "session_id": str(self.session_id) if self.session_id else None,
            "user": self.user,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "duration_seconds": None if duration is None else duration.total_seconds(),
            "outcome": self.outcome.value,
            "error_message": self.error_message,
            "traceback": self.traceback,
            "stop_mode": None if self.stop_mode is None else self.stop_mode.value,
            "progress": None if self.progress is None else self.progress.to_json(),
            "peak_rss": self.peak_rss,
        }


@dataclass(frozen=True, slots=True)
class OperationEvent:
    """One entry of an operation's timeline. ``id`` orders an operation's events."""

    id: int
    operation_id: uuid.UUID
    company: str
    at: datetime
    type: EventType
    run_no: int | None
    data: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "operation_id": str(self.operation_id),
            "company": self.company,
            "at": _iso(self.at),
            "type": self.type.value,
            "run_no": self.run_no,
            "data": dict(self.data),
        }


@dataclass(frozen=True, slots=True)
class Session:
    """One worker process's lifetime (Business Central: a background session)."""

    id: uuid.UUID
    host: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    state: SessionState
    started_at: datetime
    last_heartbeat_at: datetime
    ended_at: datetime | None
    companies: tuple[str, ...] | None = None
    """The companies it serves; None means every company."""
    tasks: tuple[str, ...] | None = None
    """The tasks it can run (the claim takes only these); None: any (a session of code
    from before sessions recorded them)."""
    code_version: str | None = None
    """Which code it runs: longops' version and each app's (``longops 1.4; billing 2.0``)."""
    schema_version: int | None = None
    """The schema version its code was written for (its newest migration)."""
    claim_stopped: str | None = None
    """Why it has stopped claiming while it runs (the schema guard's message); None: it
    claims."""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "host": self.host,
            "pid": self.pid,
            "queues": list(self.queues),
            "companies": None if self.companies is None else list(self.companies),
            "concurrency": self.concurrency,
            "state": self.state.value,
            "started_at": _iso(self.started_at),
            "last_heartbeat_at": _iso(self.last_heartbeat_at),
            "ended_at": _iso(self.ended_at),
            "tasks": None if self.tasks is None else list(self.tasks),
            "code_version": self.code_version,
            "schema_version": self.schema_version,
            "claim_stopped": self.claim_stopped,
        }


@dataclass(frozen=True, slots=True)
class SessionEvent:
    id: int
    session_id: uuid.UUID
    type: SessionEventType
    at: datetime
    comment: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "session_id": str(self.session_id),
            "type": self.type.value,
            "at": _iso(self.at),
            "comment": self.comment,
        }


@dataclass(frozen=True, slots=True)
class NewOperation:
    """A validated request to create an operation. Build it with :meth:`build`."""

    id: uuid.UUID
    company: str
    task: str
    args_json: str
    description: str | None
    queue: str
    category: str | None
    priority: Priority
    status: Status
    earliest_start_at: datetime
    expires_at: datetime | None
    max_attempts: int
    rerun_delay: int
    retry_policy: Mapping[str, Any] | None
    timeout: timedelta
    recurrence: Recurrence | None
    user: str | None
    created_at: datetime
    dedup_key: str | None
    labels: Mapping[str, str] = field(default_factory=dict)
    stall_after: timedelta = DEFAULT_STALL_AFTER
    required_permission: PermissionSet | None = None
    request_hash: str | None = None
    trace_context: str | None = None

    @classmethod
    def build(
        cls,
        *,
        task: str,
        now: datetime,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        company: str = DEFAULT_COMPANY,
        description: str | None = None,
        queue: str = DEFAULT_QUEUE,
        category: str | None = None,
        priority: Priority | str | int = Priority.NORMAL,
        earliest_start_at: datetime | None = None,
        expires_at: datetime | None = None,
        max_attempts: int = 1,
        rerun_delay: int = 0,
        retry_policy: RetryPolicy | Mapping[str, Any] | None = None,
        timeout: timedelta | float | None = None,
        recurrence: Recurrence | None = None,
        user: str | None = None,
        dedup_key: str | None = None,
        labels: Mapping[str, str] | None = None,
        on_hold: bool = False,
        stall_after: timedelta = DEFAULT_STALL_AFTER,
        required_permission: PermissionSet | None = None,
        operation_id: uuid.UUID | None = None,
        request_hash: str | None = None,
    ) -> NewOperation:
        """Check every rule on the request and return it ready to insert.

        Raises :class:`ValidationError` naming the first field that breaks a rule.
        """
        _check_name("task", task)
        _check_name("company", company)
        _check_name("queue", queue)
        if category is not None:
            _check_name("category", category)
        if description is not None and len(description) > 250:
            raise ValidationError("description", "must be at most 250 characters")
        if dedup_key is not None and not 0 < len(dedup_key) <= 250:
            raise ValidationError("dedup_key", "must be 1 to 250 characters")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
            raise ValidationError("max_attempts", "must be a whole number", max_attempts)
        if not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT:
            raise ValidationError(
                "max_attempts", f"must be between 1 and {MAX_ATTEMPTS_LIMIT}", max_attempts
            )
        if isinstance(rerun_delay, bool) or not isinstance(rerun_delay, int):
            raise ValidationError("rerun_delay", "must be a whole number of seconds", rerun_delay)
        if not 0 <= rerun_delay <= MAX_RERUN_DELAY:
            raise ValidationError(
                "rerun_delay", f"must be between 0 and {MAX_RERUN_DELAY} seconds", rerun_delay
            )
        timeout_td = _timeout(timeout)
        for name, value in (("earliest_start_at", earliest_start_at), ("expires_at", expires_at)):
            if value is not None and value.tzinfo is None:
                raise ValidationError(name, "must be timezone-aware")
        start = max(earliest_start_at or now, now)
        if expires_at is not None and expires_at <= start:
            raise ValidationError(
                "expires_at", "must be later than earliest_start_at", expires_at.isoformat()
            )
        policy_json: Mapping[str, Any] | None
        if retry_policy is None:
            policy_json = None
        elif isinstance(retry_policy, Mapping):
            policy_json = policy_from_json(retry_policy).to_json()
        else:
            policy_json = retry_policy.to_json()
        if recurrence is not None and not isinstance(recurrence, Recurrence):
            raise ValidationError("recurrence", "must be a Recurrence")
        clean_labels = _labels(labels or {})
        return cls(
            id=operation_id or new_id(now),
            company=company,
            task=task,
            args_json=encode_args(args, kwargs or {}),
            description=description,
            queue=queue,
            category=category,
            priority=Priority.parse(priority),
            status=Status.ON_HOLD if on_hold else Status.READY,
            earliest_start_at=start,
            expires_at=expires_at,
            max_attempts=max_attempts,
            rerun_delay=rerun_delay,
            retry_policy=policy_json,
            timeout=timeout_td,
            recurrence=recurrence,
            user=user,
            created_at=now,
            dedup_key=dedup_key,
            labels=clean_labels,
            stall_after=stall_after,
            required_permission=required_permission,
            request_hash=request_hash,
        )


_NO_ARGS = '{"args":[],"kwargs":{}}'
_encode = dumps
"""Compact, non-ASCII characters as themselves (their UTF-8 bytes count against the
argument limit, not six bytes of ``\\u`` escape each: ``domain.limits.dumps``)."""


def encode_args(args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    """Serialise a task's arguments; refuses anything JSON cannot carry exactly."""
    if not args and not kwargs:
        return _NO_ARGS
    try:
        return _encode({"args": list(args), "kwargs": dict(kwargs)})
    except (TypeError, ValueError) as exc:
        raise ValidationError("args", f"must be JSON-serialisable: {exc}") from exc


_VALID_NAMES: set[str] = set()


def _check_name(field_name: str, value: object) -> None:
    # Task, company and queue names repeat on every enqueue: remember those that passed.
    if value in _VALID_NAMES:
        return
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise ValidationError(
            field_name,
            "must be 1-100 characters of letters, digits, '_', '.', ':' or '-', "
            "starting with a letter or digit",
            value,
        )
    if len(_VALID_NAMES) < 10_000:
        _VALID_NAMES.add(value)


def _timeout(value: timedelta | float | None) -> timedelta:
    if value is None:
        return DEFAULT_TIMEOUT
    td = value if isinstance(value, timedelta) else timedelta(seconds=float(value))
    if not timedelta(seconds=1) <= td <= MAX_TIMEOUT:
        raise ValidationError(
            "timeout", "must be between 1 second and 7 days (in seconds)", td.total_seconds()
        )
    return td


def _labels(labels: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in labels.items():
        if not isinstance(key, str) or not 0 < len(key) <= 63:
            raise ValidationError("labels", "keys must be 1 to 63 characters", key)
        if not isinstance(value, str) or len(value) > 250:
            raise ValidationError(f"labels.{key}", "must be a string of at most 250 characters")
        out[key] = value
    return out


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
