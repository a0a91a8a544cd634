"""The event catalogue: every lifecycle event longops emits, with its stable id.

Each event has an id of our own (``LO0001``...), the Business Central event it corresponds
to where there is one (``AL0000E24``...), a message (a template over its dimensions) and the
dimensions it carries. ``docs/telemetry.md`` holds the same table; a test keeps the two and
the code in step. Ids are never reused or renumbered: a retired event keeps its id.

Dimensions carry system metadata only (ids, names of tasks, queues, categories, counts,
times, exception class names). Arguments, results and error messages are customer content
and never appear here.

Example::

    >>> from longops.telemetry.catalogue import CATALOGUE, ENQUEUED
    >>> ENQUEUED.id, ENQUEUED.bc_id
    ('LO0001', 'AL0000E24')
    >>> CATALOGUE["LO0001"] is ENQUEUED
    True
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

OPERATION = ("operationId", "entryNo", "company", "task", "queue", "category")
"""The dimensions every operation event carries (Business Central's common job-queue ones)."""
ATTEMPT = (*OPERATION, "attempt", "runNo")


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    name: str
    bc_id: str | None
    level: int
    message: str
    dimensions: tuple[str, ...]

    def text(self, dims: dict[str, object]) -> str:
        try:
            return self.message.format_map(dims)
        except KeyError:  # a dimension the message names has no value: left blank
            return self.message.format_map(_Missing(dims))


class _Missing(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return ""


INFO, WARNING = logging.INFO, logging.WARNING

ENQUEUED = Event(
    "LO0001", "enqueued", "AL0000E24", INFO,
    "Operation enqueued: {operationId}", (*OPERATION, "status", "earliestStartAt"),
)  # fmt: skip
NOT_ENQUEUED = Event(
    "LO0002", "not_enqueued", "AL0000FNY", INFO,
    "Operation not enqueued: an active operation holds its dedup key: {operationId}",
    OPERATION,
)  # fmt: skip
STARTED = Event(
    "LO0003", "started", "AL0000E25", INFO,
    "Operation started: {operationId}", (*ATTEMPT, "sessionId", "queueWaitInMs"),
)  # fmt: skip
FINISHED = Event(
    "LO0004", "finished", "AL0000E26", INFO,
    "Operation finished: {operationId}", (*ATTEMPT, "executionTimeInMs", "nextStatus"),
)  # fmt: skip
ATTEMPT_FAILED = Event(
    "LO0005", "attempt_failed", "AL0000HE7", WARNING,
    "Operation errored: {operationId}; it will run again at {nextStartAt}",
    (*ATTEMPT, "executionTimeInMs", "outcome", "errorType", "nextStartAt", "maxAttempts"),
)  # fmt: skip
FAILED = Event(
    "LO0006", "failed", "AL0000JRG", WARNING,
    "Operation {operationId} errored after {attempt} attempts",
    (*ATTEMPT, "executionTimeInMs", "outcome", "errorType", "maxAttempts"),
)  # fmt: skip
CANCELLED = Event(
    "LO0007", "cancelled", "AL0000KZV", INFO,
    "Operation cancelled: {operationId} ({cancelMode})",
    (*OPERATION, "cancelMode", "runNo", "executionTimeInMs"),
)  # fmt: skip
TIMED_OUT = Event(
    "LO0008", "timed_out", None, WARNING,
    "Operation timed out: {operationId}",
    (*ATTEMPT, "executionTimeInMs", "stopMode", "nextStatus"),
)  # fmt: skip
STALLED = Event(
    "LO0009", "stalled", None, WARNING, "Operation stalled: {operationId}", ("operationId",)
)
UNSTALLED = Event(
    "LO0010", "unstalled", None, INFO, "Operation moved again: {operationId}", ("operationId",)
)
RESCUED = Event(
    "LO0011", "rescued", "0000FMH", WARNING,
    "Operation rescued after its session was lost: {operationId}",
    (*ATTEMPT, "sessionId", "nextStatus"),
)  # fmt: skip
EXPIRED = Event(
    "LO0012", "expired", "AL0000P9E", INFO,
    "Operation expired before it started: {operationId}", ("operationId",),
)  # fmt: skip
SKIPPED_RUN_WINDOW = Event(
    "LO0013", "skipped_run_window", "AL0000P9D", INFO,
    "Operation rescheduled due to its run window: {operationId}",
    (*OPERATION, "nextStartAt"),
)  # fmt: skip
HELD = Event("LO0014", "held", "AL0000KZV", INFO, "Operation set on hold: {operationId}", OPERATION)
SET_READY = Event(
    "LO0015", "set_ready", "AL0000E24", INFO,
    "Operation set ready ({action}): {operationId}", (*OPERATION, "action", "earliestStartAt"),
)  # fmt: skip
CANCEL_REQUESTED = Event(
    "LO0016", "cancel_requested", None, INFO,
    "Cancel requested for running operation: {operationId}", (*OPERATION, "force"),
)  # fmt: skip
INTERRUPTED = Event(
    "LO0017", "interrupted", None, INFO,
    "Operation handed back by a draining worker: {operationId}", (*ATTEMPT, "sessionId"),
)  # fmt: skip
SESSION_LOGON = Event(
    "LO0018", "session_logon", None, INFO,
    "Worker session logged on: {sessionId}", ("sessionId",),
)  # fmt: skip
SESSION_LOGOFF = Event(
    "LO0019", "session_logoff", None, INFO, "Worker session logged off: {sessionId}",
    ("sessionId",),
)  # fmt: skip
SESSION_LOST = Event(
    "LO0020", "session_lost", None, WARNING, "Worker session lost: {sessionId}", ("sessionId",)
)
DRAIN_STARTED = Event(
    "LO0021", "drain_started", None, INFO, "Worker session draining: {sessionId}",
    ("sessionId",),
)  # fmt: skip
MAINTENANCE = Event(
    "LO0022", "maintenance", None, INFO,
    "Maintenance: {job} removed {count} rows", ("job", "count"),
)  # fmt: skip
SLOW_STEP = Event(
    "LO0023", "slow_step", "RT0018", WARNING,
    "Long-running step in operation {operationId}: {step} took {elapsedInMs} ms",
    (*ATTEMPT, "step", "elapsedInMs", "thresholdInMs"),
)  # fmt: skip
SLOW_SQL = Event(
    "LO0024", "slow_sql", "RT0005", WARNING,
    "Long-running SQL statement: {statement} took {elapsedInMs} ms",
    ("statement", "elapsedInMs", "thresholdInMs"),
)  # fmt: skip
LOOP_BACKING_OFF = Event(
    "LO0025", "loop_backing_off", None, WARNING,
    "Worker loop {loop} backing off on a database fault: {errorType}", ("loop", "errorType"),
)  # fmt: skip
LOOP_RECOVERED = Event(
    "LO0026", "loop_recovered", None, INFO,
    "Worker loop {loop} recovered after {failures} failed tries",
    ("loop", "failures", "elapsedInMs"),
)  # fmt: skip
LOOP_DIED = Event(
    "LO0027", "loop_died", None, WARNING,
    "Worker loop {loop} stopped by a bug: {errorType}", ("loop", "errorType"),
)  # fmt: skip
NOTIFICATION_DELIVERED = Event(
    "LO0028", "notification_delivered", None, INFO,
    "Notification delivery {deliveryId} sent ({channel}, try {attempts})",
    ("company", "channel", "deliveryId", "attempts"),
)  # fmt: skip
NOTIFICATION_DEAD = Event(
    "LO0029", "notification_dead_lettered", None, WARNING,
    "Notification delivery {deliveryId} dead-lettered after {attempts} tries ({channel})",
    ("company", "channel", "deliveryId", "attempts"),
)  # fmt: skip

CATALOGUE: dict[str, Event] = {
    e.id: e
    for e in (
        ENQUEUED, NOT_ENQUEUED, STARTED, FINISHED, ATTEMPT_FAILED, FAILED, CANCELLED,
        TIMED_OUT, STALLED, UNSTALLED, RESCUED, EXPIRED, SKIPPED_RUN_WINDOW, HELD, SET_READY,
        CANCEL_REQUESTED, INTERRUPTED, SESSION_LOGON, SESSION_LOGOFF, SESSION_LOST,
        DRAIN_STARTED, MAINTENANCE, SLOW_STEP, SLOW_SQL, LOOP_BACKING_OFF, LOOP_RECOVERED,
        LOOP_DIED, NOTIFICATION_DELIVERED,
        NOTIFICATION_DEAD,
    )
}  # fmt: skip
