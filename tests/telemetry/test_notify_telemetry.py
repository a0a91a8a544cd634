"""Telemetry of notifications (both databases): a ``notify {channel}`` span per send, the
``longops.sent.notifications`` counter by channel kind and outcome, and LO0028 / LO0029,
caught by the OpenTelemetry SDK's in-memory exporters."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from otel_support import Captured

from longops import EnqueueRequest, FrozenClock, Longops
from longops.notify.secrets import SecretBox
from longops.testing import Runner
from notify_receivers import refused_port, webhook

COMPANY = "ACME"


@pytest.fixture
def app(db_url: str) -> Iterator[Longops]:
    application = Longops(db_url, clock=FrozenClock(), secret_key=SecretBox.generate_key())
    application.add_company(COMPANY)

    @application.task(name="boom", max_attempts=1)
    def boom() -> None:
        raise RuntimeError("no")

    yield application
    application.close()


def test_each_send_is_a_span_a_count_and_an_event(app: Longops, otel: Captured) -> None:
    setup = app.notification_setup
    with webhook() as good:
        setup.add_channel(COMPANY, "good", good.url())
        setup.add_channel(COMPANY, "gone", f"json://127.0.0.1:{refused_port()}/hook")
        setup.add_rule(COMPANY, "all", on="failed", to=["channel:good", "channel:gone"])
        app.service.enqueue(EnqueueRequest(task="boom", company=COMPANY))
        Runner(app).run_until_idle()
        service = app.delivery_service(max_attempts=2, backoff_base=1.0)
        service.run_once()
        app.clock.advance(seconds=1)  # type: ignore[attr-defined]
        service.run_once()
        assert len(good.received) == 1
    spans = [s for s in otel.spans() if s.name.startswith("notify ")]
    assert [s.name for s in spans] == ["notify json"] * 3  # good, gone, gone again
    by_outcome = {str((s.attributes or {})["longops.notify.outcome"]): s for s in spans}
    assert set(by_outcome) == {"sent", "retry", "dead"}
    sent = by_outcome["sent"].attributes or {}
    [delivered] = [d for d in setup.list_deliveries(COMPANY) if d.recipient == "channel:good"]
    assert sent["messaging.message.id"] == str(delivered.idem_key)
    assert sent["messaging.operation.name"] == "notify"
    assert sent["longops.company"] == COMPANY
    assert not by_outcome["dead"].status.is_ok
    counts = {
        (p.attributes["channel"], p.attributes["outcome"]): p.value
        for p in otel.metrics()["longops.sent.notifications"]
    }
    assert counts == {("json", "sent"): 1, ("json", "retry"): 1, ("json", "dead"): 1}
    events = {r["eventId"]: r for r in otel.logs() if r["eventId"] in ("LO0028", "LO0029")}
    assert events["LO0028"]["deliveryId"] == delivered.id
    assert events["LO0028"]["channel"] == "json"
    assert events["LO0029"]["attempts"] == 2
    for record in otel.logs():  # nothing of the URL leaves
        assert "/hook" not in str(record)
