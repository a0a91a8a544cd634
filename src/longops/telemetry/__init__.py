"""Telemetry: one event catalogue; OpenTelemetry traces, metrics and log events.

Everything goes through the OpenTelemetry API, which is a no-op until an SDK is configured:
by the environment (:func:`configure`, see ``docs/telemetry.md``) or by the application.

Example::

    from longops import telemetry

    telemetry.configure()   # OTEL_EXPORTER_OTLP_ENDPOINT=... or APPLICATIONINSIGHTS_...
"""

from __future__ import annotations

from longops.telemetry.catalogue import CATALOGUE, Event
from longops.telemetry.config import configure
from longops.telemetry.events import emit
from longops.telemetry.hooks import (
    acted,
    cancel_requested,
    claimed,
    expired,
    loop_died,
    loop_fault,
    loop_recovered,
    maintenance,
    progress_written,
    session_event,
    sql_timed,
    sql_timing,
    stalled,
    unstalled,
)
from longops.telemetry.metrics import watch_pool
from longops.telemetry.notifying import notifying
from longops.telemetry.providers import use
from longops.telemetry.settings import settings
from longops.telemetry.traces import (
    child_usage,
    ended,
    processing,
    sending,
    started,
    step,
    step_from,
    timed,
)

__all__ = [
    "CATALOGUE",
    "Event",
    "acted",
    "cancel_requested",
    "child_usage",
    "claimed",
    "configure",
    "emit",
    "ended",
    "expired",
    "loop_died",
    "loop_fault",
    "loop_recovered",
    "maintenance",
    "notifying",
    "processing",
    "progress_written",
    "sending",
    "session_event",
    "settings",
    "sql_timed",
    "sql_timing",
    "stalled",
    "started",
    "step",
    "step_from",
    "timed",
    "unstalled",
    "use",
    "watch_pool",
]
