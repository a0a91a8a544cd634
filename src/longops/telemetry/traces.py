"""Traces: a ``send`` span when an operation is enqueued, a ``process`` span per attempt.

The ``send`` span's context (its W3C ``traceparent``) is stored on the operation. Each
attempt's ``process`` span is its child, so one trace runs from the request that enqueued to
every run, on whichever worker and however much later; it also carries a link to that
context, as OpenTelemetry's messaging conventions recommend. A recurring operation's runs
each start a trace of their own (one trace per run, not one growing forever), linked to the
creation context. Steps are child spans of the ``process`` span.

Attributes follow OpenTelemetry's messaging conventions (``messaging.system`` is
``longops``, the destination is the queue, the message id the operation id) plus
``longops.company``, ``longops.task``, ``longops.attempt``, ``longops.category`` and
``longops.operation.entry_no``. Errors are recorded by exception class only: the message of
an exception may hold customer content, which never leaves the process.
"""

from __future__ import annotations

import contextvars
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from time import time_ns
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation import _SPAN_KEY
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from longops.domain.operation import CancelMode, NewOperation, Operation, Outcome, StopMode
from longops.domain.status import Status as OpStatus
from longops.telemetry import catalogue as cat
from longops.telemetry import lean as lean_path
from longops.telemetry import providers
from longops.telemetry.events import AttrValue, emit, emit_with, operation_attributes, wanted
from longops.telemetry.events import log as events_log
from longops.telemetry.settings import settings

SYSTEM = "longops"
_PROPAGATOR = TraceContextTextMapPropagator()
_IDENT = re.compile(r"^[A-Za-z_][\w.]*$")


def _op_attributes(op: Operation | NewOperation) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.destination.name": op.queue,
        "messaging.message.id": str(op.id),
        "longops.company": op.company,
        "longops.task": op.task,
    }
    if op.category is not None:
        attrs["longops.category"] = op.category
    entry_no = getattr(op, "entry_no", None)
    if entry_no is not None:
        attrs["longops.operation.entry_no"] = entry_no
    return attrs


# -- send -------------------------------------------------------------------------------------
@dataclass
class Sending:
    """The ``send`` span of an enqueue: stamps operations with its context, then reports."""

    span: Span
    traceparent: str | None
    count: int = 0

    def stamp(self, new: NewOperation) -> NewOperation:
        """The operation to insert, carrying this span's context."""
        self.count += 1
        if self.traceparent is None:
            return new
        return replace(new, trace_context=self.traceparent)

    def sent(self, op: Operation, new: NewOperation) -> None:
        """Report the inserted ``op`` (LO0001), or that a dedup key matched (LO0002)."""
        created = op.id == new.id and op.created_at == new.created_at
        if self.span.is_recording():
            self.span.set_attributes(_op_attributes(op))
            if not created:
                self.span.set_attribute("longops.deduplicated", True)
        if created:
            emit(
                cat.ENQUEUED,
                op,
                status=op.status.value,
                earliestStartAt=op.earliest_start_at,
            )
            current = providers.current
            if current.enabled:
                current.instruments.sent.add(1, (op.queue, op.task))
        else:
            emit(cat.NOT_ENQUEUED, op)


@contextmanager
def sending(queue: str | None = None) -> Iterator[Sending]:
    """The ``send`` span around an enqueue (``queue`` None: a batch of many queues).

    Example::

        with sending(new.queue) as s:
            [op] = store.insert_operations([s.stamp(new)])
            s.sent(op, new)
    """
    if not providers.get().enabled and not trace.get_current_span().get_span_context().is_valid:
        # Telemetry off and no trace to continue: the no-op tracer's span would be the
        # invalid one and the context to stamp empty. Skip making them (a hot path).
        yield Sending(trace.INVALID_SPAN, None)
        return
    name = f"send {queue}" if queue else "send"
    attrs: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.name": "send",
        "messaging.operation.type": "send",
    }
    if queue:
        attrs["messaging.destination.name"] = queue
    with providers.get().tracer.start_as_current_span(
        name, kind=SpanKind.PRODUCER, attributes=attrs
    ) as span:
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        sending = Sending(span, carrier.get("traceparent"))
        yield sending
        if sending.count > 1 and span.is_recording():
            span.set_attribute("messaging.batch.message_count", sending.count)


# -- process ----------------------------------------------------------------------------------
class RunEnd(Protocol):
    """What the telemetry needs of a run's result (the store's ``RunResult`` has it)."""

    @property
    def outcome(self) -> Outcome: ...
    @property
    def status(self) -> OpStatus: ...
    @property
    def at(self) -> datetime: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def earliest_start_at(self) -> datetime | None: ...
    @property
    def error_message(self) -> str | None: ...
    @property
    def stop_mode(self) -> StopMode | None: ...
    @property
    def cancel_mode(self) -> CancelMode | None: ...


_Attempt = lean_path.Attempt


def _common(op: Operation) -> dict[str, AttrValue]:
    """``op``'s event dimensions: the current attempt's, when it is ``op``'s."""
    state = _attempt.get()
    if state is None or state.op is not op:
        return operation_attributes(op)
    if state.common is None:
        state.common = operation_attributes(op)
    return state.common


_attempt: contextvars.ContextVar[_Attempt | None] = contextvars.ContextVar(
    "longops_attempt", default=None
)


def _creation_context(op: Operation) -> trace.SpanContext | None:
    """The stored W3C ``traceparent``, parsed directly: the propagator's extract builds and
    reads back a whole context for it."""
    found = lean_path.traceparent(op.trace_context)
    if found is None:
        return None
    trace_id, span_id, flags = found
    return trace.SpanContext(trace_id, span_id, is_remote=True, trace_flags=trace.TraceFlags(flags))


def processing(op: Operation, run_no: int) -> AbstractContextManager[None]:
    """The ``process`` span of one attempt, current while the attempt runs here."""
    recorder = providers.get().lean
    if recorder is not None:
        return _LeanProcessing(recorder, op, run_no)
    return _processing(op, run_no)


@contextmanager
def _processing(op: Operation, run_no: int) -> Iterator[None]:
    if not providers.current.enabled:
        # No span; the attempt is still known, for the slow-step events the console shows.
        off = _Attempt(op, run_no, trace.INVALID_SPAN)
        off_token = _attempt.set(off)
        try:
            yield
        finally:
            _close_steps(off)
            _attempt.reset(off_token)
        return
    creation = _creation_context(op)
    parent: otel_context.Context = otel_context.Context()  # never an ambient span
    if creation is not None and op.recurrence is None:
        parent = trace.set_span_in_context(trace.NonRecordingSpan(creation), parent)
    attrs = _op_attributes(op)
    attrs.update(
        {
            "messaging.operation.name": "process",
            "messaging.operation.type": "process",
            "longops.attempt": op.attempt_count,
            "longops.run_no": run_no,
        }
    )
    span = providers.current.tracer.start_span(
        f"process {op.queue}",
        context=parent,
        kind=SpanKind.CONSUMER,
        links=[Link(creation)] if creation is not None else None,
        attributes=attrs,
    )
    state = _Attempt(op, run_no, span)
    state.cpu_started = time.thread_time()
    token = _attempt.set(state)
    try:
        with trace.use_span(span, end_on_exit=False, record_exception=False):
            yield
    except BaseException as exc:
        _error(state, type(exc).__qualname__)
        raise
    finally:
        _close_steps(state)
        _attempt.reset(token)
        _report_end(state)
        span.end()


class _LeanProcessing:
    """:func:`processing` on the lean path: the attempt (:class:`lean.SpanAttempt`) is its
    span's record and the span task code sees. This runs once per attempt on the worker's
    hot thread: two random ids, two clock and two CPU readings, the span made current, the
    record queued at the end; everything else is worked out on the export thread
    (``lean.py``). A class, not a generator, and apart from the attempt (no cycle)."""

    __slots__ = ("_attempt", "_tokens")

    def __init__(self, recorder: lean_path.Recorder, op: Operation, run_no: int) -> None:
        attempt = self._attempt = lean_path.SpanAttempt(op, run_no)
        attempt.recorder = recorder
        getrandbits = recorder.random.getrandbits
        attempt.random_trace_id = getrandbits(128) or 1
        attempt.span_id = getrandbits(64) or 1
        attempt.cpu_started = time.thread_time()
        attempt.start_ns = time.time_ns()

    def __enter__(self) -> None:
        attempt = self._attempt
        current = otel_context.get_current()
        # As trace.set_span_in_context(attempt) (a copy of the current context, with the
        # span), without the copy when there is nothing to copy (a worker's runner thread).
        context = (
            otel_context.Context({_SPAN_KEY: attempt})
            if not current
            else trace.set_span_in_context(attempt, current)
        )
        self._tokens = (_attempt.set(attempt), otel_context.attach(context))

    def __exit__(self, kind: type[BaseException] | None, exc: object, _tb: object) -> None:
        attempt = self._attempt
        attempt_token, context_token = self._tokens
        if kind is not None:
            _error(attempt, kind.__qualname__)
        if attempt.steps:
            _close_steps(attempt)
        otel_context.detach(context_token)
        _attempt.reset(attempt_token)
        attempt.cpu_ended = time.thread_time()
        attempt.end_ns = time.time_ns()
        attempt.recorder.add((0, lean_path.SPAN_MARK, attempt))  # type: ignore[union-attr]


def _report_end(state: _Attempt) -> None:
    """The attempt's outcome and what it used, on its span in one call (one lock taken and
    one attribute check, not one per attribute)."""
    span = state.span
    if not span.is_recording():
        return
    cpu = state.cpu_seconds
    if cpu is None:
        cpu = time.thread_time() - state.cpu_started
    attrs: dict[str, Any] = {
        "longops.cpu_seconds": lean_path.microseconds(cpu),
        "longops.sql.statements": state.sql_statements,
        "longops.sql.seconds": lean_path.microseconds(state.sql_seconds),
    }
    if state.peak_rss_bytes is not None:
        attrs["longops.peak_rss_bytes"] = state.peak_rss_bytes
    if state.outcome is not None:
        attrs.update(state.outcome)
    span.set_attributes(attrs)


def child_usage(cpu_seconds: float | None, peak_rss_bytes: int | None) -> None:
    """The resources a child process used for the current attempt (process isolation)."""
    state = _attempt.get()
    if state is not None:
        state.cpu_seconds = cpu_seconds
        state.peak_rss_bytes = peak_rss_bytes


def in_attempt() -> bool:
    """Whether an attempt runs in this context (its statements count on its span)."""
    return _attempt.get() is not None


def sql_used(elapsed: float) -> None:
    """One of longops's statements ran on the current attempt's thread."""
    state = _attempt.get()
    if state is not None:
        state.sql_statements += 1
        state.sql_seconds += elapsed


def _error(state: _Attempt, error_type: str) -> None:
    if state.recorder is not None:
        state.error(error_type)
        return
    span = state.span
    if span.is_recording():
        span.set_attribute("error.type", error_type)
        # The exception's class only: its message and traceback may hold customer content.
        span.add_event("exception", {"exception.type": error_type})
        span.set_status(Status(StatusCode.ERROR, error_type))


def error_type(error: BaseException | None, message: str | None) -> str:
    """A low-cardinality name for what went wrong: the exception class, or ``_OTHER``."""
    if error is not None:
        return type(error).__qualname__
    head = (message or "").split(":", 1)[0].strip()
    return head if _IDENT.match(head) else "_OTHER"


def _queued(
    recorder: lean_path.Recorder | None, op: Operation, run_no: int, event: cat.Event
) -> _Attempt | None:
    """The current attempt, when ``event`` of ``op``'s run ``run_no`` can be queued for the
    lean ``recorder`` as a reference to it (the export thread builds the record); None: the
    general way (no lean path, another attempt's thread, or a ``logging`` handler shows the
    event and wants its record now)."""
    if recorder is None:
        return None
    state = _attempt.get()
    if (
        state is not None
        and state.recorder is recorder
        and state.op is op
        and state.run_no == run_no
        and not events_log.isEnabledFor(event.level)
    ):
        return state
    return None


def started(op: Operation, run_no: int, at: datetime) -> None:
    """The attempt's code begins now (LO0003)."""
    current = providers.get()
    if not current.enabled and not events_log.isEnabledFor(cat.STARTED.level):
        return  # nothing would receive it (telemetry off or idle): build nothing
    state = _queued(current.lean, op, run_no, cat.STARTED)
    if state is not None:
        # The record, the counter and the queue wait: on the export thread.
        state.started_at = at
        state.recorder.add((time_ns(), lean_path.STARTED_MARK, state))  # type: ignore[union-attr]
        return
    due = max(op.earliest_start_at, op.ready_at or op.earliest_start_at)
    wait = max((at - due).total_seconds(), 0.0)
    if current.enabled or events_log.isEnabledFor(cat.STARTED.level):
        emit_with(
            cat.STARTED,
            _common(op),
            {
                "attempt": op.attempt_count,
                "runNo": run_no,
                "sessionId": op.session_id,
                "queueWaitInMs": round(wait * 1000),
            },
        )
    current = providers.current
    if not current.enabled:
        return
    # Metric attributes stay few and of low cardinality (each one costs on every record).
    instruments = current.instruments
    instruments.started.add(1, (op.queue, op.task))
    instruments.queue_wait.record(wait, (op.queue, op.task))


def ended(op: Operation, run_no: int, result: RunEnd, error: BaseException | None) -> None:
    """The attempt ended and where the operation goes next was decided: the event for it,
    the outcome on the ``process`` span, the attempt metrics."""
    current = providers.get()
    if (
        not current.enabled
        and result.outcome is Outcome.SUCCESS
        and not events_log.isEnabledFor(cat.FINISHED.level)
    ):
        return  # nothing would receive it (telemetry off or idle): build nothing
    if result.outcome is Outcome.SUCCESS:
        state = _queued(current.lean, op, run_no, cat.FINISHED)
        if state is not None:
            # The record, the outcome on the span, the counter and the duration: on the
            # export thread.
            state.result = result
            state.recorder.add((time_ns(), lean_path.FINISHED_MARK, state))  # type: ignore[union-attr]
            return
    outcome = result.outcome
    ms = (
        None
        if result.started_at is None
        else round((result.at - result.started_at).total_seconds() * 1000)
    )
    base: dict[str, Any] = {"attempt": op.attempt_count, "runNo": run_no}
    failed = outcome in (Outcome.ERROR, Outcome.TIMEOUT, Outcome.LOST)
    kind = error_type(error, result.error_message) if failed else None
    retry = result.status is OpStatus.READY
    if outcome is Outcome.SUCCESS:
        if wanted(cat.FINISHED):
            emit_with(
                cat.FINISHED,
                _common(op),
                {**base, "executionTimeInMs": ms, "nextStatus": result.status.value},
            )
    elif outcome is Outcome.ERROR:
        emit(
            cat.ATTEMPT_FAILED if retry else cat.FAILED,
            op,
            **base,
            executionTimeInMs=ms,
            outcome=outcome.value,
            errorType=kind,
            maxAttempts=op.max_attempts,
            **({"nextStartAt": result.earliest_start_at} if retry else {}),
        )
    elif outcome is Outcome.TIMEOUT:
        emit(
            cat.TIMED_OUT,
            op,
            **base,
            executionTimeInMs=ms,
            stopMode=None if result.stop_mode is None else result.stop_mode.value,
            nextStatus=result.status.value,
        )
    elif outcome is Outcome.CANCELLED:
        mode = result.cancel_mode or CancelMode.COOPERATIVE
        emit(cat.CANCELLED, op, cancelMode=mode.value, runNo=run_no, executionTimeInMs=ms)
    elif outcome is Outcome.LOST:
        emit(cat.RESCUED, op, **base, sessionId=op.session_id, nextStatus=result.status.value)
    elif outcome is Outcome.INTERRUPTED:
        emit(cat.INTERRUPTED, op, **base, sessionId=op.session_id)
    elif outcome is Outcome.SKIPPED:
        emit(cat.SKIPPED_RUN_WINDOW, op, nextStartAt=result.earliest_start_at)
    current = providers.current
    if not current.enabled:
        return
    state = _attempt.get()
    if state is not None and state.op.id == op.id and state.recording:
        # Set when the span ends, with the usage figures.
        state.outcome = {
            "longops.outcome": outcome.value,
            "longops.next_status": result.status.value,
        }
        if kind is not None:
            _error(state, kind)
    instruments = current.instruments
    labels = (op.queue, op.task, outcome.value)
    instruments.ended.add(1, labels)
    if ms is not None:
        instruments.duration.record(ms / 1000, labels)


# -- steps and timed sections -----------------------------------------------------------------
def step(name: str | None, index: int | None = None, of: int | None = None) -> None:
    """A step began in the current attempt: the previous one ends, a child span starts."""
    state = _attempt.get()
    if state is None:
        return
    _close_steps(state)
    if name is None:
        return
    attrs: dict[str, Any] = {"longops.step.name": name}
    if index is not None:
        attrs["longops.step.index"] = index
    if of is not None:
        attrs["longops.step.count"] = of
    # A child of the attempt's span, not made current: task code's own spans stay children
    # of the attempt, and nothing is attached that a later step would have to detach in order.
    span = providers.current.tracer.start_span(
        f"step {name}", context=trace.set_span_in_context(state.span), attributes=attrs
    )
    if state.steps is None:
        state.steps = []
    state.steps.append((span, name, time.monotonic()))


def step_from(reading: Mapping[str, Any]) -> None:
    """A step change relayed from a child process (its progress reading as JSON)."""
    found = reading.get("step") or {}
    step(found.get("name"), found.get("index"), found.get("of"))


def _close_steps(state: _Attempt) -> None:
    steps = state.steps
    while steps:
        span, name, began = steps.pop()
        span.end()
        _check_slow(state, name, time.monotonic() - began, settings().slow_step_after)


@contextmanager
def timed(name: str, threshold: float | None = None) -> Iterator[None]:
    """Time a section of task code: a child span, and the slow-step event (LO0023) when it
    takes longer than ``threshold`` seconds (default: the slow-step threshold)."""
    state = _attempt.get()
    began = time.monotonic()
    with providers.current.tracer.start_as_current_span(
        f"timed {name}", attributes={"longops.step.name": name}
    ):
        yield
    if state is not None:
        limit = settings().slow_step_after if threshold is None else threshold
        _check_slow(state, name, time.monotonic() - began, limit)


def _check_slow(state: _Attempt, name: str, elapsed: float, threshold: float) -> None:
    if elapsed < threshold:
        return
    emit(
        cat.SLOW_STEP,
        state.op,
        attempt=state.op.attempt_count,
        runNo=state.run_no,
        step=name,
        elapsedInMs=round(elapsed * 1000),
        thresholdInMs=round(threshold * 1000),
    )
