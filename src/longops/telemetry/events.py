"""Emitting catalogue events: one stdlib ``logging`` record (logger ``longops.events``), one
OpenTelemetry log record, and an event on the current span, each carrying ``eventId`` and
the event's dimensions as attributes.

Example::

    from longops.telemetry import events
    from longops.telemetry.catalogue import MAINTENANCE

    events.emit(MAINTENANCE, job="pruner", count=12)
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber

from longops.domain.operation import NewOperation, Operation
from longops.telemetry import providers
from longops.telemetry.catalogue import Event

log = logging.getLogger("longops.events")

_SEVERITY = {logging.INFO: SeverityNumber.INFO, logging.WARNING: SeverityNumber.WARN}

AttrValue = str | int | float | bool


def operation_dims(op: Operation | NewOperation) -> dict[str, Any]:
    """The common dimensions of an operation (system metadata only: no arguments, no user)."""
    return {
        "operationId": op.id,
        "entryNo": getattr(op, "entry_no", None),
        "company": op.company,
        "task": op.task,
        "queue": op.queue,
        "category": op.category,
    }


def attribute(value: Any) -> AttrValue:
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def emit(event: Event, op: Operation | NewOperation | None = None, **dims: Any) -> None:
    """Emit ``event`` with the operation's common dimensions (if given) and ``dims``.

    A dimension the catalogue does not list for the event is a programming error
    (``ValueError``): the catalogue is the contract with whoever queries the telemetry.
    """
    values = operation_dims(op) if op is not None else {}
    values.update(dims)
    unknown = set(values) - set(event.dimensions)
    if unknown:
        raise ValueError(f"{event.id} ({event.name}) has no dimension {sorted(unknown)}")
    attrs: dict[str, AttrValue] = {"eventId": event.id}
    if event.bc_id is not None:
        attrs["bcEventId"] = event.bc_id
    for key, value in values.items():
        if value is not None:
            attrs[key] = attribute(value)
    text = event.text(attrs)  # type: ignore[arg-type]
    if log.isEnabledFor(event.level):
        log.log(event.level, text, extra={"telemetry": attrs, "eventId": event.id})
    current = providers.current
    current.instruments.events.add(1, {"eventId": event.id})
    current.logger.emit(
        severity_number=_SEVERITY.get(event.level, SeverityNumber.INFO),
        severity_text=logging.getLevelName(event.level),
        body=text,
        attributes=attrs,
        event_name=f"longops.{event.name}",
    )
    span = trace.get_current_span()
    if span.is_recording():
        # Marked by id only: a backend that turns span events into records of their own
        # (Application Insights) must not count each event twice under eventId.
        span.add_event(f"longops.{event.name}", {"longops.event.id": event.id})


def console_level(level: int) -> None:
    """Set the level of the ``longops.events`` logger for a console of ``level``: routine
    events (one per operation and attempt) only when debugging, warnings always. The
    OpenTelemetry log records do not depend on it."""
    log.setLevel(level if level <= logging.DEBUG else max(level, logging.WARNING))
