"""Emitting catalogue events: one stdlib ``logging`` record (logger ``longops.events``) and
one OpenTelemetry log record, each carrying ``eventId`` and the event's dimensions as
attributes. The OpenTelemetry record carries the current span's context, so a backend shows
it within the span it happened in (no span event as well: that would cost as much again per
event, and Application Insights would count each event twice).

Example::

    from longops.telemetry import events
    from longops.telemetry.catalogue import MAINTENANCE

    events.emit(MAINTENANCE, job="pruner", count=12)
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from time import time_ns
from typing import Any

from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import get_current_span

from longops.domain.operation import NewOperation, Operation
from longops.telemetry import providers
from longops.telemetry.catalogue import Event

log = logging.getLogger("longops.events")

_SEVERITY = {logging.INFO: SeverityNumber.INFO, logging.WARNING: SeverityNumber.WARN}

AttrValue = str | int | float | bool


def operation_attributes(op: Operation | NewOperation) -> dict[str, AttrValue]:
    """The common dimensions of an operation as exported values (system metadata only: no
    arguments, no user). The worker builds them once per attempt and hands them to
    :func:`emit_with` for each of the attempt's events."""
    attrs: dict[str, AttrValue] = {"operationId": str(op.id)}
    entry_no = getattr(op, "entry_no", None)
    if entry_no is not None:
        attrs["entryNo"] = entry_no
    attrs["company"] = op.company
    attrs["task"] = op.task
    attrs["queue"] = op.queue
    if op.category is not None:
        attrs["category"] = op.category
    return attrs


_PLAIN = frozenset((str, int, float, bool))


def attribute(value: Any) -> AttrValue:
    if type(value) in _PLAIN:
        return value  # type: ignore[no-any-return]
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


_ALLOWED: dict[str, frozenset[str]] = {}


def wanted(event: Event) -> bool:
    """Whether :func:`emit` would send ``event`` anywhere (else nothing need be built)."""
    return providers.get().enabled or log.isEnabledFor(event.level)


_SEVERITY_TEXT = {level: logging.getLevelName(level) for level in _SEVERITY}


def emit(event: Event, op: Operation | NewOperation | None = None, **dims: Any) -> None:
    """Emit ``event`` with the operation's common dimensions (if given) and ``dims``.

    A dimension the catalogue does not list for the event is a programming error
    (``ValueError``): the catalogue is the contract with whoever queries the telemetry.
    """
    if not (providers.get().enabled or log.isEnabledFor(event.level)):
        # Nothing would receive it: nothing is built, but a dimension the catalogue does
        # not list is still refused (a programming error, whether or not anyone listens).
        _check(event, None, dims)
        return
    emit_with(event, None if op is None else operation_attributes(op), dims)


def _check(event: Event, common: dict[str, AttrValue] | None, dims: dict[str, Any]) -> None:
    allowed = _ALLOWED.get(event.id)
    if allowed is None:
        allowed = _ALLOWED[event.id] = frozenset(event.dimensions)
    if not (dims.keys() <= allowed and (common is None or common.keys() <= allowed)):
        unknown = (set(dims) | set(common or ())) - allowed
        raise ValueError(f"{event.id} ({event.name}) has no dimension {sorted(unknown)}")


def emit_with(event: Event, common: dict[str, AttrValue] | None, dims: dict[str, Any]) -> None:
    """:func:`emit` with the operation's dimensions already built (``common``, from
    :func:`operation_attributes`; not changed)."""
    current = providers.get()
    to_log = log.isEnabledFor(event.level)
    if not (current.enabled or to_log):
        return  # telemetry off and the console does not show it: nothing to build
    _check(event, common, dims)
    rest = {key: attribute(value) for key, value in dims.items() if value is not None}
    lean = current.lean
    if lean is not None and not to_log:
        # The message is formatted on export, off this thread.
        context = get_current_span().get_span_context()
        lean.log(
            (
                time_ns(),
                event,
                common,
                rest,
                None,
                context.trace_id,
                context.span_id,
                context.trace_flags,
            )
        )
        return
    attrs: dict[str, AttrValue] = {"eventId": event.id}
    if event.bc_id is not None:
        attrs["bcEventId"] = event.bc_id
    if common is not None:
        attrs.update(common)
    attrs.update(rest)
    text = event.text(attrs)  # type: ignore[arg-type]
    if to_log:
        log.log(event.level, text, extra={"telemetry": attrs, "eventId": event.id})
    if not current.enabled:
        return
    if lean is not None:
        context = get_current_span().get_span_context()
        lean.log(
            (
                time_ns(),
                event,
                common,
                rest,
                text,
                context.trace_id,
                context.span_id,
                context.trace_flags,
            )
        )
        return
    current.logger.emit(
        severity_number=_SEVERITY.get(event.level, SeverityNumber.INFO),
        severity_text=_SEVERITY_TEXT.get(event.level) or logging.getLevelName(event.level),
        body=text,
        attributes=attrs,
        event_name=f"longops.{event.name}",
    )


def console_level(level: int) -> None:
    """Set the level of the ``longops.events`` logger for a console of ``level``: routine
    events (one per operation and attempt) only when debugging, warnings always. The
    OpenTelemetry log records do not depend on it."""
    log.setLevel(level if level <= logging.DEBUG else max(level, logging.WARNING))
