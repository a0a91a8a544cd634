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
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from longops.domain.operation import CancelMode, NewOperation, Operation, Outcome, StopMode
from longops.domain.status import Status as OpStatus
from longops.telemetry import catalogue as cat
from longops.telemetry import lean as lean_path
from longops.telemetry import providers
from longops.telemetry.events import AttrValue, emit, emit_with, operation_attributes, wanted
from longops.telemetry.resources import Usage
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
            providers.current.instruments.sent.add(1, (op.queue, op.task))
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
    name = f"send {queue}" if queue else "send"
    attrs: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.name": "send",
        "messaging.operation.type": "send",
    }
    if queue:
        attrs["messaging.destination.name"] = queue
    with providers.current.tracer.start_as_current_span(
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


@dataclass
class _Attempt:
    op: Operation
    run_no: int
    span: Span
    steps: list[tuple[Span, str, float]] = field(default_factory=list)
    """The open step span: span, name, monotonic start."""
    usage: Usage = field(default_factory=lambda: Usage(time.thread_time()))
    common: dict[str, AttrValue] | None = None
    """The operation's event dimensions, built once for the attempt's events."""
    outcome: dict[str, Any] | None = None
    """The outcome attributes :func:`ended` decided, set on the span with the usage ones."""
    lean: lean_path.Span | None = None
    """The span's record on the lean path (``span`` is then a non-recording stand-in that
    carries its context: task code's spans and step spans are its children)."""

    @property
    def recording(self) -> bool:
        return self.lean is not None or self.span.is_recording()


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
    """The stored W3C ``traceparent`` (``00-<trace id>-<span id>-<flags>``), parsed directly:
    the propagator's extract builds and reads back a whole context for it."""
    parts = op.trace_context.split("-") if op.trace_context else ()
    if len(parts) < 4 or len(parts[1]) != 32 or len(parts[2]) != 16 or len(parts[3]) != 2:
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
    except ValueError:
        return None
    if parts[0] == "ff" or (parts[0] == "00" and len(parts) != 4):
        return None
    span_context = trace.SpanContext(
        trace_id, span_id, is_remote=True, trace_flags=trace.TraceFlags(flags & 0xFF)
    )
    return span_context if span_context.is_valid else None


def processing(op: Operation, run_no: int) -> AbstractContextManager[None]:
    """The ``process`` span of one attempt, current while the attempt runs here."""
    recorder = providers.current.lean
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
    """:func:`processing` on the lean path: what the SDK's tracer would do with its default
    sampler (parent-based, always on) and id generator, recorded as a lean span. A class,
    not a generator: this runs once per attempt on the worker's hot thread."""

    __slots__ = ("_context", "_record", "_recorder", "_state", "_token")

    def __init__(self, recorder: lean_path.Recorder, op: Operation, run_no: int) -> None:
        self._recorder = recorder
        creation = _creation_context(op)
        parent = creation if creation is not None and op.recurrence is None else None
        if parent is None:
            trace_id, flags, sampled = recorder.new_trace_id(), lean_path.RANDOM_TRACE_ID, True
        else:
            trace_id = parent.trace_id
            flags = parent.trace_flags & lean_path.RANDOM_TRACE_ID
            sampled = parent.trace_flags.sampled  # an unsampled parent: no span, as the SDK's
        span_id = recorder.new_span_id()
        common = operation_attributes(op)
        record = None
        if sampled:
            flags |= lean_path.SAMPLED
            shared = _lean_shared(op)
            attrs: dict[str, Any] = {"messaging.message.id": common["operationId"]}
            if op.entry_no is not None:
                attrs["longops.operation.entry_no"] = op.entry_no
            attrs["longops.attempt"] = op.attempt_count
            attrs["longops.run_no"] = run_no
            record = lean_path.Span(
                trace_id,
                span_id,
                flags,
                0 if parent is None else parent.span_id,
                shared["name"],  # type: ignore[arg-type]
                shared["attributes"],  # type: ignore[arg-type]
                attrs,
                None if creation is None else (creation.trace_id, creation.span_id),
            )
        self._record = record
        stand_in = trace.NonRecordingSpan(
            trace.SpanContext(
                trace_id, span_id, is_remote=False, trace_flags=trace.TraceFlags(flags)
            )
        )
        self._state = _Attempt(op, run_no, stand_in, lean=record, common=common)
        self._context = trace.set_span_in_context(stand_in)

    def __enter__(self) -> None:
        self._token = (_attempt.set(self._state), otel_context.attach(self._context))

    def __exit__(self, kind: type[BaseException] | None, exc: object, _tb: object) -> None:
        state = self._state
        attempt_token, context_token = self._token
        if kind is not None:
            _error(state, kind.__qualname__)
        _close_steps(state)
        otel_context.detach(context_token)
        _attempt.reset(attempt_token)
        record = self._record
        if record is not None:
            _report_end(state)
            record.end = time.time_ns()
            self._recorder.span(record)


_SHARED: dict[tuple[str, str, str, str | None], dict[str, object]] = {}


def _lean_shared(op: Operation) -> dict[str, object]:
    """The ``process`` span's name and the attributes every attempt of the same task in the
    same queue and company has: built once, one dict (its bytes are kept on export)."""
    key = (op.queue, op.company, op.task, op.category)
    found = _SHARED.get(key)
    if found is None:
        attrs = {
            "messaging.system": SYSTEM,
            "messaging.destination.name": op.queue,
            "longops.company": op.company,
            "longops.task": op.task,
            "messaging.operation.name": "process",
            "messaging.operation.type": "process",
        }
        if op.category is not None:
            attrs["longops.category"] = op.category
        if len(_SHARED) >= 1024:
            _SHARED.clear()
        found = _SHARED[key] = {"name": f"process {op.queue}", "attributes": attrs}
    return found


def _report_end(state: _Attempt) -> None:
    """The attempt's outcome and what it used, on its span in one call (one lock taken and
    one attribute check, not one per attribute)."""
    span = state.span
    if state.lean is None and not span.is_recording():
        return
    usage = state.usage
    cpu = usage.cpu_seconds
    if cpu is None:
        cpu = time.thread_time() - usage.cpu_started
    attrs: dict[str, Any] = {
        "longops.cpu_seconds": round(cpu, 6),
        "longops.sql.statements": usage.sql_statements,
        "longops.sql.seconds": round(usage.sql_seconds, 6),
    }
    if usage.peak_rss_bytes is not None:
        attrs["longops.peak_rss_bytes"] = usage.peak_rss_bytes
    if state.outcome is not None:
        attrs.update(state.outcome)
    if state.lean is not None:
        state.lean.attributes.update(attrs)
    else:
        span.set_attributes(attrs)


def child_usage(cpu_seconds: float | None, peak_rss_bytes: int | None) -> None:
    """The resources a child process used for the current attempt (process isolation)."""
    state = _attempt.get()
    if state is not None:
        state.usage.cpu_seconds = cpu_seconds
        state.usage.peak_rss_bytes = peak_rss_bytes


def sql_used(elapsed: float) -> None:
    """One of longops's statements ran on the current attempt's thread."""
    state = _attempt.get()
    if state is not None:
        state.usage.sql_statements += 1
        state.usage.sql_seconds += elapsed


def _error(state: _Attempt, error_type: str) -> None:
    if state.lean is not None:
        state.lean.error(error_type)
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


def started(op: Operation, run_no: int, at: datetime) -> None:
    """The attempt's code begins now (LO0003)."""
    due = max(op.earliest_start_at, op.ready_at or op.earliest_start_at)
    wait = max((at - due).total_seconds(), 0.0)
    if wanted(cat.STARTED):
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
    state.steps.append((span, name, time.monotonic()))


def step_from(reading: Mapping[str, Any]) -> None:
    """A step change relayed from a child process (its progress reading as JSON)."""
    found = reading.get("step") or {}
    step(found.get("name"), found.get("index"), found.get("of"))


def _close_steps(state: _Attempt) -> None:
    while state.steps:
        span, name, began = state.steps.pop()
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
