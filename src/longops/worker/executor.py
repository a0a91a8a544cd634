"""One run's pipeline: check the window, call the task, classify the outcome, decide what
comes next. Persisting the result is the caller's job (the worker batches it)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from longops.domain.clock import Clock
from longops.domain.errors import OperationCancelled
from longops.domain.operation import Operation, Outcome
from longops.domain.recurrence import within_run_window
from longops.domain.retry import CustomBackoff
from longops.domain.runs import decide
from longops.store.base import ClaimedRun, RunResult
from longops.worker.context import RunContext
from longops.worker.registry import TaskDef, TaskRegistry

log = logging.getLogger("longops.worker")

MAX_ERROR_LENGTH = 2048  # Business Central's Error Message field length


@dataclass(frozen=True, slots=True)
class RunOutcome:
    outcome: Outcome
    result_json: str | None = None
    error: BaseException | None = None
    error_message: str | None = None
    traceback: str | None = None


_loops = threading.local()


def _thread_loop() -> asyncio.AbstractEventLoop:
    # One event loop per runner thread, reused across runs: cheaper than asyncio.run().
    loop: asyncio.AbstractEventLoop | None = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _loops.loop = loop
    return loop


@cache
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def call_task(task: TaskDef, op: Operation, ctx: RunContext) -> RunOutcome:
    """Run the task's code and classify how it ended."""
    args: list[Any] = [ctx, *op.args] if task.wants_context else list(op.args)
    try:
        if task.is_async:
            value = _thread_loop().run_until_complete(task.fn(*args, **op.kwargs))
        else:
            value = task.fn(*args, **op.kwargs)
    except OperationCancelled as exc:
        return RunOutcome(Outcome.CANCELLED, error=exc, error_message=str(exc))
    except BaseException as exc:  # SystemExit in task code must not end the worker
        message = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
        return RunOutcome(
            Outcome.ERROR, error=exc, error_message=message, traceback=traceback.format_exc()
        )
    if value is None:
        return RunOutcome(Outcome.SUCCESS)
    try:
        return RunOutcome(Outcome.SUCCESS, result_json=json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        # A result JSON cannot carry is kept as its text rather than failing work that was done.
        return RunOutcome(Outcome.SUCCESS, result_json=json.dumps(repr(value)))


def delay_function(
    task: TaskDef | None, op: Operation, error: BaseException | None
) -> Callable[[int], timedelta]:
    policy = op.policy
    if isinstance(policy, CustomBackoff):
        if task is None or task.custom_retry is None:
            # The task that owned the policy is gone; fall back to the default policy.
            from longops.domain.retry import BusinessCentralBackoff

            return lambda n: BusinessCentralBackoff().delay(n, op.rerun_delay)
        custom = task.custom_retry
        return lambda n: custom(n, error)
    return lambda n: policy.delay(n, op.rerun_delay)


def result_for(
    claimed: ClaimedRun,
    run: RunOutcome,
    *,
    task: TaskDef | None,
    clock: Clock,
    tz: ZoneInfo,
    started_at: datetime | None = None,
) -> RunResult:
    """Turn a run's outcome into the guarded write that records it."""
    op = claimed.operation
    now = clock.now()
    decision = decide(op, run.outcome, now, delay=delay_function(task, op, run.error), tz=tz)
    return RunResult(
        operation_id=op.id,
        lease_token=claimed.lease_token,
        run_no=claimed.run_no,
        at=now,
        outcome=run.outcome,
        status=decision.status,
        status_reason=decision.reason,
        earliest_start_at=decision.earliest_start_at,
        attempt_count=decision.attempt_count,
        error_message=run.error_message,
        traceback=run.traceback,
        result_json=run.result_json,
        started_at=started_at,
    )


def execute(
    claimed: ClaimedRun,
    registry: TaskRegistry,
    clock: Clock,
    tz: ZoneInfo,
    cancel_event: threading.Event | None = None,
) -> RunResult:
    """Run one claimed operation to its result (never raises for task errors)."""
    op = claimed.operation
    if (
        op.recurrence is not None
        and op.status_reason != "run_now"  # run now ignores the schedule
        and not within_run_window(op.recurrence, clock.now(), tz)
    ):
        # Claimed outside its window (the window or clock moved since it was scheduled):
        # put it back at the next allowed time without spending an attempt.
        return result_for(claimed, RunOutcome(Outcome.SKIPPED), task=None, clock=clock, tz=tz)
    try:
        task = registry.get(op.task)
    except LookupError:
        run = RunOutcome(
            Outcome.ERROR,
            error_message=f"task {op.task!r} is not registered in this worker's application",
        )
        return result_for(claimed, run, task=None, clock=clock, tz=tz)
    ctx = RunContext(
        operation_id=op.id,
        company=op.company,
        user=op.user,
        attempt=op.attempt_count,
        task=op.task,
        cancel_event=cancel_event,
    )
    started_at = clock.now()
    run = call_task(task, op, ctx)
    log.debug(
        "run ended",
        extra={"action": "run_ended", "operation_id": str(op.id), "outcome": run.outcome.value},
    )
    return result_for(claimed, run, task=task, clock=clock, tz=tz, started_at=started_at)
