"""Where an operation goes after a run ends. Pure: the executor, the rescuer and the drain
all ask this one function, so a retry after a crash follows the same rules as a retry
after an exception.

Example::

    >>> after_run(op, Outcome.ERROR, now, delay=lambda n: timedelta(seconds=n), tz=UTC).status
    <Status.READY: 'ready'>        # attempts remain: retried later
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from longops.domain.operation import Operation, Outcome
from longops.domain.recurrence import adjust_to_run_window, next_run_time
from longops.domain.status import Status, StatusReason


@dataclass(frozen=True, slots=True)
class Decision:
    status: Status
    reason: StatusReason | None
    earliest_start_at: datetime | None = None
    attempt_count: int | None = None
    """The operation's new attempt count; None keeps the one the claim set."""


def after_run(
    op: Operation,
    outcome: Outcome,
    now: datetime,
    *,
    delay: Callable[[int], timedelta],
    tz: ZoneInfo,
) -> Decision:
    """Decide the next status of ``op`` (as claimed: its attempt count includes this run).

    ``delay(n)`` is the retry policy's wait after the n-th attempt failed.
    """
    if outcome is Outcome.SUCCESS:
        if op.recurrence is not None:
            # Business Central: a successful recurring run resets the attempt counter.
            return Decision(
                Status.READY,
                StatusReason.RECURRING,
                next_run_time(op.recurrence, now, tz),
                attempt_count=0,
            )
        return Decision(Status.FINISHED, None)
    if outcome is Outcome.INTERRUPTED:
        # A drain hands the run back without spending the attempt.
        return Decision(
            Status.READY, StatusReason.INTERRUPTED, now, attempt_count=op.attempt_count - 1
        )
    if outcome is Outcome.SKIPPED:
        assert op.recurrence is not None
        start = adjust_to_run_window(op.recurrence, now, tz)
        return Decision(
            Status.READY, StatusReason.OUTSIDE_RUN_WINDOW, start, attempt_count=op.attempt_count - 1
        )
    if outcome is Outcome.CANCELLED:
        return Decision(Status.CANCELLED, StatusReason.CANCELLED)
    # error, timeout, lost: spend the attempt.
    if op.attempt_count < op.max_attempts:
        return Decision(Status.READY, StatusReason.RETRY, now + delay(op.attempt_count))
    if op.recurrence is not None and op.recurrence.on_error == "continue":
        return Decision(
            Status.READY,
            StatusReason.RECURRING_AFTER_ERROR,
            next_run_time(op.recurrence, now, tz),
            attempt_count=0,
        )
    return Decision(Status.ERROR, StatusReason(outcome.value))
