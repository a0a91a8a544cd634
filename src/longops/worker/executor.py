"""One run's pipeline: check the window, call the task (in this thread or a child process),
classify how it ended, decide what comes next. Persisting the result is the caller's job
(the worker batches it).

A :class:`RunControl` is what the runner thread (which runs the code) and the worker's
monitor (which writes progress, enforces timeouts and climbs the cancellation ladder) share
about one run::

    request / timeout ──> cooperative signal (ctx.cancelled, OperationCancelled)
                     ──> after cancel_grace: forced stop
                           async def: asyncio cancellation
                           process:   SIGTERM, then SIGKILL after kill_after
                           thread:    cannot be killed: marked cancel overdue, its
                                      eventual result discarded
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from multiprocessing.reduction import ForkingPickler
from typing import Any
from zoneinfo import ZoneInfo

from longops import telemetry
from longops.domain.clock import Clock
from longops.domain.limits import PayloadLimits, json_size, shown
from longops.domain.operation import Operation, Outcome
from longops.domain.progress import Progress
from longops.domain.recurrence import within_run_window
from longops.domain.retry import CustomBackoff
from longops.domain.runs import after_run
from longops.domain.status import StatusReason
from longops.store.base import ClaimedRun, RunResult
from longops.worker.context import RunContext
from longops.worker.control import RunControl
from longops.worker.invoke import MAX_ERROR_LENGTH, RunOutcome, invoke, invoke_async
from longops.worker.isolation import (
    Ack,
    Begun,
    Broken,
    Cancel,
    CheckpointRequest,
    Child,
    ChildPool,
    LoadFailed,
    ProgressReport,
    ProtocolError,
    Result,
    Run,
    RunSpec,
    death_message,
)
from longops.worker.registry import TaskDef, TaskRegistry
from longops.worker.runs import StopCause

log = logging.getLogger("longops.worker")

__all__ = [
    "MAX_ERROR_LENGTH",
    "RunControl",
    "RunOutcome",
    "StopCause",
    "execute",
    "execute_async",
    "result_for",
    "runs_on_loop",
]

CHILD_START_UP = timedelta(seconds=60)
"""Longest a process-isolated run may take to begin its code (a child starting, importing
the task) before its timeout runs anyway: a child that hangs at import is still stopped."""

# Short names for the causes (older code and tests import these).
CANCEL = StopCause.CANCEL
TIMEOUT = StopCause.TIMEOUT
FENCED = StopCause.FENCED


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
    progress: Progress | None = None,
) -> RunResult:
    """Turn a run's outcome into the guarded write that records it."""
    op = claimed.operation
    now = clock.now()
    decision = after_run(op, run.outcome, now, delay=delay_function(task, op, run.error), tz=tz)
    result = RunResult(
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
        progress_json=None if progress is None else json.dumps(progress.to_json()),
        stop_mode=run.stop_mode,
        # Used only if the operation ends cancelled (the store decides: a cancel request
        # that arrived at the last moment also ends it cancelled).
        cancel_mode=run.cancel_mode,
        clear_checkpoint=run.outcome is Outcome.SUCCESS,
        peak_rss=run.peak_rss,
    )
    telemetry.ended(op, claimed.run_no, result, run.error)
    return result


def execute(
    claimed: ClaimedRun,
    registry: TaskRegistry,
    clock: Clock,
    tz: ZoneInfo,
    control: RunControl | None = None,
    pool: ChildPool | None = None,
) -> RunResult:
    """Run one claimed operation to its result (never raises for task errors), inside the
    attempt's ``process`` span."""
    with telemetry.processing(claimed.operation, claimed.run_no):
        return _execute(claimed, registry, clock, tz, control, pool)


def _execute(
    claimed: ClaimedRun,
    registry: TaskRegistry,
    clock: Clock,
    tz: ZoneInfo,
    control: RunControl | None,
    pool: ChildPool | None,
) -> RunResult:
    found = _task_for(claimed, registry, clock, tz)
    if isinstance(found, RunResult):
        return found
    task = found
    control = control or RunControl(claimed, store=None, clock=clock)
    control.task = task
    if task.isolation == "process":
        run = _run_in_child(control, task, pool or ChildPool(), registry.limits)
    else:
        ctx = _context(control, registry)
        if not control.begin():
            # Asked to stop (or handed back) before the code began: it does not start.
            return result_for(claimed, control.not_started(), task=task, clock=clock, tz=tz)
        op = claimed.operation
        run = invoke(
            task.fn,
            op.args,
            op.kwargs,
            ctx=ctx if task.wants_context else None,
            is_async=task.is_async,
            on_async_task=control.attach_async,
        )
    return _ended(claimed, control, task, run, registry, clock, tz)


def runs_on_loop(registry: TaskRegistry, task_name: str) -> bool:
    """Whether runs of this task go to the worker's event loop (:func:`execute_async`): an
    ``async def`` task that is not process-isolated."""
    if task_name not in registry:
        return False
    task = registry.get(task_name)
    return task.is_async and task.isolation != "process"


async def execute_async(
    claimed: ClaimedRun,
    registry: TaskRegistry,
    clock: Clock,
    tz: ZoneInfo,
    control: RunControl | None = None,
) -> RunResult:
    """:func:`execute` for an ``async def`` task (see :func:`runs_on_loop`), awaited on the
    worker's event loop: the same pipeline, checks and classification, without a thread of
    its own. A forced stop cancels the code's asyncio task.

    Example::

        result = await execute_async(claimed, registry, clock, ZoneInfo("UTC"), control)
    """
    with telemetry.processing(claimed.operation, claimed.run_no):
        found = _task_for(claimed, registry, clock, tz)
        if isinstance(found, RunResult):
            return found
        task = found
        control = control or RunControl(claimed, store=None, clock=clock)
        control.task = task
        ctx = _context(control, registry)
        if not control.begin():
            return result_for(claimed, control.not_started(), task=task, clock=clock, tz=tz)
        op = claimed.operation
        run = await invoke_async(
            task.fn,
            op.args,
            op.kwargs,
            ctx=ctx if task.wants_context else None,
            on_async_task=control.attach_async,
        )
        return _ended(claimed, control, task, run, registry, clock, tz)


def _task_for(
    claimed: ClaimedRun, registry: TaskRegistry, clock: Clock, tz: ZoneInfo
) -> TaskDef | RunResult:
    """The run's task, or the result that ends the run before any code does."""
    op = claimed.operation
    if (
        op.recurrence is not None
        and op.status_reason is not StatusReason.RUN_NOW  # run now ignores the schedule
        and not within_run_window(op.recurrence, clock.now(), tz)
    ):
        # Claimed outside its window (the window or clock moved since it was scheduled):
        # put it back at the next allowed time without spending an attempt.
        return result_for(claimed, RunOutcome(Outcome.SKIPPED), task=None, clock=clock, tz=tz)
    try:
        return registry.get(op.task)
    except LookupError:
        run = RunOutcome(
            Outcome.ERROR,
            error_message=f"task {op.task!r} is not registered in this worker's application",
        )
        return result_for(claimed, run, task=None, clock=clock, tz=tz)


def _context(control: RunControl, registry: TaskRegistry) -> RunContext:
    op = control.operation
    ctx = RunContext(
        operation_id=op.id,
        company=op.company,
        user=op.user,
        attempt=op.attempt_count,
        task=op.task,
        cancel_event=control.cancel,
        counter=control.counter,
        resume_state=op.checkpoint,
        checkpoint_sink=control.save_checkpoint if control.store is not None else None,
        on_step=control.wake_monitor,
        max_checkpoint_bytes=registry.limits.checkpoint,
        max_message_chars=registry.limits.progress_message,
    )
    control.ctx = ctx
    return ctx


def _ended(
    claimed: ClaimedRun,
    control: RunControl,
    task: TaskDef,
    run: RunOutcome,
    registry: TaskRegistry,
    clock: Clock,
    tz: ZoneInfo,
) -> RunResult:
    op = claimed.operation
    run = control.classify(_within_limit(run, registry.limits))
    log.debug(
        "run ended",
        extra={"action": "run_ended", "operation_id": str(op.id), "outcome": run.outcome.value},
    )
    final = control.reading()
    if final is not None:
        # An ended run expects nothing more; a finished one is a full bar.
        final = replace(
            final, eta_at=None, eta_source=None, complete=run.outcome is Outcome.SUCCESS
        )
    return result_for(
        claimed,
        run,
        task=task,
        clock=clock,
        tz=tz,
        started_at=control.started_at,
        progress=final,
    )


def _within_limit(run: RunOutcome, limits: PayloadLimits) -> RunOutcome:
    """A result over the limit fails the attempt like a task error (and is retried as one):
    its text never reaches the database, where it could slow or block the worker's writes."""
    if run.result_json is None:
        return run
    size = json_size(run.result_json)
    if size <= limits.result:
        return run
    message = (
        f"ResultTooLarge: the task's result is {shown(size)} as JSON; the limit is "
        f"{shown(limits.result)} (LONGOPS_MAX_RESULT_BYTES)"
    )
    return RunOutcome(Outcome.ERROR, error_message=message[:MAX_ERROR_LENGTH])


def _run_in_child(
    control: RunControl, task: TaskDef, pool: ChildPool, limits: PayloadLimits
) -> RunOutcome:
    """Drive one attempt in a child process: relay progress, checkpoints and cancellation;
    escalate SIGTERM to SIGKILL when forced; report a death as the attempt's error."""
    op = control.operation
    token = f"{op.id}/{control.claimed.run_no}"
    spec = RunSpec(
        fn=task.fn,
        args=tuple(op.args),
        kwargs=dict(op.kwargs),
        is_async=task.is_async,
        wants_context=task.wants_context,
        operation_id=op.id,
        company=op.company,
        user=op.user,
        attempt=op.attempt_count,
        task=op.task,
        resume_state=op.checkpoint,
        token=token,
        max_checkpoint_bytes=limits.checkpoint,
        max_message_chars=limits.progress_message,
    )
    try:
        # Pickled here, so a run that cannot be handed over fails before a child starts.
        data = bytes(ForkingPickler.dumps(spec))
    except Exception as exc:
        why = f"could not hand the run to a child process: {type(exc).__name__}: {exc}"
        return RunOutcome(Outcome.ERROR, error_message=why[:MAX_ERROR_LENGTH])
    if not control.begin(start_up=CHILD_START_UP):
        return control.not_started()
    child = pool.acquire()
    if not control.attach_child(child):
        pool.release(child, 0, max_runs=None, max_memory=None, ran=False)
        return control.not_started()
    try:
        return _drive_child(control, task, pool, child, token, data)
    except BaseException:
        # Whatever went wrong on our side, the child must not live on with the run.
        pool.discard(child)
        raise


def _drive_child(
    control: RunControl, task: TaskDef, pool: ChildPool, child: Child, token: str, data: bytes
) -> RunOutcome:
    op = control.operation
    if not child.send(Run(token, op.task, data)):
        pool.discard(child)
        return RunOutcome(Outcome.ERROR, error_message="could not hand the run to a child process")
    cancel_sent = False
    terminated_at: float | None = None
    killed = False
    result: Result | None = None
    while result is None:
        if control.cancel.is_set() and not cancel_sent:
            cancel_sent = child.send(Cancel(token, control.reason or "cancel requested"))
        if control.force_applied and terminated_at is None:
            child.terminate()
            terminated_at = time.monotonic()
        if (
            terminated_at is not None
            and not killed
            and time.monotonic() - terminated_at >= control.kill_after
        ):
            child.kill()
            killed = True
        try:
            ready = child.conn.poll(0.05)
            message = child.conn.recv() if ready else None
        except (EOFError, OSError):
            break  # the child is gone
        except Exception as exc:
            why = f"child process sent a message that could not be read: {_name(exc)}"
            return _child_failed(op.id, pool, child, why)
        if message is None:
            if not child.alive:
                break
            continue
        try:
            ended = _on_message(control, child, token, message)
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            why = f"child process broke the protocol: {message!r:.200} ({_name(exc)})"
            return _child_failed(op.id, pool, child, why)
        if isinstance(ended, str):
            # The run never began in the child (its task could not be loaded), or the
            # child's reader failed: the attempt fails with that cause, and the child is
            # replaced (a half-imported script or a dead reader is no state to reuse).
            return _child_failed(op.id, pool, child, ended)
        result = ended
    if result is None:
        child.join(2.0)
        died = death_message(child.exitcode)
        pool.discard(child)
        if control.force_applied:
            return RunOutcome(Outcome.CANCELLED, error_message=died, forced=True)
        log.warning(
            "operation %s: %s",
            op.id,
            died,
            extra={"action": "child_died", "operation_id": str(op.id)},
        )
        return RunOutcome(Outcome.ERROR, error_message=died)
    telemetry.child_usage(result.cpu_seconds, result.peak_rss)
    if result.reading is not None:
        control.counter.load(Progress.from_json(result.reading), *result.versions)
    if terminated_at is not None:
        # It was told to die: whatever the task did to the process stays out of the pool.
        pool.discard(child)
    else:
        pool.release(
            child,
            result.rss,
            max_runs=task.max_runs_per_child,
            max_memory=task.max_memory_per_child,
        )
    return RunOutcome(
        Outcome(result.outcome),
        result_json=result.result_json,
        error_message=result.error,
        traceback=result.traceback,
        peak_rss=result.peak_rss,
    )


def _on_message(control: RunControl, child: Child, token: str, message: Any) -> Result | str | None:
    """Act on one message of the child (see :mod:`longops.worker.isolation`); returns the
    run's end when the message is one: its :class:`Result`, or the reason the run failed in
    the child before its code ran. A message the protocol does not have, or one whose
    fields have the wrong types, raises :class:`ProtocolError`."""
    match message:
        case ProgressReport(reading=dict(reading), version=int(version), step_version=int(step)):
            before = control.counter.step_version
            control.counter.load(Progress.from_json(reading), version, step)
            if step != before:
                telemetry.step_from(reading)
            if step != before and control.wake_monitor is not None:
                control.wake_monitor()
            return None
        case CheckpointRequest(
            state_json=str(text), reading=dict() | None, version=int(), step_version=int()
        ):
            at = message.reading
            progress = None if at is None else (at, message.version, message.step_version)
            saved = control.save_checkpoint(text, progress)
            child.send(Ack(token, saved))
            return None
        case Begun(token=str(begun)):
            if begun == token:
                control.code_began()
            return None
        case Result(
            outcome=str(outcome),
            result_json=str() | None,
            error=str() | None,
            traceback=str() | None,
            rss=int(),
            reading=dict() | None,
            versions=(int(), int()),
            cpu_seconds=float() | int(),
            peak_rss=int(),
        ) if outcome in _OUTCOMES:
            return message
        case LoadFailed(token=str(failed), message=str(why)) if failed == token:
            return why
        case Broken(message=str(why)):
            return f"child process failed: {why}"
        case _:
            raise ProtocolError(f"unexpected message {_kind(message)}")


_OUTCOMES = frozenset(o.value for o in Outcome)


def _kind(message: Any) -> str:
    """What a message that is not one of the protocol's says it is, for the error."""
    if isinstance(message, tuple) and message:
        return f"kind {message[0]!r}"
    return f"of type {type(message).__name__}"


def _name(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _child_failed(op_id: Any, pool: ChildPool, child: Child, message: str) -> RunOutcome:
    log.warning(
        "operation %s: %s",
        op_id,
        message,
        extra={"action": "child_failed", "operation_id": str(op_id)},
    )
    pool.discard(child)
    return RunOutcome(Outcome.ERROR, error_message=message[:MAX_ERROR_LENGTH])
