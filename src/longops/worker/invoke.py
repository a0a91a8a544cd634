"""Calling task code and classifying how it ended: the part of a run shared by threads and
child processes (which import nothing heavier than this, the context and the domain)."""

from __future__ import annotations

import asyncio
import threading
import traceback
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from longops.domain.errors import OperationCancelled
from longops.domain.limits import dumps
from longops.domain.operation import CancelMode, Outcome, StopMode
from longops.worker.context import RunContext

MAX_ERROR_LENGTH = 2048  # Business Central's Error Message field length


@dataclass(frozen=True, slots=True)
class RunOutcome:
    outcome: Outcome
    result_json: str | None = None
    error: BaseException | None = None
    error_message: str | None = None
    traceback: str | None = None
    forced: bool = False
    """The code was stopped by force (asyncio cancellation, a killed child process)."""
    stop_mode: StopMode | None = None
    cancel_mode: CancelMode | None = None
    peak_rss: int | None = None
    """Peak resident memory of the attempt's child process, in bytes (process isolation)."""


_loops = threading.local()


def _thread_loop() -> asyncio.AbstractEventLoop:
    # One event loop per runner thread, reused across runs: cheaper than asyncio.run().
    loop: asyncio.AbstractEventLoop | None = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _loops.loop = loop
    return loop


def close_thread_loop() -> None:
    """Close this thread's event loop, if it made one (a runner thread calls this as it
    ends, so no loop is left for the garbage collector)."""
    loop: asyncio.AbstractEventLoop | None = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        return
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
    _loops.loop = None


AsyncHook = Callable[[asyncio.AbstractEventLoop, "asyncio.Task[Any]"], None]
"""Told of the asyncio task an ``async def`` run became, so it can be cancelled by force."""


def invoke(
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    ctx: RunContext | None,
    is_async: bool,
    on_async_task: AsyncHook | None = None,
) -> RunOutcome:
    """Run task code (with ``ctx`` first when given) and classify how it ended."""
    call_args: list[Any] = [ctx, *args] if ctx is not None else list(args)
    try:
        if is_async:
            loop = _thread_loop()
            coro: Coroutine[Any, Any, Any] = fn(*call_args, **kwargs)
            task = loop.create_task(coro)
            if on_async_task is not None:
                on_async_task(loop, task)
            value = loop.run_until_complete(task)
        else:
            value = fn(*call_args, **kwargs)
    except BaseException as exc:  # SystemExit in task code must not end the worker
        return _failed(exc)
    return _returned(value)


async def invoke_async(
    fn: Callable[..., Coroutine[Any, Any, Any]],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    ctx: RunContext | None,
    on_async_task: AsyncHook | None = None,
) -> RunOutcome:
    """Await an ``async def`` task on the running loop (the worker's event loop thread) and
    classify how it ended, as :func:`invoke` does.

    The code runs as an asyncio task of its own, handed to ``on_async_task``: a forced stop
    cancels that task (``CancelledError`` inside the code), never the caller."""
    call_args: list[Any] = [ctx, *args] if ctx is not None else list(args)
    try:
        task = asyncio.ensure_future(fn(*call_args, **kwargs))
        if on_async_task is not None:
            on_async_task(asyncio.get_running_loop(), task)
        value = await task
    except BaseException as exc:
        return _failed(exc)
    return _returned(value)


def _failed(exc: BaseException) -> RunOutcome:
    if isinstance(exc, OperationCancelled):
        return RunOutcome(Outcome.CANCELLED, error=exc, error_message=str(exc))
    if isinstance(exc, asyncio.CancelledError):
        # Only a forced stop cancels the run's own asyncio task.
        return RunOutcome(
            Outcome.CANCELLED, error=exc, error_message="stopped by force", forced=True
        )
    message = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
    return RunOutcome(
        Outcome.ERROR,
        error=exc,
        error_message=message,
        traceback="".join(traceback.format_exception(exc)),
    )


def _returned(value: Any) -> RunOutcome:
    if value is None:
        return RunOutcome(Outcome.SUCCESS)
    try:
        return RunOutcome(Outcome.SUCCESS, result_json=dumps(value, compact=False))
    except (TypeError, ValueError):
        # A result JSON cannot carry is kept as its text rather than failing work that was done.
        return RunOutcome(Outcome.SUCCESS, result_json=dumps(repr(value), compact=False))
