"""Why a ready operation is not running yet: one reason code, derived when asked.

A wait reason is never stored: it is computed from the operation and a
:class:`WaitContext` read at the same moment (paused queues, categories and who holds their
slots, which queues live sessions serve), so it cannot go stale.

The first cause that applies wins, from the most deliberate to the most passing::

    company_disabled > user_disabled > user_deleted > user_lacks_permission > queue_paused
      > category_paused > outside_run_window > retry_backoff > scheduled > maintenance
      > no_worker > no_worker_for_task > company_quota > category_busy > due

The three ``user_*`` reasons are the claim's own run-time security check (the claim skips
such rows; see ``claim_operations``): an operation runs on behalf of its user, whoever last
set it ready, and in a database that has users that user must still exist, be active and
hold the permission set its task requires.

Example::

    reason = wait_reason(op, context, tz)
    reason.code, reason.message     # ('category_busy', 'category POSTING is full: ...')
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from longops.domain.maintenance import MaintenanceMode
from longops.domain.operation import Operation
from longops.domain.recurrence import within_run_window
from longops.domain.security import PermissionSet
from longops.domain.status import Status, StatusReason
from longops.domain.users import User


class WaitCode(StrEnum):
    COMPANY_DISABLED = "company_disabled"
    USER_DISABLED = "user_disabled"
    """The user it runs on behalf of is disabled: it does not start until re-enabled."""
    USER_DELETED = "user_deleted"
    """The user it runs on behalf of no longer exists: it does not start until someone
    sets it ready (it then runs as them) or the user is created again."""
    USER_LACKS_PERMISSION = "user_lacks_permission"
    """The user it runs on behalf of no longer holds the permission set its task requires."""
    QUEUE_PAUSED = "queue_paused"
    CATEGORY_PAUSED = "category_paused"
    OUTSIDE_RUN_WINDOW = "outside_run_window"
    RETRY_BACKOFF = "retry_backoff"
    SCHEDULED = "scheduled"
    MAINTENANCE = "maintenance"
    """Maintenance mode is on (``longops maintenance start``): nothing starts until it stops."""
    NO_WORKER = "no_worker"
    NO_WORKER_FOR_TASK = "no_worker_for_task"
    """Live sessions serve its queue, but none has its task (a rolling deploy in which
    only older workers run, an app no running worker has): it runs once one that has
    the task joins (``domain/apps.py``)."""
    COMPANY_QUOTA = "company_quota"
    """Its company already runs as many operations as it may (``max_in_process``)."""
    CATEGORY_BUSY = "category_busy"
    DUE = "due"
    """Nothing holds it back: the next free worker slot takes it."""


@dataclass(frozen=True, slots=True)
class CategorySlots:
    max_concurrent: int
    paused: bool
    holders: tuple[uuid.UUID, ...] = ()
    """The operations running in the category now (they hold its slots)."""


@dataclass(frozen=True, slots=True)
class CompanyState:
    active: bool
    max_in_process: int | None
    running: int


@dataclass(frozen=True, slots=True)
class WaitContext:
    now: datetime
    paused_queues: frozenset[str] = frozenset()
    categories: Mapping[tuple[str, str], CategorySlots] = field(default_factory=dict)
    served_queues: frozenset[str] = frozenset()
    """Queues that at least one live (active) worker session serves."""
    served_companies: Mapping[str, frozenset[str] | None] = field(default_factory=dict)
    """Per served queue, the companies its sessions serve (None: all); a queue missing
    here is taken as served for every company."""
    companies: Mapping[str, CompanyState] = field(default_factory=dict)
    users: Mapping[str, User] | None = None
    """Every user by name; None when the database has no users (nothing is checked)."""
    served_tasks: frozenset[str] | None = None
    """The tasks live (active) sessions have; None: some session runs any task (one from
    before sessions recorded their tasks), or nothing was read."""
    maintenance: MaintenanceMode | None = None
    """Maintenance mode as read with the rest (None: not read, taken as off)."""
    stopped_queues: Mapping[str, str] = field(default_factory=dict)
    """Queues live sessions serve while they have stopped claiming (the schema guard),
    with why; they are not in ``served_queues``."""


@dataclass(frozen=True, slots=True)
class WaitReason:
    code: WaitCode
    message: str
    until: datetime | None = None
    holders: tuple[uuid.UUID, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code.value,
            "message": self.message,
            "until": None if self.until is None else self.until.isoformat(),
            "holders": [str(h) for h in self.holders],
        }


def _has_window(op: Operation) -> bool:
    rec = op.recurrence
    return (
        rec is not None
        and not (rec.cron or rec.date_formula)
        and bool(rec.weekdays or rec.starting_time is not None or rec.ending_time is not None)
    )


def user_block(op: Operation, users: Mapping[str, User] | None) -> WaitReason | None:
    """Why ``op``'s user may not run it now, or None when they may (or nothing is checked).

    The same rule as the claim's (``claim_operations``), so what the pages say is what the
    claim does.

    Example::

        user_block(op, {"alice": alice}).code     # WaitCode.USER_DISABLED, say
    """
    if op.user is None or users is None:
        return None
    user = users.get(op.user)
    if user is None:
        return WaitReason(
            WaitCode.USER_DELETED,
            f"user {op.user}, on whose behalf it runs, no longer exists; it starts when "
            "someone sets it ready again (it then runs as them)",
        )
    if not user.active:
        return WaitReason(
            WaitCode.USER_DISABLED,
            f"user {op.user}, on whose behalf it runs, is disabled; it starts when the user "
            "is enabled again",
        )
    needed = op.required_permission
    if needed is None or user.is_super:
        return None
    held = [s for company, s in user.grants if company == op.company]
    if needed is not PermissionSet.SUPER and any(s.includes(needed) for s in held):
        return None
    return WaitReason(
        WaitCode.USER_LACKS_PERMISSION,
        f"user {op.user}, on whose behalf it runs, no longer holds {needed.value} in "
        f"company {op.company}, which task {op.task} requires",
    )


def wait_reason(op: Operation, ctx: WaitContext, tz: ZoneInfo) -> WaitReason | None:
    """Why ``op`` waits, or None when it is not ``ready``."""
    if op.status is not Status.READY:
        return None
    slots = ctx.categories.get((op.company, op.category)) if op.category else None
    if slots is not None and op.id in slots.holders:
        # The context was read after ``op``: a worker claimed it in between (a 202 built
        # from the enqueued row, say). It waits for nothing, least of all for itself.
        return None
    now = ctx.now
    company = ctx.companies.get(op.company)
    if company is not None and not company.active:
        return WaitReason(WaitCode.COMPANY_DISABLED, f"company {op.company} is disabled")
    blocked = user_block(op, ctx.users)
    if blocked is not None:
        return blocked
    if op.queue in ctx.paused_queues:
        return WaitReason(WaitCode.QUEUE_PAUSED, f"queue {op.queue} is paused")
    if slots is not None and slots.paused:
        return WaitReason(WaitCode.CATEGORY_PAUSED, f"category {op.category} is paused")
    later = op.earliest_start_at > now
    if (
        op.recurrence is not None
        and _has_window(op)
        and op.status_reason is not StatusReason.RUN_NOW
    ):
        outside = not within_run_window(op.recurrence, now, tz)
        if outside or (later and op.status_reason is StatusReason.OUTSIDE_RUN_WINDOW):
            return WaitReason(
                WaitCode.OUTSIDE_RUN_WINDOW,
                f"outside its run window; next start {op.earliest_start_at.isoformat()}",
                until=op.earliest_start_at,
            )
    if later:
        if op.status_reason is StatusReason.RETRY:
            return WaitReason(
                WaitCode.RETRY_BACKOFF,
                f"attempt {op.attempt_count} of {op.max_attempts} failed; "
                f"retry at {op.earliest_start_at.isoformat()}",
                until=op.earliest_start_at,
            )
        return WaitReason(
            WaitCode.SCHEDULED,
            f"scheduled for {op.earliest_start_at.isoformat()}",
            until=op.earliest_start_at,
        )
    if ctx.maintenance is not None and ctx.maintenance.active:
        return WaitReason(WaitCode.MAINTENANCE, ctx.maintenance.wait_message())
    if op.queue not in ctx.served_queues:
        why = ctx.stopped_queues.get(op.queue)
        if why is not None:
            return WaitReason(
                WaitCode.NO_WORKER,
                f"the live worker sessions serving queue {op.queue} have stopped claiming: {why}",
            )
        return WaitReason(WaitCode.NO_WORKER, f"no live worker session serves queue {op.queue}")
    serving = ctx.served_companies.get(op.queue)
    if serving is not None and op.company not in serving:
        return WaitReason(
            WaitCode.NO_WORKER,
            f"no live worker session serves company {op.company} on queue {op.queue}",
        )
    if ctx.served_tasks is not None and op.task not in ctx.served_tasks:
        return WaitReason(
            WaitCode.NO_WORKER_FOR_TASK,
            f"no live worker session has task {op.task}; it runs once a worker with it "
            "joins (an app installed, a rolling deploy finished)",
        )
    if (
        company is not None
        and company.max_in_process is not None
        and company.running >= company.max_in_process
    ):
        return WaitReason(
            WaitCode.COMPANY_QUOTA,
            f"company {op.company} runs {company.running} of at most "
            f"{company.max_in_process} operations at once",
        )
    if slots is not None and len(slots.holders) >= slots.max_concurrent:
        held = ", ".join(str(h) for h in slots.holders)
        return WaitReason(
            WaitCode.CATEGORY_BUSY,
            f"category {op.category} is full ({len(slots.holders)} of "
            f"{slots.max_concurrent} running: {held})",
            holders=slots.holders,
        )
    return WaitReason(WaitCode.DUE, "due; the next free worker slot takes it")
