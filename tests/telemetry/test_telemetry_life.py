"""Spans, log events and metrics of operations' whole lives, from a real worker session on
both databases, captured by the OpenTelemetry SDK's in-memory exporters."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from otel_support import Captured

from longops import Longops, RunContext, Status
from longops.domain.clock import OffsetClock
from longops.services.rescuer import Rescuer
from longops.services.stall import StallDetector
from longops.store.base import ClaimParams
from longops.testing import Runner
from procs import wait_for

SECRET = "s3cr3t-IBAN-DE89370400440532013000"  # noqa: S105


@pytest.fixture
def app(db_url: str, clock: OffsetClock) -> Iterator[Longops]:
    application = Longops(db_url, clock=clock)
    calls: list[int] = []

    @application.task(name="flaky", max_attempts=3, rerun_delay=0)
    def flaky(ctx: RunContext, account: str) -> str:
        calls.append(ctx.attempt)
        ctx.step("Load", 1, 2)
        ctx.step("Post", 2, 2)
        if len(calls) == 1:
            raise ValueError(f"account {account} refused")  # customer content in the message
        return account

    @application.task(name="always_fails", max_attempts=1)
    def always_fails(account: str) -> None:
        raise KeyError(account)

    yield application
    application.close()


def _everything_exported(otel: Captured) -> str:
    parts: list[str] = []
    for span in otel.spans():
        parts.append(span.name)
        parts.append(repr(dict(span.attributes or {})))
        parts.extend(repr((e.name, dict(e.attributes or {}))) for e in span.events)
        parts.append(repr(span.status.description))
    parts.extend(repr(r) for r in otel.logs())
    for name, points in otel.metrics().items():
        parts.append(name)
        parts.extend(repr(dict(p.attributes or {})) for p in points)
    return "\n".join(parts)


def test_enqueue_retry_finish_is_one_trace_with_the_event_ids(app: Longops, otel: Captured) -> None:
    tracer = otel.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("POST /operations") as request:
        handle = app.enqueue("flaky", SECRET)
    op = handle.refresh()
    assert op.trace_context is not None
    assert f"{request.get_span_context().trace_id:032x}" in op.trace_context

    worker = app.worker(concurrency=1, poll_interval=0.05, heartbeat_interval=0.5)
    worker.start()
    try:
        wait_for(lambda: handle.refresh().status is Status.FINISHED, timeout=30, what="finished")
    finally:
        worker.stop(grace=5)

    spans = otel.spans()
    [send] = [s for s in spans if s.kind is SpanKind.PRODUCER]
    assert send.name == "send default"
    assert send.parent is not None
    assert send.parent.span_id == request.get_span_context().span_id
    assert send.attributes is not None
    assert send.attributes["messaging.system"] == "longops"
    assert send.attributes["messaging.message.id"] == str(op.id)
    assert send.attributes["longops.operation.entry_no"] == op.entry_no

    process = sorted(
        (s for s in spans if s.kind is SpanKind.CONSUMER), key=lambda s: s.start_time or 0
    )
    assert [s.name for s in process] == ["process default", "process default"]
    trace_id = request.get_span_context().trace_id
    for span in process:
        assert span.context is not None
        assert span.context.trace_id == trace_id
        assert span.parent is not None
        assert span.parent.span_id == send.context.span_id
        assert [link.context.span_id for link in span.links] == [send.context.span_id]
        assert span.attributes is not None
        assert span.attributes["messaging.operation.type"] == "process"
        assert span.attributes["longops.task"] == "flaky"
        assert span.attributes["longops.company"] == op.company
        assert span.attributes["longops.operation.entry_no"] == op.entry_no
    first, second = process
    assert first.attributes is not None
    assert second.attributes is not None
    assert [first.attributes["longops.attempt"], second.attributes["longops.attempt"]] == [1, 2]
    assert first.status.status_code is StatusCode.ERROR
    assert first.attributes["error.type"] == "ValueError"
    [exception] = [e for e in first.events if e.name == "exception"]
    assert dict(exception.attributes or {}) == {"exception.type": "ValueError"}
    assert second.status.status_code is not StatusCode.ERROR
    assert second.attributes["longops.outcome"] == "success"

    steps = [s for s in spans if s.name.startswith("step ")]
    assert sorted(s.name for s in steps) == ["step Load", "step Load", "step Post", "step Post"]
    process_ids = {s.context.span_id for s in process}
    assert all(s.parent is not None and s.parent.span_id in process_ids for s in steps)

    assert otel.event_ids(op.id) == ["LO0001", "LO0003", "LO0005", "LO0003", "LO0004"]
    [finished] = [r for r in otel.logs() if r["eventId"] == "LO0004"]
    assert finished["bcEventId"] == "AL0000E26"
    assert finished["task"] == "flaky"
    assert int(finished["executionTimeInMs"]) >= 0
    [failed] = [r for r in otel.logs() if r["eventId"] == "LO0005"]
    assert failed["errorType"] == "ValueError"
    # Each event carries the context of the span it happened in.
    assert finished["_span_id"] == second.context.span_id
    assert failed["_span_id"] == first.context.span_id

    metrics = otel.metrics()
    ended = {p.attributes["outcome"]: p.value for p in metrics["longops.attempts.ended"]}
    assert ended == {"error": 1, "success": 1}
    assert sum(p.value for p in metrics["longops.attempts.started"]) == 2
    assert sum(p.value for p in metrics["messaging.client.sent.messages"]) == 1
    assert sum(p.count for p in metrics["messaging.process.duration"]) == 2
    assert sum(p.count for p in metrics["longops.queue.wait"]) == 2
    assert sum(p.sum for p in metrics["longops.claim.batch_size"]) >= 2

    assert SECRET not in _everything_exported(otel)


def test_final_failure_and_operator_actions(app: Longops, otel: Captured) -> None:
    handle = app.enqueue("always_fails", SECRET, on_hold=True)
    handle.set_ready()
    assert Runner(app).run_until_idle() == 1
    handle.restart()
    handle.hold()
    handle.cancel(reason="not needed")
    ids = otel.event_ids(handle.id)
    assert ids == ["LO0001", "LO0015", "LO0003", "LO0006", "LO0015", "LO0014", "LO0007"]
    logs = {r["eventId"]: r for r in otel.logs()}
    assert logs["LO0006"]["errorType"] == "KeyError"
    assert logs["LO0006"]["bcEventId"] == "AL0000JRG"
    assert logs["LO0007"]["cancelMode"] == "before_start"
    assert logs["LO0015"]["action"] == "restart"
    assert SECRET not in _everything_exported(otel)


def test_cancel_of_a_running_operation(app: Longops, otel: Captured) -> None:
    began = threading.Event()

    @app.task(name="patient")
    def patient(ctx: RunContext) -> None:
        began.set()
        while True:
            ctx.advance()
            began.wait(0.01)

    worker = app.worker(concurrency=1, poll_interval=0.05, heartbeat_interval=0.5)
    worker.start()
    try:
        handle = app.enqueue("patient")
        assert began.wait(20)
        handle.cancel(reason="wrong month")
        wait_for(lambda: handle.refresh().status is Status.CANCELLED, timeout=30, what="cancel")
    finally:
        worker.stop(grace=5)
    assert otel.event_ids(handle.id) == ["LO0001", "LO0003", "LO0016", "LO0007"]
    [cancelled] = [r for r in otel.logs() if r["eventId"] == "LO0007"]
    assert cancelled["cancelMode"] == "cooperative"
    [process] = [s for s in otel.spans() if s.kind is SpanKind.CONSUMER]
    assert process.attributes is not None
    assert process.attributes["longops.outcome"] == "cancelled"


def test_stalled_then_moving_again(app: Longops, clock: OffsetClock, otel: Captured) -> None:
    moved = threading.Event()
    release = threading.Event()

    @app.task(name="slowpoke", stall_after=60, progress_interval=0.05)
    def slowpoke(ctx: RunContext) -> None:
        ctx.progress(1, 10)
        moved.wait(30)
        ctx.progress(5, 10)
        release.wait(30)

    worker = app.worker(concurrency=1, poll_interval=0.05, heartbeat_interval=0.5)
    worker.start()
    try:
        handle = app.enqueue("slowpoke")
        wait_for(
            lambda: (p := handle.refresh().progress) is not None and p.completed == 1,
            timeout=20,
            what="first progress",
        )
        clock.advance(seconds=120)
        assert StallDetector(app.store, clock).run_once() == 1
        moved.set()
        wait_for(lambda: "LO0010" in otel.event_ids(), timeout=20, what="unstalled")
        release.set()
        wait_for(lambda: handle.refresh().status is Status.FINISHED, timeout=20, what="end")
    finally:
        moved.set()
        release.set()
        worker.stop(grace=5)
    ids = otel.event_ids(handle.id)
    assert ids.index("LO0009") < ids.index("LO0010") < ids.index("LO0004")
    assert sum(p.value for p in otel.metrics()["longops.progress.writes"]) >= 2


def test_rescue_after_a_lost_session(app: Longops, clock: OffsetClock, otel: Captured) -> None:
    handle = app.enqueue("flaky", "x")
    runner = Runner(app)
    [claimed] = app.store.claim(ClaimParams(runner.session_id, ("default",), 1, clock.now()))
    clock.advance(seconds=120)  # the session never heartbeats again
    rescuer = Rescuer(app.store, clock, app.registry, session_timeout=timedelta(seconds=30))
    assert rescuer.run_once() >= 2
    ids = otel.event_ids()
    assert "LO0020" in ids  # the session was lost
    [rescued] = [r for r in otel.logs() if r["eventId"] == "LO0011"]
    assert rescued["operationId"] == str(handle.id)
    assert rescued["sessionId"] == str(runner.session_id)
    assert rescued["nextStatus"] == "ready"
    assert claimed.operation.id == handle.id
    sessions = [r for r in otel.logs() if r["eventId"] in ("LO0018", "LO0020")]
    assert [r["eventId"] for r in sessions] == ["LO0018", "LO0020"]


def test_dedup_hit_is_not_enqueued(app: Longops, otel: Captured) -> None:
    first = app.enqueue("flaky", "x", dedup_key="monthly")
    again = app.enqueue("flaky", "x", dedup_key="monthly")
    assert again.id == first.id
    assert otel.event_ids(first.id) == ["LO0001", "LO0002"]
