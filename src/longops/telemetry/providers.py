"""Where longops's tracer, OpenTelemetry logger and instruments come from.

By default the global OpenTelemetry providers (no-op until an SDK is configured, by
:func:`longops.telemetry.configure` or by the application itself). :func:`use` points longops
at other providers, e.g. a test's in-memory ones, without touching the globals.

While no global provider is set (no SDK installed by longops or by the application, for
any of the three signals), longops is *idle*: the hooks use the no-op objects themselves and
build nothing, as with ``LONGOPS_TELEMETRY=off``. :func:`get` (what the hooks call first)
looks at the API's three globals each time, so an SDK provider the application sets later
(``trace.set_tracer_provider(...)``, any time after importing longops) is used from the next
hook on.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from opentelemetry import _logs, metrics, trace
from opentelemetry._logs import LoggerProvider
from opentelemetry._logs import _internal as _logs_globals
from opentelemetry.metrics import MeterProvider
from opentelemetry.metrics import _internal as _metrics_globals
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
    idle: bool = False
    """True: following the global providers, none of which is set yet; :func:`get` replaces
    these (no-op) objects with the globals' once one is."""


def _no_op(idle: bool) -> Providers:
    """The no-op objects themselves rather than the API's proxies (which look up the global
    provider on every call)."""
    return Providers(
        tracer=trace.NoOpTracer(),
        logger=_logs.NoOpLogger(SCOPE),
        instruments=Instruments(metrics.NoOpMeter(SCOPE)),
        enabled=False,
        idle=idle,
    )


_IDLE = _no_op(idle=True)
_waking = threading.Lock()
_ENTRY_POINTS = (
    "OTEL_PYTHON_TRACER_PROVIDER",
    "OTEL_PYTHON_METER_PROVIDER",
    "OTEL_PYTHON_LOGGER_PROVIDER",
)


def _global_set() -> bool:
    """Whether a global provider is set (or one is named in the environment, which the
    API loads on first use): then longops's telemetry may go somewhere."""
    return (
        trace._TRACER_PROVIDER is not None
        or _metrics_globals._METER_PROVIDER is not None
        or _logs_globals._LOGGER_PROVIDER is not None
        or any(os.environ.get(name) for name in _ENTRY_POINTS)
    )


def _follow() -> Providers:
    """The global providers' objects, or the idle ones while none is set."""
    return _build(None, None, None) if _global_set() else _IDLE


def get() -> Providers:
    """:data:`current`, after waking it if it is idle and a global provider was set since.
    The hooks call this first: idle, it costs three attribute reads.

    Example::

        if not providers.get().enabled:
            return  # nothing would receive it: build nothing
    """
    global current
    found = current
    if found.idle and (
        trace._TRACER_PROVIDER is not None
        or _metrics_globals._METER_PROVIDER is not None
        or _logs_globals._LOGGER_PROVIDER is not None
    ):
        with _waking:  # once, whichever thread sees it first (the instruments registered once)
            if current.idle:
                current = _build(None, None, None)
            found = current
    return found


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


current: Providers = _follow()
_chosen = False
"""Whether :func:`use` was given providers (then ``off`` leaves them)."""


def off() -> None:
    """Telemetry is off in this process (``LONGOPS_TELEMETRY=off``): the no-op objects
    themselves rather than the API's proxies (which look up the global provider on every
    call), and no attributes built for them. Providers given to :func:`use` stay."""
    global current
    if _chosen:
        return
    current = _no_op(idle=False)


def use(
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    logger_provider: LoggerProvider | None = None,
) -> None:
    """Send longops's telemetry to these providers (None: the global one of that signal;
    none given: the global ones, idle while none is set).

    Example::

        from opentelemetry.sdk.trace import TracerProvider
        from longops import telemetry

        telemetry.use(tracer_provider=TracerProvider())
    """
    global current, _chosen
    _chosen = any(p is not None for p in (tracer_provider, meter_provider, logger_provider))
    current = _build(tracer_provider, meter_provider, logger_provider) if _chosen else _follow()


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
