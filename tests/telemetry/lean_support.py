"""The lean path (``longops.telemetry.lean``) captured in process: its OTLP request bodies,
decoded with ``opentelemetry-proto``; the SDK's in-memory exporters for what still goes
through the SDK (step spans, the other metrics)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from longops import telemetry
from longops.telemetry import lean, metrics, providers


class _Exporter:
    """Stands in for the SDK's OTLP/HTTP exporter: its client keeps the request bodies."""

    _shutdown = False
    _max_request_size = 0

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self._client = SimpleNamespace(export=self._export)

    def _export(self, body: bytes) -> Any:
        self.bodies.append(body)
        return SimpleNamespace(success=True)

    def shutdown(self) -> None:
        pass


def value(any_value: AnyValue) -> Any:
    kind = any_value.WhichOneof("value")
    return None if kind is None else getattr(any_value, kind)


def attributes(pairs: Any) -> dict[str, Any]:
    return {a.key: value(a.value) for a in pairs}


@dataclass
class LeanCaptured:
    recorder: lean.Recorder
    spans_exporter: _Exporter
    logs_exporter: _Exporter
    sdk_spans: InMemorySpanExporter
    reader: InMemoryMetricReader
    histograms: tuple[lean.Histogram, lean.Histogram]
    _spans: list[Any] = field(default_factory=list)
    _logs: list[Any] = field(default_factory=list)

    def _collect(self) -> None:
        self.recorder.export()
        while self.spans_exporter.bodies:
            request = ExportTraceServiceRequest.FromString(self.spans_exporter.bodies.pop(0))
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    assert ss.scope.name == "longops"
                    self._spans.extend(ss.spans)
        while self.logs_exporter.bodies:
            request = ExportLogsServiceRequest.FromString(self.logs_exporter.bodies.pop(0))
            for rl in request.resource_logs:
                for sl in rl.scope_logs:
                    self._logs.extend(sl.log_records)

    def process_spans(self) -> list[Any]:
        """The lean ``process`` spans (protobuf ``Span`` messages)."""
        self._collect()
        return list(self._spans)

    def step_spans(self) -> list[ReadableSpan]:
        return list(self.sdk_spans.get_finished_spans())

    def log_records(self) -> list[Any]:
        self._collect()
        return list(self._logs)

    def logs(self) -> list[dict[str, Any]]:
        """As ``Captured.logs``: body, the span id, the attributes."""
        return [
            {
                "body": value(r.body),
                "_span_id": int.from_bytes(r.span_id, "big"),
                **attributes(r.attributes),
            }
            for r in self.log_records()
        ]

    def event_ids(self, operation_id: object | None = None) -> list[str]:
        return [
            str(r["eventId"])
            for r in self.logs()
            if operation_id is None or r.get("operationId") == str(operation_id)
        ]

    def metrics(self) -> dict[str, list[Any]]:
        data = self.reader.get_metrics_data()
        found: dict[str, list[Any]] = {}
        if data is None:
            return found
        data = lean.with_histograms(data, self.histograms, delta=False)
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found


@contextmanager
def lean_captured() -> Iterator[LeanCaptured]:
    """longops's telemetry on the lean path for one test (no export thread: the test
    exports when it reads)."""
    sdk_spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(sdk_spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    telemetry.use(tracer_provider=tracer_provider, meter_provider=meter_provider)
    spans_exporter, logs_exporter = _Exporter(), _Exporter()
    recorder = lean.Recorder(
        Resource.create({"service.name": "lean-test"}), spans_exporter, logs_exporter, start=False
    )
    histograms = (
        lean.Histogram(*metrics.DURATION, ("queue", "task", "outcome")),
        lean.Histogram(*metrics.QUEUE_WAIT, ("queue", "task")),
    )
    providers.use_lean(
        recorder, metrics.Instruments(meter_provider.get_meter(providers.SCOPE), histograms)
    )
    try:
        yield LeanCaptured(recorder, spans_exporter, logs_exporter, sdk_spans, reader, histograms)
    finally:
        telemetry.use()
        tracer_provider.shutdown()
        meter_provider.shutdown()
