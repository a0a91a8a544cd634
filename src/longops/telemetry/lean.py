"""The lean recording path: a worker's per-attempt telemetry as references in a queue,
turned into OTLP/HTTP in batches on an export thread.

When longops sets up the OpenTelemetry SDK itself for OTLP over HTTP (``configure()``, see
:func:`applies`), the ``process`` span of each attempt, every catalogue event's log record
and the two per-attempt histograms do not go through the SDK's objects. The attempt's
thread does the least it can: it keeps the attempt's state (:class:`Attempt`: the
operation, the run number, two random ids, clock readings, the run's result) and appends
a reference to it to a queue when the attempt starts, finishes and ends (three appends;
no attribute, text, id formatting or date arithmetic). The export thread
(``LongopsLeanExport``) reads the queue in batches and does the rest: the trace context
parsed from the stored ``traceparent``, the events' dimensions, the attempt's duration and
queue wait, the counters and histograms, and the OTLP protobuf bytes, written mostly by
joining bytes prepared once (the resource, the scope, each attribute's key and field
headers, the attributes a task, queue and company share, each event's fixed fields).

The records hold the same values, and the export thread writes the same OTLP messages as
the SDK path does (a test decodes both and compares them). Any other catalogue event is a
tuple (:data:`LogRecord`) in the same queue, in order.

Everything else still goes through the SDK: step and ``timed`` spans, task code's own
spans (children of the attempt's span, whose context is current while the attempt runs),
the ``send`` and ``notify`` spans, the other metrics. The lean records are sent by the SDK
exporters' own HTTP clients (endpoint, headers, compression, timeout, retries from
``OTEL_*``), and flushed when the SDK's providers are flushed or shut down (at exit);
before the SDK collects the metrics, the queue is read (:meth:`Recorder.digest`), so the
counters and histograms count every attempt recorded so far.

Example::

    recorder = Recorder(resource, span_exporter, log_exporter)
    recorder.log((time.time_ns(), event, common, dims, None, 0, 0, 0))
    recorder.force_flush()
"""

from __future__ import annotations

import atexit
import logging
import os
import random
import string
import struct
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from longops.telemetry import otlp
from longops.telemetry.catalogue import FINISHED, STARTED, Event

if TYPE_CHECKING:
    from longops.domain.operation import Operation
    from longops.telemetry.metrics import Instruments

log = logging.getLogger("longops.telemetry")

AttrValue = str | int | float | bool

SAMPLED = 0x01
RANDOM_TRACE_ID = 0x02

# What an attempt's entries in the queue stand for.
STARTED_MARK = 0
FINISHED_MARK = 1
SPAN_MARK = 2


def applies(env: Mapping[str, str] | None = None) -> bool:
    """Whether the lean path can stand in for the SDK's spans and log records: nothing in
    the environment asks for what only the SDK does (sampling, attribute limits, another
    id generator, exponential histograms, the SDK's own export metrics, switched off).
    ``LONGOPS_TELEMETRY=sdk`` keeps the SDK's objects throughout."""
    env = os.environ if env is None else env
    sampler = env.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if sampler not in ("", "parentbased_always_on"):
        return False
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_PYTHON_ID_GENERATOR"):
        return False
    histograms = env.get("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION", "")
    if histograms.strip().lower() not in ("", "explicit_bucket_histogram"):
        return False  # exponential histograms: the SDK's aggregation, not lean.Histogram
    limits = ("OTEL_ATTRIBUTE_", "OTEL_SPAN_", "OTEL_LOGRECORD_", "OTEL_EVENT_", "OTEL_LINK_")
    return not any(name.startswith(limits) and value for name, value in env.items())


def microseconds(seconds: float) -> float:
    """``seconds`` rounded to the microsecond (as ``round(seconds, 6)``, in a third of its
    time), as both paths export the attempt's CPU and SQL seconds."""
    return round(seconds * 1e6) / 1e6


def traceparent(text: str | None) -> tuple[int, int, int] | None:
    """A W3C ``traceparent`` (``00-<trace id>-<span id>-<flags>``, lowercase hex) as (trace
    id, span id, flags), None when it is not a valid one."""
    found = traceparent_bytes(text)
    if found is None:
        return None
    trace_id, span_id, flags = found
    return int.from_bytes(trace_id, "big"), int.from_bytes(span_id, "big"), flags


def traceparent_bytes(text: str | None) -> tuple[bytes, bytes, int] | None:
    """:func:`traceparent`, the ids as their bytes (what the encoder writes)."""
    if not text or len(text) < 55 or text[2] != "-" or text[35] != "-" or text[52] != "-":
        return None
    version = text[:2]
    if version == "ff" or (len(text) > 55 and (version == "00" or text[55] != "-")):
        return None
    digits = version + text[3:35] + text[36:52] + text[53:55]
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        return None
    if raw.hex() != digits:  # uppercase, or spaces bytes.fromhex lets by
        return None
    trace_id, span_id = raw[1:17], raw[17:25]
    if trace_id == _ZERO16 or span_id == _ZERO8:
        return None
    return trace_id, span_id, raw[25]


_ZERO16 = bytes(16)
_ZERO8 = bytes(8)
_PARSED: dict[str | None, tuple[bytes, bytes, int] | None] = {}
"""Stored ``traceparent`` texts parsed (:meth:`Attempt.ids`), by their text."""
_UNPARSED: Any = object()
_Ids = tuple[bytes, int, bytes, "tuple[bytes, bytes] | None"]


class Attempt:
    """One attempt while it runs, on every path: what the hooks keep (steps, resources,
    the outcome); on the lean path (``recorder`` set) also its ``process`` span's record,
    read by the export thread once the attempt's entries are queued.

    Plain attributes with class defaults (not slots): creating one sets only a few."""

    span: trace.Span = trace.INVALID_SPAN
    """The SDK's span (the lean path's attempt is its own: :class:`SpanAttempt`)."""
    steps: list[tuple[Any, str, float]] | None = None
    """The open step span: span, name, monotonic start."""
    cpu_seconds: float | None = None
    """Set for process-isolated attempts (the child's CPU); else the thread's, measured."""
    cpu_ended: float = 0.0
    peak_rss_bytes: int | None = None
    sql_statements: int = 0
    sql_seconds: float = 0.0
    common: dict[str, AttrValue] | None = None
    """The operation's event dimensions, built once for the attempt's events (SDK path)."""
    outcome: dict[str, Any] | None = None
    """The outcome attributes ``ended`` decided when it took the general way."""
    recorder: Recorder | None = None
    # The lean path's record.
    random_trace_id: int = 0
    """The trace id when the attempt has no parent (no creation context, or recurring)."""
    span_id: int = 0
    start_ns: int = 0
    end_ns: int = 0
    started_at: datetime | None = None
    """When the code began (``started``), for the queue wait."""
    result: Any = None
    """The run's result (a ``RunEnd``), when ``ended`` took the quick way (a success)."""
    extra: dict[str, AttrValue] | None = None
    events: list[tuple[int, str, dict[str, AttrValue]]] | None = None
    status: tuple[int, str] | None = None
    _ids: _Ids | None = None
    # Written by the export thread only.
    encoded: _Parts | None = None

    cpu_started: float = 0.0
    """The thread's CPU time when the attempt began (read only when it is exported: a
    system call of a few microseconds)."""

    def __init__(self, op: Operation, run_no: int, span: trace.Span | None = None) -> None:
        self.op = op
        self.run_no = run_no
        if span is not None:
            self.span = span

    @property
    def recording(self) -> bool:
        if self.recorder is not None:
            return bool(self.ids()[1] & SAMPLED)
        return self.span.is_recording()

    def ids(self) -> _Ids:
        """(trace id, trace flags, parent span id or ``b""``, the creation context (trace
        id, span id) or None) of the lean span, the ids as their bytes: what the SDK's
        tracer would decide with its default sampler (parent-based, always on). Worked out
        when first asked (the same answer on any thread: the random ids are drawn when the
        attempt begins)."""
        found = self._ids
        if found is None:
            op = self.op
            text = op.trace_context
            # The operations of one enqueue share its ``send`` span's context: parsed once.
            creation = _PARSED.get(text, _UNPARSED)
            if creation is _UNPARSED:
                creation = traceparent_bytes(text)
                if len(_PARSED) >= 4096:
                    _PARSED.clear()
                _PARSED[text] = creation
            if creation is not None and op.recurrence is None:
                trace_id, parent_id, parent_flags = creation
                flags = (parent_flags & RANDOM_TRACE_ID) | (parent_flags & SAMPLED)
            else:
                trace_id = self.random_trace_id.to_bytes(16, "big")
                parent_id, flags = b"", RANDOM_TRACE_ID | SAMPLED
            link = None if creation is None else (creation[0], creation[1])
            found = self._ids = (trace_id, flags, parent_id, link)
        return found

    def error(self, error_type: str) -> None:
        """As the SDK path's ``_error``: the type as an attribute, an ``exception`` event and
        the ERROR status, by class name only."""
        if self.extra is None:
            self.extra = {}
        self.extra["error.type"] = error_type
        if self.events is None:
            self.events = []
        self.events.append((time.time_ns(), "exception", {"exception.type": error_type}))
        self.status = (2, error_type)


class SpanAttempt(Attempt, trace.NonRecordingSpan):
    """An attempt on the lean path, which is also its span as task code and the SDK's step
    spans see it (their parent): a non-recording span whose context is built when first
    asked for. One object, and no reference cycle (an attempt holding a separate stand-in
    that points back would be freed only by the garbage collector)."""

    _built: trace.SpanContext | None = None

    @property
    def span(self) -> trace.Span:  # type: ignore[override]
        return self

    def get_span_context(self) -> trace.SpanContext:
        found = self._built
        if found is None:
            trace_id, flags, _, _ = self.ids()
            found = self._built = trace.SpanContext(
                int.from_bytes(trace_id, "big"),
                self.span_id,
                is_remote=False,
                trace_flags=trace.TraceFlags(flags),
            )
        return found

    def __repr__(self) -> str:
        return f"SpanAttempt({self.get_span_context()!r})"


LogRecord = tuple[
    int, Event, "Mapping[str, AttrValue] | None", "Mapping[str, AttrValue]", "str | None", int,
    int, int,
]  # fmt: skip
"""(observed time ns, event, the operation's dimensions or None, the other dimensions
(converted, no None), the message or None (formatted on export), trace id, span id, trace
flags)."""


# -- the encoding -----------------------------------------------------------------------------
_FIXED64 = otlp._FIXED64
_FIXED32 = otlp._FIXED32
_DOUBLE = otlp._DOUBLE


class _Counts:
    """What a batch adds to the metrics for one task in one queue: the queue waits of its
    attempts that started, the durations of those that succeeded (``finished``: how many)."""

    __slots__ = ("durations", "finished", "key", "touched", "waits")

    def __init__(self, key: tuple[str, str]) -> None:
        self.key = key
        self.waits: list[float] = []
        self.durations: list[float] = []
        self.finished = 0
        self.touched = False


_Group = tuple[bytes, bytes, bytes, _Counts]
_Parts = tuple[bytes, bytes, bytes, bytes, bytes, _Group]
_TIMES = struct.Struct("<BQBQ").pack
_IDS = struct.Struct(">H16sHQ").pack
_IDS_PARENT = struct.Struct(">H16sHQH8s").pack
_LOG_CONTEXT = struct.Struct(">H16sHQ").pack
_LINK = struct.Struct(">HH16sH8s5s").pack
_OBSERVED = struct.Struct("<BQ").pack
_FIELD2 = struct.Struct("BBB").pack
_SMALL = otlp._SMALL
_varint = otlp._varint
_EVERY_ATTEMPT = frozenset((STARTED.id, FINISHED.id))
_SEVERITY = {logging.INFO: 9, logging.WARNING: 13}  # as events.py maps them (else INFO)


def _head(tag: bytes, key: str, size: int) -> bytes:
    """The bytes of a ``tag`` attribute field (a KeyValue) named ``key`` up to the content
    of its value, for an AnyValue of ``size`` bytes: what precedes the value's bytes."""
    raw = key.encode()
    pair = b"\x0a" + _varint(len(raw)) + raw + b"\x12" + _varint(size)
    return tag + _varint(len(pair) + size) + pair


def _int_heads(tag: bytes, key: str) -> tuple[bytes, ...]:
    """By the length of the value's varint (1 to 10 bytes): the bytes before it."""
    return tuple(_head(tag, key, 1 + n) + b"\x18" for n in range(11))


def _int(heads: tuple[bytes, ...], n: int) -> bytes:
    if 0 <= n < 128:
        return heads[1] + _SMALL[n]
    raw = _varint(n)
    return heads[len(raw)] + raw


def _small(heads: tuple[bytes, ...]) -> tuple[bytes, ...]:
    """The whole attribute for each value 0 to 127 (attempt and run numbers, counts)."""
    return tuple(heads[1] + _SMALL[n] for n in range(128))


def _uuid_head(tag: bytes, key: str) -> bytes:
    """Before a 36-character text (a UUID)."""
    return _head(tag, key, 38) + b"\x0a\x24"


def _double_head(tag: bytes, key: str) -> bytes:
    return _head(tag, key, 9) + b"\x21"


_SPAN_MESSAGE_ID = _uuid_head(b"\x4a", "messaging.message.id")
_SPAN_ENTRY_NO = _int_heads(b"\x4a", "longops.operation.entry_no")
_SPAN_ATTEMPT = _int_heads(b"\x4a", "longops.attempt")
_SPAN_RUN_NO = _int_heads(b"\x4a", "longops.run_no")
_SPAN_SMALL_SQL_STATEMENTS = _small(_int_heads(b"\x4a", "longops.sql.statements"))
_SPAN_CPU = _double_head(b"\x4a", "longops.cpu_seconds")
_SPAN_SQL_STATEMENTS = _int_heads(b"\x4a", "longops.sql.statements")
_SPAN_SQL_SECONDS = _double_head(b"\x4a", "longops.sql.seconds")
_SPAN_PEAK_RSS = _int_heads(b"\x4a", "longops.peak_rss_bytes")
_SPAN_FLAGS = (
    b"\x85\x01" + _FIXED32(otlp._FLAGS_HAS_IS_REMOTE),
    b"\x85\x01" + _FIXED32(otlp._FLAGS_HAS_IS_REMOTE | otlp._FLAGS_IS_REMOTE),
)
_LINK_FLAGS = b"\x35" + _FIXED32(otlp._FLAGS_HAS_IS_REMOTE | otlp._FLAGS_IS_REMOTE)
_STATUS_UNSET_FLAGS = (b"\x7a\x00" + _SPAN_FLAGS[0], b"\x7a\x00" + _SPAN_FLAGS[1])
_USAGE = struct.Struct(f"<{len(_SPAN_CPU)}sd{len(_SPAN_SQL_SECONDS)}sd").pack
_LOG_OPERATION_ID = _uuid_head(b"\x32", "operationId")
_LOG_ENTRY_NO = _int_heads(b"\x32", "entryNo")
_LOG_ATTEMPT = _int_heads(b"\x32", "attempt")
_LOG_RUN_NO = _int_heads(b"\x32", "runNo")
_LOG_SMALL_QUEUE_WAIT = _small(_int_heads(b"\x32", "queueWaitInMs"))
_LOG_SMALL_EXECUTION_TIME = _small(_int_heads(b"\x32", "executionTimeInMs"))
_LOG_SESSION_ID = _uuid_head(b"\x32", "sessionId")
_LOG_QUEUE_WAIT = _int_heads(b"\x32", "queueWaitInMs")
_LOG_EXECUTION_TIME = _int_heads(b"\x32", "executionTimeInMs")


class _Encoder:
    """OTLP bytes of lean records. The bytes of an attribute whose value repeats (a text of
    up to 64 characters, an integer under 1,024) are kept and reused, and so are those of
    what the attempts of one task in one queue and company share."""

    def __init__(self, limit: int = 16_384) -> None:
        self._limit = limit
        self._kept: dict[tuple[bytes, str, AttrValue], bytes] = {}
        """By (tag, key, value), for texts and integers only: 1 == 1.0 == True as keys."""
        self._keys: dict[str, bytes] = {}
        self._events: dict[str, tuple[bytes, bytes, bytes]] = {}
        self._fields: dict[str, tuple[str, ...]] = {}
        self._dims_kept: dict[tuple[object, ...], bytes] = {}
        self._groups: dict[tuple[str, str, str, str | None], _Group] = {}
        self.touched: list[_Counts] = []
        """The counts with values to add to the metrics (:meth:`Recorder._count`)."""
        self._outcomes: dict[tuple[object, object], bytes] = {}
        self._next_status: dict[object, bytes] = {}
        self._numbers: dict[tuple[int, int], tuple[bytes, bytes]] = {}
        self._sessions: dict[object, bytes] = {}
        self._bodies: dict[str, bytes] = {}
        self._fast = [(*self._event(event)[:1], self._body(event) or b"", *self._event(event)[1:])
                      for event in (STARTED, FINISHED)]  # fmt: skip
        """LO0003's and LO0004's head, body up to the operation id, ids, tail."""

    def attribute(self, tag: bytes, key: str, value: AttrValue) -> bytes:
        kind = type(value)
        if kind is str or kind is int:
            found = self._kept.get((tag, key, value))
            if found is not None:
                return found
        key_bytes = self._keys.get(key)
        if key_bytes is None:
            raw = key.encode()
            key_bytes = self._keys[key] = b"\x0a" + _varint(len(raw)) + raw
        if kind is str:
            raw = value.encode()  # type: ignore[union-attr]
            encoded = b"\x0a" + _varint(len(raw)) + raw
        elif kind is bool:
            encoded = b"\x10\x01" if value else b"\x10\x00"
        elif kind is int:
            encoded = b"\x18" + _varint(value)  # type: ignore[arg-type]
        elif kind is float:
            encoded = b"\x21" + _DOUBLE(value)
        else:
            encoded = otlp._value(value)
        pair = key_bytes + b"\x12" + _varint(len(encoded)) + encoded
        out = tag + _varint(len(pair)) + pair
        if (kind is str and len(value) <= 64) or (kind is int and 0 <= value < 1024):  # type: ignore[arg-type, operator]
            if len(self._kept) >= self._limit:
                self._kept.clear()
            self._kept[(tag, key, value)] = out
        return out

    def attributes(self, tag: bytes, attributes: Mapping[str, AttrValue]) -> bytes:
        kept = self._kept
        out = []
        for key, value in attributes.items():
            kind = type(value)
            if kind is str or kind is int:
                found = kept.get((tag, key, value))
                if found is not None:
                    out.append(found)
                    continue
            out.append(self.attribute(tag, key, value))
        return b"".join(out)

    # -- an attempt's records -----------------------------------------------------------------
    def _group(self, op: Operation) -> _Group:
        """What the attempts of one task in one queue and company share: the span's name and
        kind, the span's attributes, the events' dimensions (after the operation's id), and
        their counts for the metrics."""
        key = (op.queue, op.company, op.task, op.category)
        found = self._groups.get(key)
        if found is None:
            name = f"process {op.queue}".encode()
            span: dict[str, AttrValue] = {
                "messaging.system": "longops",
                "messaging.destination.name": op.queue,
                "longops.company": op.company,
                "longops.task": op.task,
                "messaging.operation.name": "process",
                "messaging.operation.type": "process",
            }
            dims: dict[str, AttrValue] = {"company": op.company, "task": op.task, "queue": op.queue}
            if op.category is not None:
                span["longops.category"] = op.category
                dims["category"] = op.category
            if len(self._groups) >= 1024:
                self._groups.clear()  # an attempt keeps its own, and its counts with it
            found = self._groups[key] = (
                b"\x2a" + _varint(len(name)) + name + b"\x30\x05",  # SPAN_KIND_CONSUMER
                self.attributes(b"\x4a", span),
                self.attributes(b"\x32", dims),
                _Counts((op.queue, op.task)),
            )
        return found

    def _numbers_of(self, attempt: Attempt) -> tuple[bytes, bytes]:
        """The attempt and run numbers as the span's attributes and as the events'."""
        key = (attempt.op.attempt_count, attempt.run_no)
        found = self._numbers.get(key)
        if found is None:
            if len(self._numbers) >= 4096:
                self._numbers.clear()
            found = self._numbers[key] = (
                _int(_SPAN_ATTEMPT, key[0]) + _int(_SPAN_RUN_NO, key[1]),
                _int(_LOG_ATTEMPT, key[0]) + _int(_LOG_RUN_NO, key[1]),
            )
        return found

    def _parts(self, attempt: Attempt) -> _Parts:
        """What the attempt's span and both records share, written once: the operation id,
        the records' trace context fields, the operation's dimensions and the attempt and
        run numbers (as the events' dimensions, as the span's attributes), and the bytes of
        its task, queue and company (:meth:`_group`)."""
        found = attempt.encoded
        if found is None:
            trace_id, flags, _, _ = attempt.ids()
            op = attempt.op
            operation_id = str(op.id).encode()
            context = _LOG_CONTEXT(0x4A10, trace_id, 0x5208, attempt.span_id)
            if flags:
                context = b"\x45" + _FIXED32(flags) + context
            group = self._groups.get((op.queue, op.company, op.task, op.category))
            if group is None:
                group = self._group(op)
            span_numbers, log_numbers = self._numbers_of(attempt)
            entry_no: int | None = op.entry_no  # guarded as the SDK path is
            if entry_no is None:
                common = _LOG_OPERATION_ID + operation_id + group[2]
            else:
                # The entry number's varint once, for the records and for the span.
                raw = _SMALL[entry_no] if 0 <= entry_no < 128 else _varint(entry_no)
                size = len(raw)
                common = _LOG_OPERATION_ID + operation_id + _LOG_ENTRY_NO[size] + raw + group[2]
                span_numbers = _SPAN_ENTRY_NO[size] + raw + span_numbers
            found = attempt.encoded = (
                operation_id,
                context,
                common,
                log_numbers,
                span_numbers,
                group,
            )
        return found

    def span(self, attempt: Attempt) -> bytes | None:
        """The attempt's ``process`` span (None: its parent was not sampled)."""
        trace_id, flags, parent_id, link = attempt.ids()
        if not flags & SAMPLED:
            return None
        parts = attempt.encoded
        if parts is None:
            parts = self._parts(attempt)
        operation_id, _, _, _, numbers, (name_kind, shared, _, _) = parts
        cpu = attempt.cpu_seconds
        if cpu is None:
            cpu = attempt.cpu_ended - attempt.cpu_started
        statements = attempt.sql_statements
        out = [
            _IDS_PARENT(0x0A10, trace_id, 0x1208, attempt.span_id, 0x2208, parent_id)
            if parent_id
            else _IDS(0x0A10, trace_id, 0x1208, attempt.span_id),
            name_kind,
            _TIMES(0x39, attempt.start_ns, 0x41, attempt.end_ns),
            shared,
            _SPAN_MESSAGE_ID,
            operation_id,
            numbers,  # the entry number (if any), the attempt and run numbers
            _SPAN_SMALL_SQL_STATEMENTS[statements]
            if 0 <= statements < 128
            else _int(_SPAN_SQL_STATEMENTS, statements),
            _USAGE(_SPAN_CPU, round(cpu * 1e6) / 1e6, _SPAN_SQL_SECONDS,
                   round(attempt.sql_seconds * 1e6) / 1e6),
        ]  # fmt: skip
        if attempt.peak_rss_bytes is not None:
            out.append(_int(_SPAN_PEAK_RSS, attempt.peak_rss_bytes))
        result = attempt.result
        if result is not None:
            key = (result.outcome, result.status)  # by the members: .value costs a lookup
            found = self._outcomes.get(key)
            if found is None:
                found = self._outcomes[key] = self.attributes(
                    b"\x4a",
                    {
                        "longops.outcome": result.outcome.value,
                        "longops.next_status": result.status.value,
                    },
                )
            out.append(found)
        elif attempt.outcome is not None:
            out.append(self.attributes(b"\x4a", attempt.outcome))
        if attempt.extra is not None:
            out.append(self.attributes(b"\x4a", attempt.extra))
        if attempt.events is not None:
            for at, event_name, attributes in attempt.events:
                raw = event_name.encode()
                body = (
                    b"\x09"
                    + _FIXED64(at)
                    + b"\x12"
                    + _varint(len(raw))
                    + raw
                    + self.attributes(b"\x1a", attributes)
                )
                out.append(b"\x5a" + _varint(len(body)) + body)
        if link is not None:
            out.append(_LINK(0x6A21, 0x0A10, link[0], 0x1208, link[1], _LINK_FLAGS))
        if attempt.status is None:
            out.append(_STATUS_UNSET_FLAGS[1 if parent_id else 0])
        else:
            code, description = attempt.status
            raw = description.encode()
            body = b"\x12" + _varint(len(raw)) + raw + b"\x18" + _varint(code)
            out.append(b"\x7a" + _varint(len(body)) + body)
            out.append(_SPAN_FLAGS[1 if parent_id else 0])
        return _framed(b"".join(out))

    def _body(self, event: Event) -> bytes | None:
        """The bytes of the body field of ``event``'s records up to the operation id, for a
        message ``"<text>{operationId}"`` (the operation id: 36 characters)."""
        found = self._bodies.get(event.id)
        if found is None:
            text = event.message.removesuffix("{operationId}")
            if text == event.message or "{" in text or "}" in text:
                found = b""
            else:
                raw = text.encode()
                size = len(raw) + 36
                value = b"\x0a" + _varint(size) + raw
                found = b"\x2a" + _varint(len(value) + 36) + value
            self._bodies[event.id] = found
        return found or None

    def started(self, attempt: Attempt, observed: int) -> bytes:
        """LO0003 of the attempt; its queue wait kept on it, for the histogram."""
        parts = attempt.encoded
        if parts is None:
            parts = self._parts(attempt)
        op = attempt.op
        due = op.earliest_start_at
        ready = op.ready_at
        if ready is not None and ready > due:
            due = ready
        at = attempt.started_at
        wait = 0.0 if at is None else (at - due).total_seconds()
        if wait < 0.0:
            wait = 0.0
        counts = parts[5][3]
        counts.waits.append(wait)
        if not counts.touched:
            counts.touched = True
            self.touched.append(counts)
        ms = round(wait * 1000)
        session = op.session_id
        if session is None:
            session_bytes = b""
        else:
            key = session.int  # hashed in C (a UUID's own hash is Python code)
            session_bytes = self._sessions.get(key, b"")
            if not session_bytes:
                if len(self._sessions) >= 1024:
                    self._sessions.clear()
                session_bytes = _LOG_SESSION_ID + str(session).encode()
                self._sessions[key] = session_bytes
        wait_bytes = _LOG_SMALL_QUEUE_WAIT[ms] if ms < 128 else _int(_LOG_QUEUE_WAIT, ms)
        return _attempt_record(self._fast[0], parts, session_bytes, wait_bytes, observed)

    def finished(self, attempt: Attempt, observed: int) -> bytes:
        """LO0004 of the attempt (it succeeded); its duration kept on it, for the histogram."""
        parts = attempt.encoded
        if parts is None:
            parts = self._parts(attempt)
        result = attempt.result
        began = result.started_at
        if began is None:
            ms = None
            took = b""
        else:
            ms = round((result.at - began).total_seconds() * 1000)
            took = _LOG_SMALL_EXECUTION_TIME[ms] if 0 <= ms < 128 else _int(_LOG_EXECUTION_TIME, ms)
        counts = parts[5][3]
        counts.finished += 1
        if ms is not None:
            counts.durations.append(ms / 1000)
        if not counts.touched:
            counts.touched = True
            self.touched.append(counts)
        status = result.status
        next_status = self._next_status.get(status)
        if next_status is None:
            next_status = self.attribute(b"\x32", "nextStatus", status.value)
            self._next_status[status] = next_status
        return _attempt_record(self._fast[1], parts, took, next_status, observed)

    # -- any other event ------------------------------------------------------------------
    def _event(self, event: Event) -> tuple[bytes, bytes, bytes]:
        """The bytes every record of ``event`` starts with (severity), carries (its ids) and
        ends with (its name)."""
        found = self._events.get(event.id)
        if found is None:
            severity = _SEVERITY.get(event.level, 9)
            text = logging.getLevelName(event.level).encode()
            head = b"\x10" + _varint(severity) + b"\x1a" + _varint(len(text)) + text
            ids = self.attribute(b"\x32", "eventId", event.id)
            if event.bc_id is not None:
                ids += self.attribute(b"\x32", "bcEventId", event.bc_id)
            name = f"longops.{event.name}".encode()
            tail = b"\x62" + _varint(len(name)) + name
            found = self._events[event.id] = (head, ids, tail)
        return found

    def _text(self, event: Event, common: Mapping[str, AttrValue] | None, dims: Any) -> str:
        fields = self._fields.get(event.id)
        if fields is None:
            fields = self._fields[event.id] = tuple(
                name for _, name, _, _ in string.Formatter().parse(event.message) if name
            )
        if fields == ("operationId",) and common is not None and "operationId" in common:
            return event.message.format(operationId=common["operationId"])
        values: dict[str, object] = {"eventId": event.id}
        if common is not None:
            values.update(common)
        values.update(dims)
        return event.text(values)

    def _dims(self, event: Event, dims: Mapping[str, AttrValue]) -> bytes:
        """The bytes of an event's own dimensions; for the two of every attempt (texts and
        integers only, by construction), kept by their values: they repeat (an attempt
        number, a session id, a duration in ms)."""
        if event.id not in _EVERY_ATTEMPT:
            return self.attributes(b"\x32", dims)
        key = (event.id, *dims.items())
        found = self._dims_kept.get(key)
        if found is None:
            if len(self._dims_kept) >= 4096:
                self._dims_kept.clear()
            found = self._dims_kept[key] = self.attributes(b"\x32", dims)
        return found

    def log(self, record: LogRecord, common_bytes: dict[int, bytes]) -> bytes:
        observed, event, common, dims, text, trace_id, span_id, flags = record
        head, ids, tail = self._event(event)
        if text is None:
            text = self._text(event, common, dims)
        raw = text.encode()
        out = [head, b"\x2a", _varint(len(raw) + 1 + len(_varint(len(raw)))), b"\x0a",
               _varint(len(raw)), raw, ids]  # fmt: skip
        if common is not None:
            # An attempt's events share one dict of its operation's dimensions: once per batch.
            found = common_bytes.get(id(common))
            if found is None:
                found = common_bytes[id(common)] = self.attributes(b"\x32", common)
            out.append(found)
        out.append(self._dims(event, dims))
        if flags:
            out.append(b"\x45" + _FIXED32(flags))
        if trace_id:
            out.append(b"\x4a\x10" + trace_id.to_bytes(16, "big"))
        if span_id:
            out.append(b"\x52\x08" + span_id.to_bytes(8, "big"))
        out.append(b"\x59" + _FIXED64(observed))
        out.append(tail)
        return _framed(b"".join(out))


def _framed(record: bytes) -> bytes:
    """A span or log record as field 2 of Scope{Spans,Logs} (the same number in both)."""
    size = len(record)
    if 128 <= size < 16_384:  # most records: a two-byte length, packed at once
        return _FIELD2(0x12, (size & 0x7F) | 0x80, size >> 7) + record
    return b"\x12" + _varint(size) + record


def _attempt_record(
    fast: tuple[bytes, bytes, bytes, bytes], parts: _Parts, own: bytes, more: bytes, observed: int
) -> bytes:
    """LO0003's or LO0004's record (``fast``: the event's head, body up to the operation id,
    ids, tail), joined once from what the attempt's records share (``parts``) and the
    event's own dimensions (``own``, ``more``: bytes of attributes, or ``b""``)."""
    head, body, ids, tail = fast
    operation_id, context, common, numbers, _, _ = parts
    record = b"".join((head, body, operation_id, ids, common, numbers, own, more, context,
                       _OBSERVED(0x59, observed), tail))  # fmt: skip
    size = len(record)
    if 128 <= size < 16_384:  # as _framed, without the call
        return _FIELD2(0x12, (size & 0x7F) | 0x80, size >> 7) + record
    return b"\x12" + _varint(size) + record


def _request(resource: bytes, scope: bytes, records: list[bytes]) -> bytes:
    """An Export{Trace,Logs}ServiceRequest: one resource, one scope, the records (each
    already framed, :func:`_framed`), joined once."""
    size = sum(map(len, records))
    scope_field = b"\x0a" + _varint(len(scope)) + scope
    scoped = len(scope_field) + size
    resource_field = b"\x0a" + _varint(len(resource)) + resource
    scoped_head = b"\x12" + _varint(scoped)
    outer = len(resource_field) + len(scoped_head) + scoped
    head = b"\x0a" + _varint(outer) + resource_field + scoped_head + scope_field
    return b"".join([head, *records])


# -- the recorder -----------------------------------------------------------------------------
_CHUNK = 63
"""The export thread yields the GIL after each 64 entries it encodes (about 0.3 ms)."""


class Recorder:
    """The queue of lean records, and the thread that exports them.

    :meth:`add` appends to a deque (no lock: an append is atomic) and wakes the export
    thread when a batch is waiting; the thread also wakes every ``delay`` seconds. A full
    queue drops the record, counted and logged once, as the SDK's batch processors do.
    """

    def __init__(
        self,
        resource: Any,
        span_exporter: Any,
        log_exporter: Any,
        *,
        max_queue: int = 49_152,
        batch: int = 2_048,
        delay: float = 1.0,
        start: bool = True,
    ) -> None:
        self._encoder = _Encoder()
        self._resource = otlp._resource(resource, otlp._Attributes())
        self._scope = b"\x0a\x07longops"
        self._span_exporter = span_exporter
        self._log_exporter = log_exporter
        self._max_queue = max_queue
        self._batch = batch
        self._delay = delay
        self._queue: deque[Any] = deque()
        self._spans_out: list[bytes] = []
        self._logs_out: list[bytes] = []
        self._wake = threading.Event()
        self._digest_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._stopped = False
        self.dropped = 0
        self.instruments: Instruments | None = None
        """Where the attempts' counters and histograms go (``providers.use_lean``)."""
        self.random = random.Random()  # its own: the ids do not move the global sequence
        self._thread: threading.Thread | None = None
        if start:
            self._thread = threading.Thread(target=self._run, name="LongopsLeanExport", daemon=True)
            self._thread.start()
            atexit.register(self.shutdown)

    # -- recording (any thread) -----------------------------------------------------------
    def add(self, entry: tuple[Any, ...]) -> None:
        """Queue ``entry``: a :data:`LogRecord`, or (time ns, mark, :class:`Attempt`)."""
        queue = self._queue
        if len(queue) >= self._max_queue:
            self._drop()
            return
        queue.append(entry)
        if len(queue) >= self._batch and not self._wake.is_set():
            self._wake.set()

    log = add

    def _drop(self) -> None:
        if not self.dropped:
            log.warning("telemetry queue full: records dropped (the exporter cannot keep up)")
        self.dropped += 1

    # -- exporting (the export thread, or a flush) ----------------------------------------
    def _run(self) -> None:
        while True:
            self._wake.wait(self._delay)
            self._wake.clear()
            if self._stopped:
                return
            try:
                self.export()
            except Exception:
                log.exception("telemetry export failed")

    def digest(self) -> None:
        """Read the queue: encode its records (sent by the next :meth:`export`) and count
        the attempts in the metrics. Run before the SDK collects the metrics."""
        with self._digest_lock:
            self._digest()

    def _digest(self) -> None:
        queue = self._queue
        if not queue:
            return
        encoder = self._encoder
        spans, logs = self._spans_out, self._logs_out
        popleft = queue.popleft
        common: dict[int, bytes] = {}
        pause = time.sleep
        for n in range(len(queue)):  # what is there now; more may come meanwhile
            if n & _CHUNK == _CHUNK:
                # Between chunks, let the worker's threads have the GIL: a batch's encoding
                # takes milliseconds, which a dispatcher back from the database would wait
                # (up to the interpreter's switch interval, 5 ms), claiming less each round.
                pause(0)
            entry = popleft()
            if len(entry) == 3:
                at, mark, attempt = entry
                if mark == SPAN_MARK:
                    encoded = encoder.span(attempt)
                    if encoded is not None:
                        spans.append(encoded)
                elif mark == STARTED_MARK:
                    logs.append(encoder.started(attempt, at))
                else:
                    logs.append(encoder.finished(attempt, at))
            else:
                logs.append(encoder.log(entry, common))
        if encoder.touched:
            self._count(encoder.touched)
            encoder.touched = []

    def _count(self, touched: list[_Counts]) -> None:
        """The counters and histograms of the attempts digested, one update per key."""
        instruments = self.instruments
        for counts in touched:
            waits, durations, finished = counts.waits, counts.durations, counts.finished
            counts.waits, counts.durations, counts.finished = [], [], 0
            counts.touched = False
            if instruments is None:
                continue
            queue, task = counts.key
            if waits:
                instruments.started.add(len(waits), counts.key)
                _record(instruments.queue_wait, waits, counts.key)
            if finished:
                # LO0004 is queued for successes only (any other end takes the general way).
                instruments.ended.add(finished, (queue, task, "success"))
            if durations:
                _record(instruments.duration, durations, (queue, task, "success"))

    def export(self) -> None:
        """Encode and send everything queued, in batches."""
        with self._send_lock:
            with self._digest_lock:
                self._digest()
                spans, self._spans_out = self._spans_out, []
                logs, self._logs_out = self._logs_out, []
            self._send_all(self._span_exporter, spans)
            self._send_all(self._log_exporter, logs)

    def _send_all(self, exporter: Any, encoded: list[bytes]) -> None:
        batch = self._batch
        for begin in range(0, len(encoded), batch):
            self._send(exporter, encoded[begin : begin + batch])

    def _send(self, exporter: Any, encoded: Sequence[bytes]) -> None:
        body = _request(self._resource, self._scope, list(encoded))
        limit = getattr(exporter, "_max_request_size", 0) or 0
        if 0 < limit < len(body) and len(encoded) > 1:
            half = len(encoded) // 2
            self._send(exporter, encoded[:half])
            self._send(exporter, encoded[half:])
            return
        if otlp._send(exporter, lambda: body) is False:
            log.warning("telemetry export of %d records failed", len(encoded))

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        self.export()
        return True

    def shutdown(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self.export()
        for exporter in (self._span_exporter, self._log_exporter):
            exporter.shutdown()


def _record(histogram: Any, values: list[float], key: tuple[str, ...]) -> None:
    many = getattr(histogram, "record_many", None)
    if many is not None:
        many(values, key)
        return
    for value in values:
        histogram.record(value, key)


# -- histograms -------------------------------------------------------------------------------
_BOUNDARIES = (0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0,
               5000.0, 7500.0, 10000.0)  # fmt: skip
"""The SDK's default explicit bucket boundaries (what its histogram would use here)."""


class Histogram:
    """A histogram aggregated in process (explicit buckets, the SDK's default boundaries),
    by a tuple of attribute values; exported with the SDK's metrics (:func:`metric_exporter`).
    ``record`` costs a bisect and a few list updates under a lock; on the lean path the
    export thread records each batch's values (:meth:`record_many`)."""

    __slots__ = ("_keys", "_lock", "_points", "_since", "before", "description", "name", "unit")

    def __init__(self, name: str, unit: str, description: str, keys: tuple[str, ...]) -> None:
        self.name = name
        self.unit = unit
        self.description = description
        self._keys = keys
        self._lock = threading.Lock()
        self._points: dict[tuple[str, ...], list[Any]] = {}
        self._since = time.time_ns()
        self.before: Callable[[], None] | None = None
        """Run before each collection (the lean recorder's :meth:`Recorder.digest`)."""

    def record(self, value: float, values: tuple[str, ...] = ()) -> None:
        self.record_many((value,), values)

    def record_many(self, recorded: Sequence[float], values: tuple[str, ...] = ()) -> None:
        """Record each of ``recorded`` with the same attribute values (one lock taken)."""
        with self._lock:
            point = self._points.get(values)
            if point is None:
                first = recorded[0]
                point = self._points[values] = [[0] * (len(_BOUNDARIES) + 1), 0, 0, first, first]
            buckets = point[0]
            for value in recorded:
                buckets[bisect_left(_BOUNDARIES, value)] += 1
                point[1] += value
                point[2] += 1
                if value < point[3]:
                    point[3] = value
                if value > point[4]:
                    point[4] = value

    def collect(self, delta: bool) -> Any:
        """The SDK's ``Metric`` of the points so far (None: no point), reset if ``delta``."""
        from opentelemetry.sdk.metrics.export import (
            AggregationTemporality,
            HistogramDataPoint,
            Metric,
        )
        from opentelemetry.sdk.metrics.export import Histogram as SdkHistogram

        if self.before is not None:
            self.before()
        now = time.time_ns()
        with self._lock:
            points = [(k, [list(p[0]), *p[1:]]) for k, p in self._points.items()]
            since = self._since
            if delta:
                self._points = {}
                self._since = now
        if not points:
            return None
        data = [
            HistogramDataPoint(
                attributes=dict(zip(self._keys, values, strict=True)),
                start_time_unix_nano=since,
                time_unix_nano=now,
                count=count,
                sum=total,
                bucket_counts=buckets,
                explicit_bounds=list(_BOUNDARIES),
                min=least,
                max=most,
            )
            for values, (buckets, total, count, least, most) in points
        ]
        temporality = AggregationTemporality.DELTA if delta else AggregationTemporality.CUMULATIVE
        return Metric(
            name=self.name,
            description=self.description,
            unit=self.unit,
            data=SdkHistogram(data_points=data, aggregation_temporality=temporality),
        )


def with_histograms(metrics_data: Any, histograms: Sequence[Histogram], delta: bool) -> Any:
    """``metrics_data`` (the SDK's, for one export) with ``histograms`` in longops's scope."""
    from opentelemetry.sdk.metrics.export import MetricsData, ResourceMetrics, ScopeMetrics
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    found = [m for m in (h.collect(delta) for h in histograms) if m is not None]
    if not found or not metrics_data.resource_metrics:
        return metrics_data
    first, *others = metrics_data.resource_metrics
    scopes = list(first.scope_metrics)
    for n, scope in enumerate(scopes):
        if scope.scope.name == "longops":
            scopes[n] = ScopeMetrics(scope.scope, [*scope.metrics, *found], scope.schema_url)
            break
    else:
        scopes.append(ScopeMetrics(InstrumentationScope("longops"), found, ""))
    resource = ResourceMetrics(first.resource, scopes, first.schema_url)
    return MetricsData(resource_metrics=[resource, *others])


def metric_exporter(exporter: Any, histograms: Sequence[Histogram]) -> Any:
    """``exporter`` (the SDK's OTLP metric exporter) exporting ``histograms`` too, with the
    temporality it prefers for histograms (``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_...``)."""
    from opentelemetry.sdk.metrics import Histogram as SdkHistogramInstrument
    from opentelemetry.sdk.metrics.export import AggregationTemporality

    preferred = exporter._preferred_temporality.get(SdkHistogramInstrument)
    delta = preferred is AggregationTemporality.DELTA
    export = exporter.export

    def export_with(metrics_data: Any, *args: Any, **kwargs: Any) -> Any:
        return export(with_histograms(metrics_data, histograms, delta), *args, **kwargs)

    exporter.export = export_with
    return exporter


# -- flushing with the SDK's providers --------------------------------------------------------
def flushers(recorder: Recorder) -> tuple[Any, Any]:
    """A span processor and a log record processor that only flush and shut down
    ``recorder`` with the SDK's providers (``force_flush()``, ``shutdown()`` at exit)."""
    from opentelemetry.sdk._logs import LogRecordProcessor
    from opentelemetry.sdk.trace import SpanProcessor

    class SpanFlusher(SpanProcessor):
        def shutdown(self) -> None:
            recorder.shutdown()

        def force_flush(self, timeout_millis: int = 30_000) -> bool:
            return recorder.force_flush(timeout_millis)

    class LogFlusher(LogRecordProcessor):
        def on_emit(self, log_record: Any) -> None:
            pass

        def shutdown(self) -> None:
            recorder.shutdown()

        def force_flush(self, timeout_millis: int = 30_000) -> bool:
            return recorder.force_flush(timeout_millis)

    return SpanFlusher(), LogFlusher()
