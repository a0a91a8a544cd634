"""The lean recording path: a worker's per-attempt telemetry as plain records, encoded to
OTLP/HTTP in batches on an export thread.

When longops sets up the OpenTelemetry SDK itself for OTLP over HTTP (``configure()``, see
:func:`applies`), the ``process`` span of each attempt, every catalogue event's log record
and the two per-attempt histograms do not go through the SDK's objects: the span is a
:class:`Span` (a few slots), a log record a tuple, a histogram point a bucket count under a
lock. The SDK's ``Span`` and ``LogRecord`` validate every attribute, take locks and copy
their attributes on the way to the batch processor; that was two thirds of telemetry's cost
on a no-op attempt. The records here hold the same values, and the export thread writes
the same OTLP messages as the SDK path does (a test decodes both and compares them),
reusing the bytes of attributes that repeat (names of tasks, queues, companies, events).

Everything else still goes through the SDK: step and ``timed`` spans, task code's own
spans (children of the attempt's span, which is current while the attempt runs), the
``send`` and ``notify`` spans, the other metrics. The lean records are sent by the SDK
exporters' own HTTP clients (endpoint, headers, compression, timeout, retries from
``OTEL_*``), and flushed when the SDK's providers are flushed or shut down (at exit).

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
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from longops.telemetry import otlp
from longops.telemetry.catalogue import FINISHED, STARTED, Event

log = logging.getLogger("longops.telemetry")

AttrValue = str | int | float | bool

SAMPLED = 0x01
RANDOM_TRACE_ID = 0x02


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


class Span:
    """An attempt's ``process`` span while it is open: what the SDK's span would hold."""

    __slots__ = (
        "attributes",
        "end",
        "events",
        "flags",
        "link",
        "name",
        "parent_id",
        "parent_remote",
        "shared",
        "span_id",
        "start",
        "status",
        "trace_id",
    )

    def __init__(
        self,
        trace_id: int,
        span_id: int,
        flags: int,
        parent_id: int,
        name: str,
        shared: Mapping[str, AttrValue],
        attributes: dict[str, AttrValue],
        link: tuple[int, int] | None,
    ) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.flags = flags
        self.parent_id = parent_id
        """0: a root span. A parent is always remote (the stored creation context)."""
        self.parent_remote = parent_id != 0
        self.name = name
        self.shared = shared
        """Attributes of many spans (the task's, the queue's): one dict, never changed."""
        self.attributes = attributes
        self.link = link
        """The creation context (trace id, span id), remote."""
        self.events: list[tuple[int, str, dict[str, AttrValue]]] = []
        self.status: tuple[int, str] | None = None
        self.start = time.time_ns()
        self.end = 0

    def error(self, error_type: str) -> None:
        """As the SDK path's ``_error``: the type as an attribute, an ``exception`` event and
        the ERROR status, by class name only."""
        self.attributes["error.type"] = error_type
        self.events.append((time.time_ns(), "exception", {"exception.type": error_type}))
        self.status = (2, error_type)


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
_varint = otlp._varint
_EVERY_ATTEMPT = frozenset((STARTED.id, FINISHED.id))
_SEVERITY = {logging.INFO: 9, logging.WARNING: 13}  # as events.py maps them (else INFO)


class _Encoder:
    """OTLP bytes of lean records. The bytes of an attribute whose value repeats (a text of
    up to 64 characters, an integer under 1,024) are kept and reused, and so are those of a
    span's shared attributes (one dict per task and queue, :attr:`Span.shared`)."""

    def __init__(self, limit: int = 16_384) -> None:
        self._limit = limit
        self._kept: dict[tuple[bytes, str, AttrValue], bytes] = {}
        """By (tag, key, value), for texts and integers only: 1 == 1.0 == True as keys."""
        self._keys: dict[str, bytes] = {}
        self._events: dict[str, tuple[bytes, bytes, bytes]] = {}
        self._shared: dict[int, tuple[Mapping[str, AttrValue], bytes]] = {}
        self._fields: dict[str, tuple[str, ...]] = {}
        self._dims_kept: dict[tuple[object, ...], bytes] = {}

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

    def shared(self, tag: bytes, attributes: Mapping[str, AttrValue]) -> bytes:
        """The bytes of a dict shared by many records (kept with it: its id stays its own)."""
        found = self._shared.get(id(attributes))
        if found is None:
            if len(self._shared) >= 1024:
                self._shared.clear()
            found = self._shared[id(attributes)] = (
                attributes,
                self.attributes(tag, attributes),
            )
        return found[1]

    def span(self, span: Span) -> bytes:
        out = [
            b"\x0a\x10",
            span.trace_id.to_bytes(16, "big"),
            b"\x12\x08",
            span.span_id.to_bytes(8, "big"),
        ]
        if span.parent_id:
            out.append(b"\x22\x08" + span.parent_id.to_bytes(8, "big"))
        name = span.name.encode()
        out.append(b"\x2a" + _varint(len(name)) + name)
        out.append(b"\x30\x05")  # SPAN_KIND_CONSUMER
        out.append(b"\x39" + _FIXED64(span.start))
        out.append(b"\x41" + _FIXED64(span.end))
        out.append(self.shared(b"\x4a", span.shared))
        out.append(self.attributes(b"\x4a", span.attributes))
        for at, event_name, attributes in span.events:
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
        if span.link is not None:
            trace_id, span_id = span.link
            body = (
                b"\x0a\x10"
                + trace_id.to_bytes(16, "big")
                + b"\x12\x08"
                + span_id.to_bytes(8, "big")
                + b"\x35"
                + _FIXED32(otlp._FLAGS_HAS_IS_REMOTE | otlp._FLAGS_IS_REMOTE)
            )
            out.append(b"\x6a" + _varint(len(body)) + body)
        if span.status is None:
            out.append(b"\x7a\x00")
        else:
            code, description = span.status
            raw = description.encode()
            body = b"\x12" + _varint(len(raw)) + raw + b"\x18" + _varint(code)
            out.append(b"\x7a" + _varint(len(body)) + body)
        flags = otlp._FLAGS_HAS_IS_REMOTE | (otlp._FLAGS_IS_REMOTE if span.parent_remote else 0)
        out.append(b"\x85\x01" + _FIXED32(flags))
        return b"".join(out)

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
        return b"".join(out)


def _request(resource: bytes, scope: bytes, records: list[bytes]) -> bytes:
    """An Export{Trace,Logs}ServiceRequest: one resource, one scope, the records (the field
    numbers are the same in both), joined once."""
    parts: list[bytes] = []
    append = parts.append
    size = 0
    for record in records:
        head = b"\x12" + _varint(len(record))
        append(head)
        append(record)
        size += len(head) + len(record)
    scope_field = b"\x0a" + _varint(len(scope)) + scope
    scoped = len(scope_field) + size
    resource_field = b"\x0a" + _varint(len(resource)) + resource
    scoped_head = b"\x12" + _varint(scoped)
    outer = len(resource_field) + len(scoped_head) + scoped
    head = b"\x0a" + _varint(outer) + resource_field + scoped_head + scope_field
    return head + b"".join(parts) if len(parts) < 2 else b"".join([head, *parts])


# -- the recorder -----------------------------------------------------------------------------
class Recorder:
    """Buffers of lean spans and log records, and the thread that exports them.

    ``span``/``log`` append to a deque (no lock: an append is atomic) and wake the export
    thread when a batch is full; the thread also wakes every ``delay`` seconds. A full
    queue drops the record, counted and logged once, as the SDK's batch processors do.
    """

    def __init__(
        self,
        resource: Any,
        span_exporter: Any,
        log_exporter: Any,
        *,
        max_queue: int = 16_384,
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
        self._spans: deque[Span] = deque()
        self._logs: deque[LogRecord] = deque()
        self._wake = threading.Event()
        self._export_lock = threading.Lock()
        self._stopped = False
        self.dropped = 0
        self.random = random.Random()  # its own: the ids do not move the global sequence
        self._thread: threading.Thread | None = None
        if start:
            self._thread = threading.Thread(target=self._run, name="LongopsLeanExport", daemon=True)
            self._thread.start()
            atexit.register(self.shutdown)

    # -- recording (any thread) -----------------------------------------------------------
    def new_span_id(self) -> int:
        getrandbits = self.random.getrandbits
        found = getrandbits(64)
        while not found:
            found = getrandbits(64)
        return found

    def new_trace_id(self) -> int:
        getrandbits = self.random.getrandbits
        found = getrandbits(128)
        while not found:
            found = getrandbits(128)
        return found

    def span(self, span: Span) -> None:
        spans = self._spans
        if len(spans) >= self._max_queue:
            self._drop()
            return
        spans.append(span)
        if len(spans) == self._batch:
            self._wake.set()

    def log(self, record: LogRecord) -> None:
        logs = self._logs
        if len(logs) >= self._max_queue:
            self._drop()
            return
        logs.append(record)
        if len(logs) == self._batch:
            self._wake.set()

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

    def export(self) -> None:
        """Encode and send everything buffered, in batches."""
        with self._export_lock:
            self._drain(self._spans, self._span_exporter, self._encoder.span)
            common: dict[int, bytes] = {}
            self._drain(self._logs, self._log_exporter, lambda r: self._encoder.log(r, common))

    def _drain(self, queue: deque[Any], exporter: Any, encode: Callable[[Any], bytes]) -> None:
        popleft = queue.popleft
        while queue:
            batch = []
            try:
                for _ in range(self._batch):
                    batch.append(popleft())
            except IndexError:
                pass
            self._send(exporter, [encode(r) for r in batch])

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


# -- histograms -------------------------------------------------------------------------------
_BOUNDARIES = (0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0,
               5000.0, 7500.0, 10000.0)  # fmt: skip
"""The SDK's default explicit bucket boundaries (what its histogram would use here)."""


class Histogram:
    """A histogram aggregated in process (explicit buckets, the SDK's default boundaries),
    by a tuple of attribute values; exported with the SDK's metrics (:func:`metric_exporter`).
    ``record`` costs a bisect and a few list updates under a lock."""

    __slots__ = ("_keys", "_lock", "_points", "_since", "description", "name", "unit")

    def __init__(self, name: str, unit: str, description: str, keys: tuple[str, ...]) -> None:
        self.name = name
        self.unit = unit
        self.description = description
        self._keys = keys
        self._lock = threading.Lock()
        self._points: dict[tuple[str, ...], list[Any]] = {}
        self._since = time.time_ns()

    def record(self, value: float, values: tuple[str, ...] = ()) -> None:
        index = bisect_left(_BOUNDARIES, value)
        with self._lock:
            point = self._points.get(values)
            if point is None:
                point = self._points[values] = [[0] * (len(_BOUNDARIES) + 1), 0, 0, value, value]
            point[0][index] += 1
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
