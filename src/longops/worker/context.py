"""The run context handed to task code that asks for it (a first parameter named ``ctx``,
or annotated ``RunContext``).

Progress calls change memory only; the worker writes them at most once per
``progress_interval`` (and at once on a step change). The cancellation signal, the
checkpoint and the resume state work the same whether the task runs in a thread of the
worker, on its event loop (an ``async def`` task) or in a child process. Progress and the
signal are plain memory from async code too; ``await ctx.acheckpoint(state)`` is the
checkpoint that does not hold up the event loop while it writes.

Example::

    @app.task(name="post_invoices")
    def post_invoices(ctx: RunContext, month: str) -> int:
        invoices = load(month)
        start = (ctx.resume_state or {}).get("next", 0)
        ctx.step("Posting lines", 2, 3)
        ctx.progress(start, total=len(invoices), unit="invoices")
        for n, invoice in enumerate(invoices[start:], start):
            post(invoice)
            ctx.advance()                      # raises OperationCancelled once asked to stop
            if n % 100 == 99:
                ctx.checkpoint({"next": n + 1})  # durable; the next attempt resumes here
        return len(invoices)
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, MutableMapping
from contextlib import AbstractContextManager
from typing import Any

from longops import telemetry
from longops.domain.errors import OperationCancelled, ValidationError
from longops.domain.limits import DEFAULT_MAX_CHECKPOINT_BYTES, PayloadLimits, dumps
from longops.domain.progress import ProgressCounter

CheckpointSink = Callable[[str], bool]
"""Stores a checkpoint (its JSON text) durably; False when the run no longer holds its lease."""


class _OperationAdapter(logging.LoggerAdapter[logging.Logger]):
    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return msg, kwargs


class RunContext:
    """What a running task may know and ask: who, where, which attempt, how far it got,
    whether to stop, and where a previous attempt left off."""

    def __init__(
        self,
        *,
        operation_id: uuid.UUID,
        company: str,
        user: str | None,
        attempt: int,
        task: str,
        cancel_event: threading.Event | None = None,
        counter: ProgressCounter | None = None,
        resume_state: Any = None,
        checkpoint_sink: CheckpointSink | None = None,
        on_step: Callable[[], None] | None = None,
        max_checkpoint_bytes: int = DEFAULT_MAX_CHECKPOINT_BYTES,
        max_message_chars: int | None = None,
    ) -> None:
        self.operation_id = operation_id
        self.company = company
        self.user = user
        """The user the operation runs on behalf of: who last set it ready."""
        self.attempt = attempt
        self.task = task
        self.resume_state: Any = resume_state
        """The state the last :meth:`checkpoint` of an earlier attempt stored, or None."""
        self._cancel = cancel_event or threading.Event()
        self._reason: str | None = None
        self._counter = counter or ProgressCounter()
        if max_message_chars is not None:
            self._counter.max_message = max_message_chars
        self._sink = checkpoint_sink
        self._on_step = on_step
        self._max_checkpoint = max_checkpoint_bytes
        self._logger: logging.LoggerAdapter[logging.Logger] | None = None

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger for the task's own lines (``longops.task.<task>``), each tagged with the
        operation and the attempt. Made on first use: most runs never log."""
        if self._logger is None:
            self._logger = _OperationAdapter(
                logging.getLogger(f"longops.task.{self.task}"),
                {
                    "operation_id": str(self.operation_id),
                    "attempt": self.attempt,
                    "action": "task_log",
                },
            )
        return self._logger

    # -- cancellation ---------------------------------------------------------------------
    @property
    def cancelled(self) -> bool:
        """True once the operation has been asked to stop (cancel request or timeout)."""
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        """Raise :class:`OperationCancelled` if the operation has been asked to stop."""
        if self._cancel.is_set():
            raise OperationCancelled(self._reason or "cancel requested")

    def request_stop(self, reason: str) -> None:
        """Set the cancellation signal (the worker calls this; task code need not)."""
        self._reason = reason
        self._cancel.set()

    # -- progress -------------------------------------------------------------------------
    def progress(
        self,
        completed: float | None = None,
        total: float | None = None,
        unit: str | None = None,
        message: str | None = None,
    ) -> None:
        """Report how far the work is: ``completed`` of ``total`` ``unit`` (any may be left
        out; None keeps the value reported before).

        Raises :class:`OperationCancelled` once the operation is asked to stop, and
        :class:`ValidationError` for a negative or non-finite number.
        """
        self.check_cancelled()
        self._counter.set(completed, total, unit, message)

    def advance(self, n: float = 1) -> None:
        """Add ``n`` to the completed count. Memory only, well under a microsecond: call it
        per item, however many items there are.

        Raises :class:`OperationCancelled` once the operation is asked to stop.
        """
        if self._cancel.is_set():
            raise OperationCancelled(self._reason or "cancel requested")
        self._counter.advance(n)

    def step(self, name: str, index: int, of: int) -> None:
        """Start a phase of multi-phase work: ``ctx.step("Posting lines", 2, 5)`` shows as
        "Step 2 of 5: Posting lines". The step's completed/total start afresh; the step
        change is written at once."""
        self.check_cancelled()
        self._counter.step(name, index, of)
        telemetry.step(name, index, of)
        if self._on_step is not None:
            self._on_step()

    def timed(self, name: str, threshold: float | None = None) -> AbstractContextManager[None]:
        """Time a section of the task: a span of its own, and the long-running event
        (LO0023, like a slow step) when it takes longer than ``threshold`` seconds (default
        ``LONGOPS_SLOW_STEP_AFTER``)::

            with ctx.timed("load ledger"):
                ledger = load_ledger(month)
        """
        return telemetry.timed(name, threshold)

    # -- checkpoints ----------------------------------------------------------------------
    def checkpoint(self, state: Any) -> None:
        """Store ``state`` (JSON) durably before returning; the next attempt of this
        operation (a retry, a rescue after a crash, a drain's hand-back) gets it as
        :attr:`resume_state`. A successful run clears it.

        Raises :class:`ValidationError` when the state is not JSON or is over the
        checkpoint limit (``LONGOPS_MAX_CHECKPOINT_BYTES``, 1 MiB by default), and
        :class:`OperationCancelled` when this run no longer holds its operation (it was
        declared lost and rescued): the work should stop.
        """
        try:
            text = dumps(state)  # as stored: non-ASCII text as UTF-8, not \\u escapes
        except (TypeError, ValueError) as exc:
            raise ValidationError("state", f"must be JSON-serialisable: {exc}") from exc
        PayloadLimits.check("state", text, self._max_checkpoint, "LONGOPS_MAX_CHECKPOINT_BYTES")
        if self._sink is None:
            raise ValidationError("checkpoint", "needs a worker: this context is not running")
        if not self._sink(text):
            self.request_stop("this run no longer holds its operation (its session was lost)")
            raise OperationCancelled(self._reason)

    async def acheckpoint(self, state: Any) -> None:
        """:meth:`checkpoint` for ``async def`` tasks: the durable write runs in a helper
        thread, so the worker's event loop (and the other async runs on it) go on meanwhile.
        Raises as :meth:`checkpoint` does::

            await ctx.acheckpoint({"next": n + 1})
        """
        await asyncio.to_thread(self.checkpoint, state)

    @property
    def counter(self) -> ProgressCounter:
        """The in-memory progress (read by the worker when it writes progress)."""
        return self._counter
