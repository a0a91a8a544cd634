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
from typing import Any, TypeVar, overload

from longops.domain.errors import NotFound, ValidationError
from longops.domain.operation import (
    DEFAULT_QUEUE,
    MAX_ATTEMPTS_LIMIT,
    MAX_RERUN_DELAY,
    Priority,
    _check_name,
    _timeout,
)
from longops.domain.retry import CustomBackoff, CustomRetry, RetryPolicy
from longops.domain.security import PermissionSet
from longops.worker.context import RunContext

F = TypeVar("F", bound=Callable[..., Any])


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
    requires: PermissionSet | None = None
    """Enqueueing it or setting it ready needs this permission set (or more)."""

    def check_arguments(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """Refuse arguments that do not fit the task's signature (nothing is enqueued)."""
        try:
            self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ValidationError(
                "args", f"do not match task {self.name}{self.signature}: {exc}"
            ) from exc

    @property
    def retry_policy(self) -> RetryPolicy | None:
        return CustomBackoff() if self.custom_retry is not None else self.retry


def _wants_context(sig: inspect.Signature) -> bool:
    params = list(sig.parameters.values())
    if not params:
        return False
    first = params[0]
    annotation = first.annotation
    return first.name == "ctx" or annotation is RunContext or annotation == "RunContext"


class TaskRegistry:
    """Name → task. One per application."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskDef] = {}

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
        requires: PermissionSet | str | None = None,
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
        requires: PermissionSet | str | None = None,
    ) -> F | Callable[[F], F]:
        """Register ``fn`` as a task; usable bare (``@task``) or with options.

        Options become the defaults of the task's operations; ``enqueue`` may override them.

        Example::

            @registry.task(name="recalc_costs", max_attempts=3, rerun_delay=60)
            def recalc_costs(item_no: str) -> None: ...

            @registry.task(name="close_year", requires="JOBQUEUE-ADMIN")
            def close_year(year: int) -> None: ...   # only admins may enqueue it
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
                requires=requires,
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
        requires: PermissionSet | str | None = None,
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
            requires=None if requires is None else PermissionSet.parse(requires),
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

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __iter__(self) -> Any:
        return iter(sorted(self._tasks.values(), key=lambda t: t.name))

    def __len__(self) -> int:
        return len(self._tasks)
