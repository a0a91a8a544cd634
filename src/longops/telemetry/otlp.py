"""OTLP/HTTP exporters of spans and log records that write the protobuf bytes directly.

The OTLP exporters of the OpenTelemetry SDK build a tree of protobuf message objects for
every batch (two objects per attribute, copied again into their parents) and then serialise
it: on a worker that is most of what telemetry costs, more than recording the spans and
log records themselves. The messages here are the same OTLP messages (``trace.proto``,
``logs.proto``), written field by field in the protobuf wire format, with the bytes of
repeated attributes (a task's name, a queue, an event id: the same for thousands of
records) written once and reused. A test decodes both encodings with ``opentelemetry-proto``
and compares them.

Only the encoding changes: the request is sent by the SDK exporter's own HTTP client (its
endpoint, headers, compression, timeout and retries from ``OTEL_*``). Where that client is
not there (another version of the SDK), or the SDK is asked to count its own exports
(``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED``), the exporter's own ``export`` runs instead.

Example::

    from longops.telemetry.otlp import encode_spans

    body = encode_spans(finished_spans)   # bytes of an ExportTraceServiceRequest
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

log = logging.getLogger("longops.telemetry")

_DOUBLE = struct.Struct("<d").pack
_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_SMALL = [bytes((n,)) for n in range(128)]
_INT64 = 1 << 63

_FLAGS_HAS_IS_REMOTE = 0x100
_FLAGS_IS_REMOTE = 0x200


def _varint(n: int) -> bytes:
    if 0 <= n < 128:
        return _SMALL[n]
    if 0 < n < 16_384:  # the length of a record or an attribute: two bytes
        return ((n & 0x7F) | 0x80 | ((n >> 7) << 8)).to_bytes(2, "little")
    if n < 0:
        n += 1 << 64  # int64 as two's complement: ten bytes
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field (a string, bytes or a message)."""
    return tag + _varint(len(payload)) + payload


def _string(tag: bytes, text: str) -> bytes:
    return _field(tag, text.encode())


# -- attributes (KeyValue / AnyValue) ---------------------------------------------------------
def _value(value: Any) -> bytes:
    """The AnyValue message's bytes; ValueError for a value OTLP cannot carry."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _string(b"\x0a", value)
    if isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            raise ValueError(f"{value} is out of int64's range")
        return b"\x18" + _varint(value)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _value(v)) for v in value))
    if isinstance(value, Mapping):
        return _field(
            b"\x32", b"".join(_field(b"\x0a", _key_value(str(k), v)) for k, v in value.items())
        )
    raise ValueError(f"{type(value).__name__} is not an attribute value")


def _key_value(key: str, value: Any) -> bytes:
    return _string(b"\x0a", key) + _field(b"\x12", _value(value))


class _Attributes:
    """Encodes attribute maps, keeping the bytes of each (key, text value) pair seen: the
    attributes of a worker's records repeat (names, ids of tasks, queues, events)."""

    def __init__(self, limit: int = 8192) -> None:
        self._limit = limit
        self._seen: dict[tuple[str, str], bytes] = {}

    def encode(self, tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
        """Each attribute as a ``tag`` field (repeated KeyValue)."""
        if not attributes:
            return b""
        seen = self._seen
        out = []
        for key, value in attributes.items():
            if type(value) is str:
                found = seen.get((key, value))
                if found is None:
                    if len(seen) >= self._limit:
                        seen.clear()  # ids of operations fill it: start again
                    found = seen[(key, value)] = _field(tag, _key_value(key, value))
                out.append(found)
                continue
            try:
                out.append(_field(tag, _key_value(key, value)))
            except ValueError as error:  # as the SDK's encoder does: leave it out, say so
                log.warning("attribute %s not exported: %s", key, error)
        return b"".join(out)


def _resource(resource: Any, attrs: _Attributes) -> bytes:
    return attrs.encode(b"\x0a", resource.attributes)


def _scope(scope: Any, attrs: _Attributes) -> bytes:
    if scope is None:
        return b""
    out = b""
    if scope.name:
        out += _string(b"\x0a", scope.name)
    if scope.version:
        out += _string(b"\x12", scope.version)
    return out + attrs.encode(b"\x1a", scope.attributes)


def _grouped(
    records: Sequence[Any],
    resource_of: Callable[[Any], Any],
    scope_of: Callable[[Any], Any],
    encode: Callable[[Any], bytes],
    attrs: _Attributes,
) -> bytes:
    """The request: records grouped by resource, then by instrumentation scope (fields 1, 2
    of Resource{Spans,Logs}, 1, 2 of Scope{Spans,Logs}), as the SDK's encoder groups them."""
    # By identity: a Resource hashes by serialising its attributes to JSON, on every call.
    groups: dict[int, tuple[Any, dict[int, tuple[Any, list[bytes]]]]] = {}
    for record in records:
        resource = resource_of(record)
        _, by_scope = groups.setdefault(id(resource), (resource, {}))
        scope = scope_of(record) or None
        by_scope.setdefault(id(scope), (scope, []))[1].append(encode(record))
    out = []
    for resource, scopes in groups.values():
        body = [_field(b"\x0a", _resource(resource, attrs))]
        for scope, encoded in scopes.values():
            inner = [_field(b"\x0a", _scope(scope, attrs))]
            inner.extend(_field(b"\x12", e) for e in encoded)
            if scope is not None and scope.schema_url:
                inner.append(_string(b"\x1a", scope.schema_url))
            body.append(_field(b"\x12", b"".join(inner)))
        if resource.schema_url:
            body.append(_string(b"\x1a", resource.schema_url))
        out.append(_field(b"\x0a", b"".join(body)))
    return b"".join(out)


# -- spans ------------------------------------------------------------------------------------
_SPAN_FLAGS = b"\x85\x01"  # field 16, fixed32


def _span_flags(context: Any) -> int:
    flags = _FLAGS_HAS_IS_REMOTE
    if context is not None and context.is_remote:
        flags |= _FLAGS_IS_REMOTE
    return flags


def _span(span: Any, attrs: _Attributes) -> bytes:
    context = span.context
    out = [
        b"\x0a\x10" + context.trace_id.to_bytes(16, "big"),
        b"\x12\x08" + context.span_id.to_bytes(8, "big"),
    ]
    if context.trace_state:
        out.append(_string(b"\x1a", ",".join(f"{k}={v}" for k, v in context.trace_state.items())))
    parent = span.parent
    if parent is not None:
        out.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
    if span.name:
        out.append(_string(b"\x2a", span.name))
    out.append(b"\x30" + _varint(span.kind.value + 1))  # the API's kinds start at 0, OTLP's at 1
    if span.start_time:
        out.append(b"\x39" + _FIXED64(span.start_time))
    if span.end_time:
        out.append(b"\x41" + _FIXED64(span.end_time))
    out.append(attrs.encode(b"\x4a", span.attributes))
    if span.dropped_attributes:
        out.append(b"\x50" + _varint(span.dropped_attributes))
    for event in span.events:
        body = b""
        if event.timestamp:
            body += b"\x09" + _FIXED64(event.timestamp)
        if event.name:
            body += _string(b"\x12", event.name)
        body += attrs.encode(b"\x1a", event.attributes)
        if event.dropped_attributes:
            body += b"\x20" + _varint(event.dropped_attributes)
        out.append(_field(b"\x5a", body))
    if span.dropped_events:
        out.append(b"\x60" + _varint(span.dropped_events))
    for link in span.links:
        body = (
            b"\x0a\x10"
            + link.context.trace_id.to_bytes(16, "big")
            + b"\x12\x08"
            + link.context.span_id.to_bytes(8, "big")
            + attrs.encode(b"\x22", link.attributes)
        )
        if link.dropped_attributes:
            body += b"\x28" + _varint(link.dropped_attributes)
        body += b"\x35" + _FIXED32(_span_flags(link.context))
        out.append(_field(b"\x6a", body))
    if span.dropped_links:
        out.append(b"\x70" + _varint(span.dropped_links))
    status = span.status
    if status is not None:
        body = b""
        if status.description:
            body += _string(b"\x12", status.description)
        if status.status_code.value:
            body += b"\x18" + _varint(status.status_code.value)
        out.append(_field(b"\x7a", body))
    out.append(_SPAN_FLAGS + _FIXED32(_span_flags(parent)))
    return b"".join(out)


def encode_spans(spans: Sequence[Any], attrs: _Attributes | None = None) -> bytes:
    """An ``ExportTraceServiceRequest`` of the SDK's finished spans, serialised."""
    attrs = attrs or _Attributes()
    return _grouped(
        spans,
        lambda s: s.resource,
        lambda s: s.instrumentation_scope,
        lambda s: _span(s, attrs),
        attrs,
    )


# -- log records ------------------------------------------------------------------------------
def _log_record(readable: Any, attrs: _Attributes) -> bytes:
    record = readable.log_record
    out = []
    if record.timestamp:
        out.append(b"\x09" + _FIXED64(record.timestamp))
    severity = getattr(record.severity_number, "value", None)
    if severity:
        out.append(b"\x10" + _varint(severity))
    if record.severity_text:
        out.append(_string(b"\x1a", record.severity_text))
    out.append(_field(b"\x2a", _value(record.body)))
    out.append(attrs.encode(b"\x32", record.attributes))
    if readable.dropped_attributes:
        out.append(b"\x38" + _varint(readable.dropped_attributes))
    flags = int(record.trace_flags or 0)
    if flags:
        out.append(b"\x45" + _FIXED32(flags))
    if record.trace_id:
        out.append(b"\x4a\x10" + record.trace_id.to_bytes(16, "big"))
    if record.span_id:
        out.append(b"\x52\x08" + record.span_id.to_bytes(8, "big"))
    if record.observed_timestamp:
        out.append(b"\x59" + _FIXED64(record.observed_timestamp))
    if record.event_name:
        out.append(_string(b"\x62", record.event_name))
    return b"".join(out)


def encode_logs(records: Sequence[Any], attrs: _Attributes | None = None) -> bytes:
    """An ``ExportLogsServiceRequest`` of the SDK's log records, serialised."""
    attrs = attrs or _Attributes()
    return _grouped(
        records,
        lambda r: r.resource,
        lambda r: r.instrumentation_scope,
        lambda r: _log_record(r, attrs),
        attrs,
    )


# -- exporters --------------------------------------------------------------------------------
_SELF_METRICS = (
    os.environ.get("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "").strip().lower() == "true"
)
"""The SDK's exporters then count their own exports: their own ``export`` runs, which does."""


def _send(exporter: Any, encode: Callable[[], bytes]) -> bool | None:
    """Send what ``encode`` returns with the SDK exporter's own HTTP client: True/False as it
    went; None when the exporter's own ``export`` is to run instead (this SDK's exporter has
    no such client, it was shut down, or the encoding failed, which is logged)."""
    client = getattr(exporter, "_client", None)
    send = getattr(client, "export", None)
    if send is None or getattr(exporter, "_shutdown", True) or _SELF_METRICS:
        return None
    try:
        body = encode()
    except Exception:
        log.exception("OTLP encoding failed; the SDK's encoder takes this batch")
        return None
    limit = getattr(exporter, "_max_request_size", 0) or 0
    if 0 < limit < len(body):
        return None  # the SDK's export drops it, and says so
    return bool(send(body).success)


def span_exporter() -> Any:
    """The OTLP/HTTP span exporter (settings from ``OTEL_*``), encoding by :func:`encode_spans`."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    class SpanExporter(OTLPSpanExporter):
        _attrs = _Attributes()

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            sent = _send(self, lambda: encode_spans(spans, self._attrs))
            if sent is None:
                return super().export(spans)
            return SpanExportResult.SUCCESS if sent else SpanExportResult.FAILURE

    return SpanExporter()


def log_exporter() -> Any:
    """The OTLP/HTTP log exporter (settings from ``OTEL_*``), encoding by :func:`encode_logs`."""
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import export as logs_export

    # LogExportResult before SDK 1.39, LogRecordExportResult since.
    result = getattr(logs_export, "LogRecordExportResult", None) or logs_export.LogExportResult

    class LogExporter(OTLPLogExporter):
        _attrs = _Attributes()

        def export(self, batch: Sequence[Any]) -> Any:
            sent = _send(self, lambda: encode_logs(batch, self._attrs))
            if sent is None:
                return super().export(batch)
            return result.SUCCESS if sent else result.FAILURE

    return LogExporter()
