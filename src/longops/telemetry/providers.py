"""Where longops's tracer, OpenTelemetry logger and instruments come from.

By default the global OpenTelemetry providers (no-op until an SDK is configured, by
:func:`longops.telemetry.configure` or by the application itself). :func:`use` points longops
at other providers, e.g. a test's in-memory ones, without touching the globals.
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry import _logs, metrics, trace
from opentelemetry._logs import LoggerProvider
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from longops.telemetry.lean import Histogram, Recorder
from longops.telemetry.metrics import Instruments

SCOPE = "longops"


@dataclass(frozen=True, slots=True)
class Providers:
    tracer: trace.Tracer
    logger: _logs.Logger
    instruments: Instruments
    enabled: bool = True
    """False: telemetry is off, the hot paths skip building what nobody would receive."""
    lean: Recorder | None = None
    """Set: the ``process`` spans and log records go to this recorder, not through the
    tracer and logger (``lean.py``; only when longops set up the SDK for OTLP/HTTP)."""


def _build(
    tracer_provider: TracerProvider | None,
    meter_provider: MeterProvider | None,
    logger_provider: LoggerProvider | None,
) -> Providers:
    return Providers(
        tracer=trace.get_tracer(SCOPE, tracer_provider=tracer_provider),
        logger=_logs.get_logger(SCOPE, logger_provider=logger_provider),
        instruments=Instruments(metrics.get_meter(SCOPE, meter_provider=meter_provider)),
    )


current: Providers = _build(None, None, None)
_chosen = False
"""Whether :func:`use` was given providers (then ``off`` leaves them)."""


def off() -> None:
    """Telemetry is off in this process (``LONGOPS_TELEMETRY=off``): the no-op objects
    themselves rather than the API's proxies (which look up the global provider on every
    call), and no attributes built for them. Providers given to :func:`use` stay."""
    global current
    if _chosen:
        return
    current = Providers(
        tracer=trace.NoOpTracer(),
        logger=_logs.NoOpLogger(SCOPE),
        instruments=Instruments(metrics.NoOpMeter(SCOPE)),
        enabled=False,
    )


def use(
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    logger_provider: LoggerProvider | None = None,
) -> None:
    """Send longops's telemetry to these providers (None: the global one of that signal).

    Example::

        from opentelemetry.sdk.trace import TracerProvider
        from longops import telemetry

        telemetry.use(tracer_provider=TracerProvider())
    """
    global current, _chosen
    current = _build(tracer_provider, meter_provider, logger_provider)
    _chosen = any(p is not None for p in (tracer_provider, meter_provider, logger_provider))


def use_lean(recorder: Recorder, instruments: Instruments) -> None:
    """The lean path (``config.py`` sets it up): after :func:`use` with the SDK's
    providers, the ``process`` spans, log records and attempt histograms go to ``recorder``
    and ``instruments``."""
    global current
    # The attempts' counters and histograms are counted by the recorder's export thread:
    # it reads its queue before the SDK collects them.
    recorder.instruments = instruments
    for tally in (instruments.started, instruments.ended):
        tally.before = recorder.digest
    for histogram in (instruments.duration, instruments.queue_wait):
        if isinstance(histogram, Histogram):
            histogram.before = recorder.digest
    current = Providers(
        tracer=current.tracer,
        logger=current.logger,
        instruments=instruments,
        lean=recorder,
    )
