"""longops's OTLP encoder writes the same messages as the SDK's: both encodings of the same
spans and log records, decoded with ``opentelemetry-proto``, are equal."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs as sdk_encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, TraceState

from longops.telemetry import otlp

VALUES: dict[str, Any] = {
    "text": "post_invoices",
    "empty": "",
    "unicode": "Überweisung ✓",
    "yes": True,
    "no": False,
    "zero": 0,
    "small": 5,
    "big": 2**40 + 7,
    "negative": -3,
    "most": 2**63 - 1,
    "least": -(2**63),
    "ratio": 0.125,
    "nought": 0.0,
    "names": ("a", "b"),
    "numbers": (1, -2, 3),
    "flags": (True, False),
}


def _spans() -> list[Any]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "enc", "host.cores": 2}),
        span_limits=SpanLimits(max_attributes=20, max_events=2, max_links=1),
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("longops", "1.2.3", schema_url="https://example.org/s")
    other = provider.get_tracer("other")
    remote = trace.SpanContext(
        0x0AF7651916CD43DD8448EB211C80319C,
        0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=trace.TraceFlags(1),
        trace_state=TraceState([("vendor", "value"), ("k", "v")]),
    )
    parent = trace.set_span_in_context(trace.NonRecordingSpan(remote))
    for n in range(3):  # the same values again: the encoder's kept bytes
        span = tracer.start_span(
            "process default",
            context=parent,
            kind=SpanKind.CONSUMER,
            links=[Link(remote, {"why": "creation"}), Link(remote)],
            attributes={**VALUES, "n": n},
        )
        span.add_event("exception", {"exception.type": "KeyError"})
        span.add_event("second")
        span.add_event("dropped")
        span.set_status(Status(StatusCode.ERROR, "KeyError"))
        with (
            trace.use_span(span, end_on_exit=True),
            other.start_as_current_span("step", kind=SpanKind.INTERNAL) as child,
        ):
            child.set_attribute("longops.step.name", "load")
    tracer.start_span("send", kind=SpanKind.PRODUCER).end()
    many = tracer.start_span("many", attributes={f"a{i}": i for i in range(25)})
    many.set_status(Status(StatusCode.OK))
    many.end()
    return list(exporter.get_finished_spans())


def _logs() -> list[Any]:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "enc"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("longops")
    tracer_provider = TracerProvider()
    span = tracer_provider.get_tracer("t").start_span("process default")
    with trace.use_span(span, end_on_exit=True):
        for n in range(3):
            logger.emit(
                severity_number=SeverityNumber.INFO,
                severity_text="INFO",
                body="Operation started: 1",
                attributes={**VALUES, "eventId": "LO0003", "n": n},
                event_name="longops.started",
            )
    logger.emit(severity_number=SeverityNumber.WARN, body={"nested": [1, "two"], "k": 1.5})
    logger.emit(body=None)
    provider.get_logger("other", "9").emit(body=7)
    return list(exporter.get_finished_logs())


def test_spans_encode_as_the_sdk_encodes_them() -> None:
    spans = _spans()
    ours = ExportTraceServiceRequest.FromString(otlp.encode_spans(spans))
    theirs = sdk_encode_spans(spans)
    assert len(ours.resource_spans[0].scope_spans) == 2
    assert ours == theirs


def test_log_records_encode_as_the_sdk_encodes_them() -> None:
    records = _logs()
    ours = ExportLogsServiceRequest.FromString(otlp.encode_logs(records))
    theirs = sdk_encode_logs(records)
    assert ours.resource_logs[0].scope_logs[0].log_records[0].trace_id
    assert ours == theirs


def test_a_value_otlp_cannot_carry_is_left_out() -> None:
    with pytest.raises(ValueError, match="int64"):
        otlp._value(2**64)
    encoder = otlp._Attributes()
    kept = encoder.encode(b"\x4a", {"ok": 1, "huge": 2**64})
    assert kept == encoder.encode(b"\x4a", {"ok": 1})


def test_the_exporters_send_this_encoding_through_the_sdks_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the installed SDK the exporters take longops's path (not the fallback to the
    SDK's own ``export``), and the receiver gets every span and log record."""
    from otlp_receiver import otlp_receiver

    encoded: list[int] = []
    spans_encoder, logs_encoder = otlp.encode_spans, otlp.encode_logs

    def count_spans(spans: Any, attrs: Any = None) -> bytes:
        encoded.append(len(spans))
        return spans_encoder(spans, attrs)

    def count_logs(records: Any, attrs: Any = None) -> bytes:
        encoded.append(len(records))
        return logs_encoder(records, attrs)

    monkeypatch.setattr(otlp, "encode_spans", count_spans)
    monkeypatch.setattr(otlp, "encode_logs", count_logs)
    spans, records = _spans(), _logs()
    with otlp_receiver() as (endpoint, received):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        span_exporter, log_exporter = otlp.span_exporter(), otlp.log_exporter()
        try:
            assert span_exporter.export(spans).name == "SUCCESS"
            assert log_exporter.export(records).name == "SUCCESS"
        finally:
            span_exporter.shutdown()
            log_exporter.shutdown()
        assert encoded == [len(spans), len(records)]
        assert len(received.span_list()) == len(spans)
        with received.lock:
            assert len(received.logs) == len(records)
