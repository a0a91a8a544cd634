"""In-memory OpenTelemetry SDK providers for the telemetry tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from longops import telemetry


@dataclass
class Captured:
    tracer_provider: TracerProvider
    spans_exporter: InMemorySpanExporter
    logs_exporter: InMemoryLogRecordExporter
    reader: InMemoryMetricReader

    def spans(self) -> list[ReadableSpan]:
        return list(self.spans_exporter.get_finished_spans())

    def logs(self) -> list[dict[str, Any]]:
        """The OpenTelemetry log records: body and attributes."""
        out = []
        for data in self.logs_exporter.get_finished_logs():
            record = data.log_record
            out.append(
                {"body": record.body, "_span_id": record.span_id, **dict(record.attributes or {})}
            )
        return out

    def event_ids(self, operation_id: object | None = None) -> list[str]:
        return [
            str(r["eventId"])
            for r in self.logs()
            if operation_id is None or r.get("operationId") == str(operation_id)
        ]

    def metrics(self) -> dict[str, list[Any]]:
        """Metric name -> its data points."""
        data = self.reader.get_metrics_data()
        found: dict[str, list[Any]] = {}
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found


def captured() -> Iterator[Captured]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    telemetry.use(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
    )
    try:
        yield Captured(tracer_provider, spans, logs, reader)
    finally:
        telemetry.use()
        tracer_provider.shutdown()
        logger_provider.shutdown()
        meter_provider.shutdown()
