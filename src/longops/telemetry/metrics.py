"""The worker's and the enqueuing process's OpenTelemetry metrics (no-op until a meter
provider is configured).

| instrument | kind | unit | attributes |
|---|---|---|---|
| ``messaging.client.sent.messages`` | counter | ``{message}`` | queue, task |
| ``longops.attempts.started`` | counter | ``{attempt}`` | queue, task |
| ``longops.attempts.ended`` | counter | ``{attempt}`` | queue, task, outcome |
| ``messaging.process.duration`` | histogram | ``s`` | queue, task, outcome |
| ``longops.queue.wait`` | histogram | ``s`` | queue, task |
| ``longops.progress.writes`` | counter | ``{write}`` | |
| ``longops.claim.batch_size`` | histogram | ``{operation}`` | |
"""

from __future__ import annotations

from opentelemetry.metrics import Meter


class Instruments:
    def __init__(self, meter: Meter) -> None:
        self.sent = meter.create_counter(
            "messaging.client.sent.messages", unit="{message}", description="Operations enqueued"
        )
        self.started = meter.create_counter(
            "longops.attempts.started", unit="{attempt}", description="Attempts whose code began"
        )
        self.ended = meter.create_counter(
            "longops.attempts.ended", unit="{attempt}", description="Attempts ended, by outcome"
        )
        self.duration = meter.create_histogram(
            "messaging.process.duration", unit="s", description="How long an attempt ran"
        )
        self.queue_wait = meter.create_histogram(
            "longops.queue.wait",
            unit="s",
            description="From ready (and due) to started: how long an operation waited",
        )
        self.progress_writes = meter.create_counter(
            "longops.progress.writes", unit="{write}", description="Progress readings written"
        )
        self.claim_batch = meter.create_histogram(
            "longops.claim.batch_size", unit="{operation}", description="Operations per claim"
        )
