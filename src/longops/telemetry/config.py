"""Exporters by configuration: the OpenTelemetry SDK set up from the environment.

Nothing is set up unless an exporter is configured and the SDK is installed
(``pip install 'longops[otel]'``, ``'longops[azure]'``):

- the standard ``OTEL_*`` variables: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the per-signal
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``...), ``OTEL_EXPORTER_OTLP_PROTOCOL``
  (``http/protobuf``, the default, or ``grpc``), ``OTEL_SERVICE_NAME``,
  ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_BSP_*``, ``OTEL_METRIC_EXPORT_INTERVAL``...;
- ``APPLICATIONINSIGHTS_CONNECTION_STRING``: the Azure Monitor exporters (Application
  Insights), where each event's ``eventId`` becomes a custom dimension.

An application that set up its own OpenTelemetry SDK keeps it: longops then only uses it.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from typing import Any

from opentelemetry import _logs, metrics, trace

from longops.telemetry import lean, otlp, providers
from longops.telemetry import metrics as metrics_module
from longops.telemetry.metrics import Instruments
from longops.telemetry.settings import settings

log = logging.getLogger("longops.telemetry")

_OTLP_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
)
_lock = threading.Lock()
_done = False


def wanted() -> dict[str, bool]:
    """Which exporters the environment asks for."""
    env = os.environ
    return {
        "otlp": any(env.get(name) for name in _OTLP_VARIABLES),
        "azure": bool(env.get("APPLICATIONINSIGHTS_CONNECTION_STRING")),
    }


def configure(service_name: str = "longops") -> bool:
    """Set up the OpenTelemetry SDK from the environment, once per process; True when this
    call did. Called by every longops entry point (the application object, the worker,
    ``longops serve``); harmless to call again.

    Example::

        # OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 longops worker --app ...
        from longops import telemetry
        telemetry.configure()
    """
    global _done
    with _lock:
        if settings().mode == "off":
            providers.off()
            return False
        if _done:
            return False
        want = wanted()
        if not any(want.values()):
            return False
        _done = True
        if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            return False  # the application configured OpenTelemetry itself
        try:
            _set_up(service_name, want)
        except ImportError as exc:
            log.warning(
                "telemetry is configured but its exporter is not installed (%s): install "
                "longops[otel] for OTLP or longops[azure] for Application Insights",
                exc.name,
            )
            return False
        return True


def _set_up(service_name: str, want: dict[str, bool]) -> None:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
    resource = Resource.create(attributes)
    exporters: list[tuple[Any, Any, Any]] = []
    recorder: lean.Recorder | None = None
    histograms: tuple[lean.Histogram, lean.Histogram] | None = None
    if want["otlp"]:
        spans, metrics_exporter, logs = _otlp()
        if _lean_applies(want):
            recorder, histograms = _lean(resource)
            metrics_exporter = lean.metric_exporter(metrics_exporter, histograms)
        exporters.append((spans, metrics_exporter, logs))
    if want["azure"]:
        exporters.append(_azure(os.environ["APPLICATIONINSIGHTS_CONNECTION_STRING"]))
    tracer_provider = TracerProvider(resource=resource)
    logger_provider = LoggerProvider(resource=resource)
    readers: list[MetricReader] = []
    for spans, metrics_exporter, logs in exporters:
        queue, batch = _batching("OTEL_BSP")
        tracer_provider.add_span_processor(
            BatchSpanProcessor(spans, max_queue_size=queue, max_export_batch_size=batch)
        )
        queue, batch = _batching("OTEL_BLRP")
        logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(logs, max_queue_size=queue, max_export_batch_size=batch)
        )
        readers.append(PeriodicExportingMetricReader(metrics_exporter))
    # Exemplars (a sampled span id on each metric point) cost a random draw and a copy on
    # every recording; nothing longops exports asks for them. OTEL_METRICS_EXEMPLAR_FILTER
    # still turns them on.
    exemplars = (
        None if os.environ.get("OTEL_METRICS_EXEMPLAR_FILTER") else AlwaysOffExemplarFilter()
    )
    meter_provider = MeterProvider(
        resource=resource, metric_readers=readers, exemplar_filter=exemplars
    )
    trace.set_tracer_provider(tracer_provider)
    _logs.set_logger_provider(logger_provider)
    metrics.set_meter_provider(meter_provider)
    # The SDK's objects themselves, not the API's proxies to them (a lookup per call).
    providers.use(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
    )
    if recorder is not None and histograms is not None:
        span_flusher, log_flusher = lean.flushers(recorder)
        tracer_provider.add_span_processor(span_flusher)
        logger_provider.add_log_record_processor(log_flusher)
        meter = meter_provider.get_meter(providers.SCOPE)
        providers.use_lean(recorder, Instruments(meter, histograms))


def _lean_applies(want: dict[str, bool]) -> bool:
    """The lean path stands in for the SDK's spans and log records when OTLP/HTTP is the
    only exporter and nothing asks for what only the SDK does (``lean.applies``)."""
    if want["azure"] or settings().mode == "sdk":
        return False
    if os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf") != "http/protobuf":
        return False
    return lean.applies()


def _lean(resource: Any) -> tuple[lean.Recorder, tuple[lean.Histogram, lean.Histogram]]:
    queue, batch = _batching("OTEL_BSP")
    delays = [
        float(os.environ.get(name) or default)
        for name, default in (("OTEL_BSP_SCHEDULE_DELAY", 5000), ("OTEL_BLRP_SCHEDULE_DELAY", 1000))
    ]
    env_queue = os.environ.get("OTEL_BSP_MAX_QUEUE_SIZE")
    env_batch = os.environ.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
    recorder = lean.Recorder(
        resource,
        otlp.span_exporter(),
        otlp.log_exporter(),
        # Three entries per attempt (started, finished, its span): the span queue's size
        # in attempts.
        max_queue=3 * (queue or int(env_queue or 2048)),
        batch=batch or int(env_batch or 512),
        delay=min(delays) / 1000,
    )
    histograms = (
        lean.Histogram(*metrics_module.DURATION, ("queue", "task", "outcome")),
        lean.Histogram(*metrics_module.QUEUE_WAIT, ("queue", "task")),
    )
    return recorder, histograms


def _batching(prefix: str) -> tuple[int | None, int | None]:
    """Larger batches than the SDK's defaults (512 records from a queue of 2,048): a worker
    ends a span and two log records per attempt, hundreds of attempts a second, so each
    request's own cost (HTTP, the resource and scope written once per request) spreads over
    more records, and a burst does not fill the queue and drop. ``OTEL_BSP_*`` and
    ``OTEL_BLRP_*`` still decide when set (None: the SDK reads them)."""
    env = os.environ
    if env.get(f"{prefix}_MAX_QUEUE_SIZE") or env.get(f"{prefix}_MAX_EXPORT_BATCH_SIZE"):
        return None, None
    return 16_384, 2_048


def _otlp() -> tuple[Any, Any, Any]:
    grpc = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf") == "grpc"
    base = f"opentelemetry.exporter.otlp.proto.{'grpc' if grpc else 'http'}"
    metrics_exporter = importlib.import_module(f"{base}.metric_exporter").OTLPMetricExporter()
    if grpc:
        return (
            importlib.import_module(f"{base}.trace_exporter").OTLPSpanExporter(),
            metrics_exporter,
            importlib.import_module(f"{base}._log_exporter").OTLPLogExporter(),
        )
    # Over HTTP, spans and log records are encoded by longops (otlp.py: the same messages,
    # in a fraction of the SDK encoder's time) and sent by the SDK's exporters.
    return otlp.span_exporter(), metrics_exporter, otlp.log_exporter()


def _azure(connection_string: str) -> tuple[Any, Any, Any]:
    azure = importlib.import_module("azure.monitor.opentelemetry.exporter")
    return (
        azure.AzureMonitorTraceExporter(connection_string=connection_string),
        azure.AzureMonitorMetricExporter(connection_string=connection_string),
        azure.AzureMonitorLogExporter(connection_string=connection_string),
    )
