"""Tasks: named Python callables that operations run.

Example::

    registry = TaskRegistry()

    @registry.task(name="post_invoices", category="POSTING", max_attempts=3)
    def post_invoices(ctx: RunContext, month: str) -> int: ...
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, TypeVar, overload

from longops.domain.errors import NotFound, ValidationError
from longops.domain.limits import PayloadLimits
from longops.domain.operation import (
    DEFAULT_QUEUE,
    MAX_ATTEMPTS_LIMIT,
    MAX_RERUN_DELAY,
    Priority,
    _check_name,
    _timeout,
)
from longops.domain.progress import DEFAULT_STALL_AFTER, check_interval
from longops.domain.retry import CustomBackoff, CustomRetry, RetryPolicy
from longops.domain.security import PermissionSet
from longops.worker.arguments import arguments_schema, check_types
from longops.worker.context import RunContext
from longops.worker.memory import memory_size

F = TypeVar("F", bound=Callable[..., Any])
Isolation = Literal["thread", "process"]

DEFAULT_CANCEL_GRACE = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class TaskDef:
    """A registered task and its defaults for new operations."""

    name: str
    fn: Callable[..., Any]
    queue: str = DEFAULT_QUEUE
    category: str | None = None
    priority: Priority = Priority.NORMAL
    max_attempts: int = 1
    rerun_delay: int = 0
    timeout: timedelta = timedelta(hours=12)
    retry: RetryPolicy | None = None
    custom_retry: CustomRetry | None = None
    description: str | None = None
    is_async: bool = False
    wants_context: bool = False
    signature: inspect.Signature = field(default_factory=inspect.Signature)
    isolation: Isolation = "thread"
    """``thread`` (cheapest; cannot be killed) or ``process`` (a child process that can be
    killed: forced cancellation, enforced timeouts, memory limits, crash containment)."""
    cancel_grace: timedelta = DEFAULT_CANCEL_GRACE
    """How long running code has to stop by itself after a cancel request or its timeout,
    before it is stopped by force."""
    stall_after: timedelta = DEFAULT_STALL_AFTER
    progress_interval: timedelta | None = None
    """At most one progress write per this interval (None: the worker's setting)."""
    max_runs_per_child: int | None = None
    max_memory_per_child: int | None = None
    """Bytes of resident memory after which a child process is replaced (None: the
    worker's setting)."""
    requires: PermissionSet | None = None
    """Enqueueing it or setting it ready needs this permission set (or more)."""
    worker_wait: timedelta | None = None
    """How long an operation of it may wait for a worker that has the task (None: no
    limit); past it the operation fails with ``no_worker_for_task``."""

    def check_arguments(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """Refuse arguments that do not fit the task's signature, or whose types do not fit
        its annotations (nothing is enqueued)."""
        if kwargs or not _fits_positionally(self.signature, len(args)):
            self._bind(args, kwargs)
        check_types(self.fn, self.signature, args, kwargs)

    def _bind(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        try:
            self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            field = "kwargs" if "keyword argument" in str(exc) else "args"
            raise ValidationError(
                field, f"do not match task {self.name}{self.signature}: {exc}"
            ) from exc

    def arguments_schema(self) -> dict[str, Any]:
        """The JSON schema of the arguments (the one :meth:`check_arguments` enforces)."""
        return arguments_schema(self.fn, self.signature)

    @property
    def retry_policy(self) -> RetryPolicy | None:
        return CustomBackoff() if self.custom_retry is not None else self.retry


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_BOUNDS: dict[int, tuple[inspect.Signature, tuple[int, float] | None]] = {}


def _fits_positionally(sig: inspect.Signature, count: int) -> bool:
    """Whether ``count`` positional arguments and no keyword ones bind to ``sig``: what
    ``sig.bind(*args)`` decides, without its cost (enqueue is a hot path). False also when
    only ``bind`` can tell (a keyword-only parameter without a default)."""
    known = _BOUNDS.get(id(sig))
    if known is None or known[0] is not sig:
        known = (sig, _positional_bounds(sig))
        if len(_BOUNDS) < 10_000:
            _BOUNDS[id(sig)] = known  # the signature is kept: its id is not reused
    bounds = known[1]
    return bounds is not None and bounds[0] <= count <= bounds[1]


def _positional_bounds(sig: inspect.Signature) -> tuple[int, float] | None:
    """The least and most positional arguments ``sig`` takes without keywords; None when
    no count binds without keywords (a keyword-only parameter without a default)."""
    least, most = 0, 0.0
    for p in sig.parameters.values():
        if p.kind in _POSITIONAL:
            most += 1
            if p.default is p.empty:
                least = int(most)
        elif p.kind is p.VAR_POSITIONAL:
            most = float("inf")
        elif p.kind is p.KEYWORD_ONLY and p.default is p.empty:
            return None
    return least, most


def _wants_context(sig: inspect.Signature) -> bool:
    params = list(sig.parameters.values())
    if not params:
        return False
    first = params[0]
    annotation = first.annotation
    return first.name == "ctx" or annotation is RunContext or annotation == "RunContext"


class TaskRegistry:
    """Name → task. One per application."""

    def __init__(self, *, limits: PayloadLimits | None = None) -> None:
        self._tasks: dict[str, TaskDef] = {}
        self.limits = limits or PayloadLimits()
        """Size limits of the tasks' results and checkpoints (the app's)."""

    @overload
    def task(self, fn: F, /) -> F: ...

    @overload
    def task(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        queue: str = DEFAULT_QUEUE,
        category: str | None = None,
        priority: Priority | str = Priority.NORMAL,
        max_attempts: int = 1,
        rerun_delay: int = 0,
        timeout: timedelta | float | None = None,
        retry: RetryPolicy | CustomRetry | None = None,
        description: str | None = None,
        isolation: Isolation = "thread",
        cancel_grace: timedelta | float = DEFAULT_CANCEL_GRACE,
        stall_after: timedelta | float = DEFAULT_STALL_AFTER,
        progress_interval: timedelta | float | None = None,
        max_runs_per_child: int | None = None,
        max_memory_per_child: int | str | None = None,
        requires: PermissionSet | str | None = None,
        worker_wait: timedelta | float | None = None,
    ) -> Callable[[F], F]: ...

    def task(
        self,
        fn: F | None = None,
        /,
        *,
        name: str | None = None,
        queue: str = DEFAULT_QUEUE,
        category: str | None = None,
        priority: Priority | str = Priority.NORMAL,
        max_attempts: int = 1,
        rerun_delay: int = 0,
        timeout: timedelta | float | None = None,
        retry: RetryPolicy | CustomRetry | None = None,
        description: str | None = None,
        isolation: Isolation = "thread",
        cancel_grace: timedelta | float = DEFAULT_CANCEL_GRACE,
        stall_after: timedelta | float = DEFAULT_STALL_AFTER,
        progress_interval: timedelta | float | None = None,
        max_runs_per_child: int | None = None,
        max_memory_per_child: int | str | None = None,
        requires: PermissionSet | str | None = None,
        worker_wait: timedelta | float | None = None,
    ) -> F | Callable[[F], F]:
        """Register ``fn`` as a task; usable bare (``@task``) or with options.

        Options become the defaults of the task's operations; ``enqueue`` may override them.
        ``isolation="process"`` runs each attempt in a child process (which can be killed
        when it ignores a cancel request or its timeout for ``cancel_grace`` seconds);
        ``stall_after`` flags a run whose progress has not moved for that long.

        Example::

            @registry.task(name="recalc_costs", max_attempts=3, rerun_delay=60)
            def recalc_costs(item_no: str) -> None: ...

            @registry.task(name="render", isolation="process", cancel_grace=10, timeout=3600)
            def render(ctx: RunContext, report: str) -> None: ...
            @registry.task(name="close_year", requires="JOBQUEUE-ADMIN")
            def close_year(year: int) -> None: ...   # only admins may enqueue it

        ``max_memory_per_child``: bytes (a whole number) or a size such as ``"512MiB"``
        (``worker.memory.parse_size``: the units of ``--max-memory``).

        ``worker_wait``: an operation of the task that waited this long (since it was due)
        while no live worker session had the task fails with ``no_worker_for_task``
        (default: it waits as long as it takes; see docs/apps.md).
        """

        def register(func: F) -> F:
            self.add(
                func,
                name=name,
                queue=queue,
                category=category,
                priority=priority,
                max_attempts=max_attempts,
                rerun_delay=rerun_delay,
                timeout=timeout,
                retry=retry,
                description=description,
                isolation=isolation,
                cancel_grace=cancel_grace,
                stall_after=stall_after,
                progress_interval=progress_interval,
                max_runs_per_child=max_runs_per_child,
                max_memory_per_child=max_memory_per_child,
                requires=requires,
                worker_wait=worker_wait,
            )
            return func

        return register(fn) if fn is not None else register

    def add(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        queue: str = DEFAULT_QUEUE,
        category: str | None = None,
        priority: Priority | str = Priority.NORMAL,
        max_attempts: int = 1,
        rerun_delay: int = 0,
        timeout: timedelta | float | None = None,
        retry: RetryPolicy | CustomRetry | None = None,
        description: str | None = None,
        isolation: Isolation = "thread",
        cancel_grace: timedelta | float = DEFAULT_CANCEL_GRACE,
        stall_after: timedelta | float = DEFAULT_STALL_AFTER,
        progress_interval: timedelta | float | None = None,
        max_runs_per_child: int | None = None,
        max_memory_per_child: int | str | None = None,
        requires: PermissionSet | str | None = None,
        worker_wait: timedelta | float | None = None,
    ) -> TaskDef:
        task_name = name or f"{fn.__module__}.{fn.__qualname__}".removeprefix("__main__.")
        _check_name("task", task_name)
        _check_name("queue", queue)
        if category is not None:
            _check_name("category", category)
        if not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT:
            raise ValidationError("max_attempts", f"must be between 1 and {MAX_ATTEMPTS_LIMIT}")
        if not 0 <= rerun_delay <= MAX_RERUN_DELAY:
            raise ValidationError("rerun_delay", f"must be between 0 and {MAX_RERUN_DELAY} seconds")
        if task_name in self._tasks and self._tasks[task_name].fn is not fn:
            raise ValidationError("name", f"task {task_name} is already registered")
        if isolation not in ("thread", "process"):
            raise ValidationError("isolation", "must be 'thread' or 'process'", isolation)
        if isolation == "process" and "<locals>" in getattr(fn, "__qualname__", "<locals>"):
            # A child process finds the function by its module and name.
            raise ValidationError(
                "isolation",
                "process isolation needs a function defined at module level, "
                f"not {fn.__qualname__}",
            )
        grace = check_interval("cancel_grace", cancel_grace, low=0, high=86_400)
        stall = check_interval("stall_after", stall_after, low=1, high=7 * 86_400)
        interval = (
            None
            if progress_interval is None
            else check_interval("progress_interval", progress_interval, low=0.01, high=3600)
        )
        if max_runs_per_child is not None:
            if isinstance(max_runs_per_child, bool) or not isinstance(max_runs_per_child, int):
                raise ValidationError(
                    "max_runs_per_child", "must be a whole number", max_runs_per_child
                )
            if max_runs_per_child < 1:
                raise ValidationError(
                    "max_runs_per_child", "must be at least 1", max_runs_per_child
                )
        child_memory = (
            None
            if max_memory_per_child is None
            else memory_size(max_memory_per_child, "max_memory_per_child")
        )
        wait = (
            None
            if worker_wait is None
            else check_interval("worker_wait", worker_wait, low=1, high=365 * 86_400)
        )
        sig = inspect.signature(fn)
        wants_ctx = _wants_context(sig)
        if wants_ctx:
            sig = sig.replace(parameters=list(sig.parameters.values())[1:])
        custom: CustomRetry | None = None
        policy: RetryPolicy | None = None
        if retry is not None:
            if hasattr(retry, "to_json") and hasattr(retry, "delay"):
                policy = retry
            elif callable(retry):
                custom = retry
            else:
                raise ValidationError("retry", "must be a RetryPolicy or a callable")
        task = TaskDef(
            name=task_name,
            fn=fn,
            queue=queue,
            category=category,
            priority=Priority.parse(priority),
            max_attempts=max_attempts,
            rerun_delay=rerun_delay,
            timeout=_timeout(timeout),
            retry=policy,
            custom_retry=custom,
            description=description or (inspect.getdoc(fn) or "").split("\n")[0] or None,
            is_async=inspect.iscoroutinefunction(fn),
            wants_context=wants_ctx,
            signature=sig,
            isolation=isolation,
            cancel_grace=grace,
            stall_after=stall,
            progress_interval=interval,
            max_runs_per_child=max_runs_per_child,
            max_memory_per_child=child_memory,
            requires=None if requires is None else PermissionSet.parse(requires),
            worker_wait=wait,
        )
        self._tasks[task_name] = task
        return task

    def get(self, name: str) -> TaskDef:
        try:
            return self._tasks[name]
        except KeyError:
            raise NotFound("task", name) from None

    def resolve(self, task: str | Callable[..., Any] | TaskDef) -> TaskDef:
        if isinstance(task, TaskDef):
            return task
        if isinstance(task, str):
            try:
                return self.get(task)
            except NotFound:
                raise ValidationError("task", "must be a registered task name", task) from None
        for definition in self._tasks.values():
            if definition.fn is task:
                return definition
        raise ValidationError("task", "function is not registered as a task", repr(task))

    def merge(self, other: TaskRegistry) -> None:
        """Add every task of ``other`` (a worker serving several apps); a name two apps
        both register is refused.

        Example::

            combined.merge(billing.registry)
        """
        for task in other:
            mine = self._tasks.get(task.name)
            if mine is not None and mine.fn is not task.fn:
                raise ValidationError("name", f"task {task.name} is registered by two apps")
            self._tasks[task.name] = task

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __iter__(self) -> Any:
        return iter(sorted(self._tasks.values(), key=lambda t: t.name))

    def __len__(self) -> int:
        return len(self._tasks)
