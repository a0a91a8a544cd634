"""Telemetry of outbound notifications: a ``notify {channel}`` span around each send, the
``longops.sent.notifications`` counter (by channel kind and outcome), and the catalogue's
LO0028 (delivered) and LO0029 (dead-lettered).

The channel's kind is its Apprise schema (``json``, ``mailto``, ``slack``…) or ``inbox``:
never its URL, which holds secrets, nor the message, which may hold customer content.

Example::

    with notifying("json", "CRONUS", [(7, key, 1)]) as n:
        error = send(...)
        n.done("sent" if error is None else "retry")
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from longops.telemetry import catalogue as cat
from longops.telemetry import providers
from longops.telemetry.events import emit
from longops.telemetry.traces import SYSTEM

OUTCOMES = ("sent", "digested", "retry", "dead", "waiting")
"""What became of a delivery: sent alone, sent in a digest, to be tried again, given up on
(dead letter), or held back by the channel's rate limit (not a try)."""


@dataclass
class Notifying:
    span: Span
    kind: str
    company: str
    deliveries: Sequence[tuple[int, uuid.UUID, int]]
    """(delivery id, idempotency key, this try's number) of each delivery sent together."""
    reported: bool = False

    def done(self, outcome: str, dead: Sequence[int] = ()) -> None:
        """Report the send: ``outcome`` for all (``dead``: the ids given up on among them,
        when the others are to be retried)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        self.reported = True
        counter = providers.current.instruments.sent_notifications
        gone = set(dead) if outcome != "dead" else {d for d, _, _ in self.deliveries}
        retried = len(self.deliveries) - len(gone)
        if retried:
            counter.add(retried, {"channel": self.kind, "outcome": outcome})
        if gone:
            counter.add(len(gone), {"channel": self.kind, "outcome": "dead"})
        if self.span.is_recording():
            self.span.set_attribute("longops.notify.outcome", "dead" if gone else outcome)
            if outcome not in ("sent", "digested", "waiting"):
                self.span.set_attribute("error.type", "dead" if gone else "retry")
                self.span.set_status(Status(StatusCode.ERROR, "the channel refused"))
        for delivery_id, _, attempts in self.deliveries:
            dims: dict[str, Any] = {
                "company": self.company,
                "channel": self.kind,
                "deliveryId": delivery_id,
                "attempts": attempts,
            }
            if delivery_id in gone:
                emit(cat.NOTIFICATION_DEAD, **dims)
            elif outcome in ("sent", "digested"):
                emit(cat.NOTIFICATION_DELIVERED, **dims)


@contextmanager
def notifying(
    kind: str, company: str, deliveries: Sequence[tuple[int, uuid.UUID, int]]
) -> Iterator[Notifying]:
    """The ``notify {kind}`` span (kind PRODUCER) around one send of ``deliveries``."""
    attrs: dict[str, str | int] = {
        "messaging.system": SYSTEM,
        "messaging.operation.name": "notify",
        "messaging.operation.type": "send",
        "messaging.destination.name": kind,
        "longops.company": company,
    }
    if len(deliveries) == 1:
        attrs["messaging.message.id"] = str(deliveries[0][1])
    else:
        attrs["messaging.batch.message_count"] = len(deliveries)
    with providers.get().tracer.start_as_current_span(
        f"notify {kind}", kind=SpanKind.PRODUCER, attributes=attrs
    ) as span:
        yield Notifying(span, kind, company, deliveries)
