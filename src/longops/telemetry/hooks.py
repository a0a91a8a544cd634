"""The one-line calls the rest of longops makes where an event is decided."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from longops.domain.operation import CancelMode, Operation, SessionEventType
from longops.telemetry import catalogue as cat
from longops.telemetry import providers
from longops.telemetry.events import emit
from longops.telemetry.settings import settings
from longops.telemetry.traces import in_attempt, sql_used

_SESSION_EVENTS = {
    SessionEventType.LOGON: cat.SESSION_LOGON,
    SessionEventType.LOGOFF: cat.SESSION_LOGOFF,
    SessionEventType.LOST: cat.SESSION_LOST,
    SessionEventType.DRAIN_STARTED: cat.DRAIN_STARTED,
}


def acted(action: str, op: Operation) -> None:
    """An operator action was applied to ``op`` (now in its new status)."""
    if action == "hold":
        emit(cat.HELD, op)
    elif action == "cancel":
        emit(cat.CANCELLED, op, cancelMode=CancelMode.BEFORE_START.value)
    elif action in ("set_ready", "restart", "run_now"):
        emit(cat.SET_READY, op, action=action, earliestStartAt=op.earliest_start_at)


def cancel_requested(op: Operation, force: bool) -> None:
    emit(cat.CANCEL_REQUESTED, op, force=force)


def expired(ids: Iterable[uuid.UUID]) -> None:
    for oid in ids:
        emit(cat.EXPIRED, operationId=oid)


def stalled(ids: Iterable[uuid.UUID]) -> None:
    for oid in ids:
        emit(cat.STALLED, operationId=oid)


def unstalled(ids: Iterable[uuid.UUID]) -> None:
    for oid in ids:
        emit(cat.UNSTALLED, operationId=oid)


def session_event(session_id: uuid.UUID, event: SessionEventType) -> None:
    found = _SESSION_EVENTS.get(event)
    if found is not None:
        emit(found, sessionId=session_id)


def maintenance(job: str, count: int) -> None:
    if count:
        emit(cat.MAINTENANCE, job=job, count=count)


def claimed(count: int) -> None:
    current = providers.get()
    if count and current.enabled:
        current.instruments.claim_batch.record(count)


def progress_written(count: int) -> None:
    current = providers.get()
    if count and current.enabled:
        current.instruments.progress_writes.add(count)


def sql_timing() -> tuple[float, bool]:
    """What a timed cursor needs to know: the slow-SQL threshold in seconds, and whether
    every statement is to be reported (telemetry on, and an attempt runs on this thread:
    its span counts them) or only the slow ones (elsewhere, e.g. the dispatcher's claims
    and the completer's finishes, a statement counts for no attempt)."""
    return settings().slow_sql_after, providers.get().enabled and in_attempt()


def sql_timed(statement: str, elapsed: float) -> None:
    """One of longops's own SQL statements took ``elapsed`` seconds (LO0024 past the
    threshold). The statement's name only: never its text's parameters."""
    sql_used(elapsed)
    threshold = settings().slow_sql_after
    if elapsed >= threshold:
        emit(
            cat.SLOW_SQL,
            statement=statement,
            elapsedInMs=round(elapsed * 1000),
            thresholdInMs=round(threshold * 1000),
        )


def loop_fault(loop: str, error_type: str, first: bool) -> None:
    """A round of a worker's ``loop`` failed on a database fault; ``first``: the loop starts
    backing off (or the kind of fault changed), LO0025."""
    providers.get().instruments.loop_errors.add(1, {"loop": loop, "kind": "fault"})
    if first:
        emit(cat.LOOP_BACKING_OFF, loop=loop, errorType=error_type)


def loop_recovered(loop: str, failures: int, seconds: float) -> None:
    """A worker's ``loop`` is back at work after ``failures`` failed rounds (LO0026)."""
    emit(cat.LOOP_RECOVERED, loop=loop, failures=failures, elapsedInMs=round(seconds * 1000))


def loop_died(loop: str, error_type: str) -> None:
    """A worker's ``loop`` stopped on a bug (LO0027); the worker stops."""
    providers.get().instruments.loop_errors.add(1, {"loop": loop, "kind": "bug"})
    emit(cat.LOOP_DIED, loop=loop, errorType=error_type)
