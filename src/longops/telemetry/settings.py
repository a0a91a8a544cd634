"""Telemetry settings, read from the environment once per process.

- ``LONGOPS_TELEMETRY`` (``auto``): ``auto`` sets up the OpenTelemetry SDK when an exporter
  is configured (``OTEL_*`` or ``APPLICATIONINSIGHTS_CONNECTION_STRING``); ``off`` never does;
  ``sdk`` as ``auto``, with the SDK's own span and log record objects throughout (no lean
  path, ``lean.py``).
- ``LONGOPS_SLOW_STEP_AFTER`` (``60``): seconds after which a step or a ``ctx.timed`` section
  is long-running (LO0023).
- ``LONGOPS_SLOW_SQL_AFTER`` (``0.5``): seconds after which one of longops's own SQL
  statements is long-running (LO0024).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

from longops.domain.errors import ValidationError


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    mode: str = "auto"
    slow_step_after: float = 60.0
    slow_sql_after: float = 0.5


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError(name, "must be a number of seconds", raw) from None
    if not value >= 0:
        raise ValidationError(name, "must be a number of seconds, 0 or more", raw)
    return value


@cache
def settings() -> TelemetrySettings:
    """The settings of this process (``settings.cache_clear()`` re-reads them)."""
    mode = os.environ.get("LONGOPS_TELEMETRY", "auto").strip().lower() or "auto"
    if mode not in ("auto", "off", "sdk"):
        raise ValidationError("LONGOPS_TELEMETRY", "must be auto, sdk or off", mode)
    return TelemetrySettings(
        mode=mode,
        slow_step_after=_seconds("LONGOPS_SLOW_STEP_AFTER", 60.0),
        slow_sql_after=_seconds("LONGOPS_SLOW_SQL_AFTER", 0.5),
    )
