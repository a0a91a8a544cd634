"""The operation status machine: the one transition table every layer obeys.

The store applies a transition only when the row's current status is one the table allows
(``WHERE status IN (...)``); the database's CHECK constraints hold the status values and the
per-status invariants; ``docs/status.md`` draws the same table, and a test keeps all three
in step.

Example::

    >>> Status.READY.can_move_to(Status.IN_PROCESS)
    True
    >>> allowed_from("hold")
    frozenset({<Status.READY: 'ready'>, <Status.ERROR: 'error'>})
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class StatusReason(StrEnum):
    """Why an operation is in its status, as the change that put it there wrote it (column
    ``status_reason``; None when a person set it ready, held or restarted it). The
    database's CHECK constraint holds the same values (a test keeps them in step)."""

    RETRY = "retry"
    """Ready again after a failed run, waiting for its retry delay."""
    RECURRING = "recurring"
    """Ready for its next run after a successful one."""
    RECURRING_AFTER_ERROR = "recurring_after_error"
    """Ready for its next run after its last attempt failed (``on_error="continue"``)."""
    INTERRUPTED = "interrupted"
    """Handed back by a draining worker, its attempt not spent."""
    OUTSIDE_RUN_WINDOW = "outside_run_window"
    """Claimed outside its run window and put back until the window opens."""
    RUN_NOW = "run_now"
    """Made due now by *Run Now*, its schedule and run window ignored once."""
    CANCELLED = "cancelled"
    """Cancelled by a person (or a cancel request that its run honoured)."""
    EXPIRED = "expired"
    """Cancelled because it had not started by its ``expires_at``."""
    ERROR = "error"
    """Failed: its code raised on the last attempt."""
    TIMEOUT = "timeout"
    """Failed: its last attempt ran past its timeout."""
    LOST = "lost"
    """Failed: the session running its last attempt was lost."""
    NO_WORKER_FOR_TASK = "no_worker_for_task"
    """Failed before it ran: no live worker session had its task within the task's
    ``worker_wait`` (a rolling deploy that never finished, an app that was removed)."""
    MAINTENANCE = "maintenance"
    """Handed back, its attempt not spent, because maintenance mode began and the run did
    not end within the drain timeout (``domain.maintenance``)."""


class Status(StrEnum):
    """Where an operation stands. Stored as the value; shown with ``caption``."""

    ON_HOLD = "on_hold"
    """Exists but is not scheduled; editable. A user moves it out with *Set Ready*."""
    READY = "ready"
    """Waiting for its start time, a category slot or a worker. The dispatcher claims it;
    a user holds or cancels it; expiry cancels it."""
    IN_PROCESS = "in_process"
    """Claimed by a session under a lease token. The executor finishes it; the rescuer
    reclaims it when its session is lost; a drain hands it back."""
    FINISHED = "finished"
    """The last run succeeded and nothing more is scheduled. A user restarts it; the
    pruner deletes it after the retention period."""
    ERROR = "error"
    """Failed with no attempts left. A user restarts it or sets it ready."""
    CANCELLED = "cancelled"
    """Cancelled before or during a run, or expired before it started. A user restarts it."""

    @property
    def caption(self) -> str:
        """The Business Central caption shown to people."""
        return _CAPTIONS[self]

    @property
    def terminal(self) -> bool:
        """True when nothing moves the operation on without a person acting."""
        return self in TERMINAL

    def can_move_to(self, other: Status) -> bool:
        return other in TRANSITIONS[self]


_CAPTIONS: Mapping[Status, str] = {
    Status.ON_HOLD: "On Hold",
    Status.READY: "Ready",
    Status.IN_PROCESS: "In Process",
    Status.FINISHED: "Finished",
    Status.ERROR: "Error",
    Status.CANCELLED: "Cancelled",
}

TERMINAL: frozenset[Status] = frozenset({Status.FINISHED, Status.ERROR, Status.CANCELLED})
"""Statuses in which an operation is *done* (AIP-151 ``done = true``)."""

ACTIVE: frozenset[Status] = frozenset({Status.ON_HOLD, Status.READY, Status.IN_PROCESS})
"""Statuses in which an operation still holds its dedup key."""

TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    Status.ON_HOLD: frozenset({Status.READY, Status.CANCELLED}),
    # ready -> ready is "run now": same status, earlier start.
    # ready -> error: no worker had its task within the task's worker_wait.
    Status.READY: frozenset(
        {Status.READY, Status.ON_HOLD, Status.IN_PROCESS, Status.CANCELLED, Status.ERROR}
    ),
    # in_process -> ready covers retry, recurrence, drain interruption and rescue.
    Status.IN_PROCESS: frozenset({Status.READY, Status.FINISHED, Status.ERROR, Status.CANCELLED}),
    Status.FINISHED: frozenset({Status.READY, Status.ON_HOLD}),
    Status.ERROR: frozenset({Status.READY, Status.ON_HOLD}),
    Status.CANCELLED: frozenset({Status.READY, Status.ON_HOLD}),
}
"""Every allowed (from, to) pair. Nothing else may happen to an operation."""


# Each action names the statuses it may start from and the one it ends in. Actions that
# end in several statuses (finishing a run) are listed once per outcome.
ACTIONS: Mapping[str, tuple[frozenset[Status], Status]] = {
    "set_ready": (
        frozenset({Status.ON_HOLD, Status.ERROR, Status.FINISHED, Status.CANCELLED}),
        Status.READY,
    ),
    "restart": (
        frozenset({Status.ON_HOLD, Status.ERROR, Status.FINISHED, Status.CANCELLED}),
        Status.READY,
    ),
    "hold": (frozenset({Status.READY, Status.ERROR}), Status.ON_HOLD),
    "run_now": (frozenset({Status.READY, Status.ON_HOLD, Status.ERROR}), Status.READY),
    "cancel": (frozenset({Status.ON_HOLD, Status.READY}), Status.CANCELLED),
    "expire": (frozenset({Status.READY}), Status.CANCELLED),
    "no_worker_for_task": (frozenset({Status.READY}), Status.ERROR),
    "claim": (frozenset({Status.READY}), Status.IN_PROCESS),
    "finish": (frozenset({Status.IN_PROCESS}), Status.FINISHED),
    "fail": (frozenset({Status.IN_PROCESS}), Status.ERROR),
    "retry": (frozenset({Status.IN_PROCESS}), Status.READY),
    "reschedule": (frozenset({Status.IN_PROCESS}), Status.READY),
    "interrupt": (frozenset({Status.IN_PROCESS}), Status.READY),
    "rescue": (frozenset({Status.IN_PROCESS}), Status.READY),
    "rescue_exhausted": (frozenset({Status.IN_PROCESS}), Status.ERROR),
    "cancel_running": (frozenset({Status.IN_PROCESS}), Status.CANCELLED),
}
"""Named transitions used by core, worker and services."""

DELETABLE: frozenset[Status] = frozenset(Status) - {Status.IN_PROCESS}
"""An operation may be deleted in any status but ``in_process`` (Business Central rule)."""


def allowed_from(action: str) -> frozenset[Status]:
    """Statuses from which ``action`` may be applied."""
    return ACTIONS[action][0]


def target_of(action: str) -> Status:
    """The status ``action`` ends in."""
    return ACTIONS[action][1]


def _check_actions_within_table() -> None:
    # An action that the table does not allow would be a silent hole in the machine:
    # fail at import rather than at the first such transition.
    for name, (sources, target) in ACTIONS.items():
        for source in sources:
            if target not in TRANSITIONS[source]:
                raise AssertionError(f"action {name}: {source} -> {target} not in TRANSITIONS")


_check_actions_within_table()
