"""The lean path (``longops.telemetry.lean``): what a worker ships when longops sets up OTLP
over HTTP itself. Its ``process`` spans, log records and histograms are the SDK path's, field
for field (the SDK path is what the in-memory exporter tests check); an operation's life on
both databases; and a real process configured from the environment, exporting to a local
receiver at exit, with nothing of a secret in any payload."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from lean_support import LeanCaptured, attributes, lean_captured, value
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from otel_support import Captured, captured

from longops import Longops, RunContext, Status, telemetry
from longops.domain.clock import OffsetClock
from longops.domain.operation import Operation, Outcome
from longops.domain.status import Status as OpStatus
from longops.store.base import RunResult
from longops.telemetry import config, lean, providers
from longops.telemetry.settings import settings
from procs import wait_for

SECRET = "s3cr3t-IBAN-DE89370400440532013000"  # noqa: S105
CREATION = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
UNSAMPLED = "00-1af7651916cd43dd8448eb211c80319c-c7ad6b7169203331-00"


# -- the same hooks on both paths -------------------------------------------------------------
def _operation(tmp_path: Path) -> Operation:
    app = Longops(f"sqlite:///{tmp_path / 'same.db'}")
    app.migrate()
    app.task(name="post_invoices")(lambda: None)
    found = app.store.get_operation(app.enqueue("post_invoices").id)
    app.close()
    assert found is not None
    return replace(
        found, attempt_count=1, session_id=uuid.uuid4(), entry_no=7, trace_context=CREATION
    )


def _attempts(op: Operation) -> None:
    """An attempt that fails and will retry (a step, a timed statement), one that finishes,
    one whose code raises through the span, and one under an unsampled parent."""
    began = op.created_at + timedelta(milliseconds=5)
    at = began + timedelta(milliseconds=40)

    def result(outcome: Outcome, status: OpStatus, message: str | None = None) -> RunResult:
        return RunResult(
            operation_id=op.id,
            lease_token=uuid.uuid4(),
            run_no=1,
            at=at,
            outcome=outcome,
            status=status,
            started_at=began,
            error_message=message,
            earliest_start_at=at,
        )

    with telemetry.processing(op, 1):
        telemetry.started(op, 1, began)
        telemetry.step("Load", 1, 2)
        telemetry.sql_timed("claim", 0.0001)
        error = ValueError(f"account {SECRET} refused")
        telemetry.ended(op, 1, result(Outcome.ERROR, OpStatus.READY, str(error)), error)
    second = replace(op, attempt_count=2)
    with telemetry.processing(second, 2):
        telemetry.started(second, 2, began)
        telemetry.ended(second, 2, result(Outcome.SUCCESS, OpStatus.FINISHED), None)
    with pytest.raises(KeyError), telemetry.processing(replace(op, attempt_count=3), 3):
        raise KeyError(SECRET)
    with telemetry.processing(replace(op, trace_context=UNSAMPLED), 4):
        telemetry.started(op, 4, began)


def _span_view(span: Any) -> dict[str, Any]:
    attrs = attributes(span.attributes)
    for key in ("longops.cpu_seconds",):  # measured: differs from run to run
        attrs[key] = type(attrs[key]).__name__
    return {
        "name": span.name,
        "kind": span.kind,
        "trace_id": span.trace_id.hex(),
        "parent_span_id": span.parent_span_id.hex(),
        "attributes": attrs,
        "events": [(e.name, attributes(e.attributes)) for e in span.events],
        "links": [(li.trace_id.hex(), li.span_id.hex(), li.flags) for li in span.links],
        "status": (span.status.code, span.status.message),
        "flags": span.flags,
    }


def _log_view(record: Any, span_ids: list[bytes]) -> dict[str, Any]:
    return {
        "severity": (record.severity_number, record.severity_text),
        "body": value(record.body),
        "attributes": attributes(record.attributes),
        "event_name": record.event_name,
        "flags": record.flags,
        "trace_id": record.trace_id.hex(),
        "span": span_ids.index(record.span_id) if record.span_id in span_ids else None,
        "has_time": (record.time_unix_nano != 0, record.observed_time_unix_nano != 0),
    }


def _histograms(points: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {
        name: sorted(
            (sorted(p.attributes.items()), p.count, p.sum, list(p.bucket_counts), p.min, p.max)
            for p in points[name]
        )
        for name in ("messaging.process.duration", "longops.queue.wait")
    }


def test_the_lean_path_exports_what_the_sdk_path_does(tmp_path: Path) -> None:
    op = _operation(tmp_path)
    sdk: Iterator[Captured] = captured()
    otel = next(sdk)
    try:
        _attempts(op)
        sdk_spans = [
            s for s in otel.spans_exporter.get_finished_spans() if s.name.startswith("process ")
        ]
        theirs = [
            span
            for rs in encode_spans(sdk_spans).resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]
        their_logs = [
            r
            for rl in encode_logs(otel.logs_exporter.get_finished_logs()).resource_logs
            for sl in rl.scope_logs
            for r in sl.log_records
        ]
        their_points = _histograms(otel.metrics())
        their_steps = [s.name for s in otel.spans() if s.name.startswith("step ")]
    finally:
        sdk.close()
    with lean_captured() as got:
        _attempts(op)
        ours = got.process_spans()
        our_logs = got.log_records()
        our_points = _histograms(got.metrics())
        our_steps = got.step_spans()
    assert len(theirs) == 3  # the unsampled parent's attempt has no span, on either path
    assert [_span_view(s) for s in ours] == [_span_view(s) for s in theirs]
    assert ours[1].attributes[0].key == "messaging.system"
    their_ids = [s.span_id for s in theirs]
    our_ids = [s.span_id for s in ours]
    assert [_log_view(r, our_ids) for r in our_logs] == [
        _log_view(r, their_ids) for r in their_logs
    ]
    assert [_log_view(r, our_ids)["span"] for r in our_logs[:3]] == [0, 0, 1]
    assert our_points == their_points
    # A step span (the SDK's, on both paths) is the child of the lean span.
    assert [s.name for s in our_steps] == their_steps == ["step Load"]
    assert our_steps[0].parent is not None
    assert our_steps[0].parent.span_id.to_bytes(8, "big") == ours[0].span_id


# -- an operation's life on both databases ----------------------------------------------------
@pytest.fixture
def lean_otel() -> Iterator[LeanCaptured]:
    with lean_captured() as found:
        yield found


@pytest.fixture
def app(db_url: str, clock: OffsetClock) -> Iterator[Longops]:
    application = Longops(db_url, clock=clock)
    calls: list[int] = []

    @application.task(name="flaky", max_attempts=3, rerun_delay=0)
    def flaky(ctx: RunContext, account: str) -> str:
        calls.append(ctx.attempt)
        ctx.step("Load", 1, 2)
        if len(calls) == 1:
            raise ValueError(f"account {account} refused")
        return account

    yield application
    application.close()


def test_enqueue_retry_finish_on_the_lean_path(app: Longops, lean_otel: LeanCaptured) -> None:
    handle = app.enqueue("flaky", SECRET)
    op = handle.refresh()
    worker = app.worker(concurrency=1, poll_interval=0.05, heartbeat_interval=0.5)
    worker.start()
    try:
        wait_for(lambda: handle.refresh().status is Status.FINISHED, timeout=30, what="finished")
    finally:
        worker.stop(grace=5)
    assert lean_otel.event_ids(op.id) == ["LO0001", "LO0003", "LO0005", "LO0003", "LO0004"]
    spans = lean_otel.process_spans()
    assert [s.name for s in spans] == ["process default", "process default"]
    first, second = spans
    assert {s.trace_id.hex() for s in spans} == {op.trace_context.split("-")[1]}  # type: ignore[union-attr]
    assert attributes(first.attributes)["error.type"] == "ValueError"
    assert attributes(second.attributes)["longops.outcome"] == "success"
    assert attributes(second.attributes)["longops.operation.entry_no"] == op.entry_no
    logs = lean_otel.logs()
    [failed] = [r for r in logs if r["eventId"] == "LO0005"]
    [finished] = [r for r in logs if r["eventId"] == "LO0004"]
    assert failed["errorType"] == "ValueError"
    assert failed["_span_id"] == int.from_bytes(first.span_id, "big")
    assert finished["_span_id"] == int.from_bytes(second.span_id, "big")
    assert finished["body"] == f"Operation finished: {op.id}"
    steps = lean_otel.step_spans()
    assert {s.parent.span_id for s in steps if s.parent} == {
        int.from_bytes(s.span_id, "big") for s in spans
    }
    metrics = lean_otel.metrics()
    assert sum(p.count for p in metrics["messaging.process.duration"]) == 2
    assert sum(p.count for p in metrics["longops.queue.wait"]) == 2
    ended = {p.attributes["outcome"]: p.value for p in metrics["longops.attempts.ended"]}
    assert ended == {"error": 1, "success": 1}
    exported = repr(spans) + repr(logs) + repr(lean_otel.step_spans())
    assert SECRET not in exported


# -- when the lean path applies ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("env", "applies"),
    [
        ({}, True),
        ({"OTEL_TRACES_SAMPLER": "parentbased_always_on"}, True),
        ({"OTEL_TRACES_SAMPLER": "traceidratio"}, False),
        ({"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "5"}, False),
        ({"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "10"}, False),
        ({"OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_PYTHON_ID_GENERATOR": "xray"}, False),
        (
            {
                "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION": (
                    "base2_exponential_bucket_histogram"
                )
            },
            False,
        ),
    ],
)
def test_the_lean_path_steps_aside_for_what_only_the_sdk_does(
    env: dict[str, str], applies: bool
) -> None:
    assert lean.applies(env) is applies


@pytest.mark.parametrize(
    ("env", "applies"),
    [
        ({}, True),
        ({"LONGOPS_TELEMETRY": "sdk"}, False),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, False),
        ({"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=0"}, False),
    ],
)
def test_configure_takes_the_lean_path_for_otlp_over_http_only(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], applies: bool
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    for name, setting in env.items():
        monkeypatch.setenv(name, setting)
    settings.cache_clear()
    assert config._lean_applies(config.wanted()) is applies


# -- a real process, configured from the environment ------------------------------------------
SCRIPT = """
import sys
from longops import Longops
from longops.telemetry import providers
from longops.testing import Runner

app = Longops(sys.argv[1])
app.store.migrate()
calls = []

@app.task(name="flaky", max_attempts=2, rerun_delay=0)
def flaky(account):
    calls.append(account)
    if len(calls) == 1:
        raise ValueError("account " + account + " refused")

import time
handle = app.enqueue("flaky", sys.argv[2])
runs, deadline = 0, time.monotonic() + 60
while runs < 2 and time.monotonic() < deadline:  # the retry is due a moment later
    runs += Runner(app).run_until_idle()
assert runs == 2, runs
print("lean" if providers.current.lean is not None else "sdk")
app.close()
"""


@pytest.fixture
def bodies() -> Iterator[tuple[str, dict[str, list[bytes]]]]:
    found: dict[str, list[bytes]] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                found.setdefault(self.path, []).append(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", found
    finally:
        server.shutdown()
        server.server_close()


def _decoded(found: dict[str, list[bytes]], path: str, parse: Callable[[bytes], Any]) -> list[Any]:
    return [parse(body) for body in found.get(path, [])]


def test_a_configured_process_exports_on_the_lean_path_at_exit(
    bodies: tuple[str, dict[str, list[bytes]]], tmp_path: Path
) -> None:
    endpoint, found = bodies
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "APPLICATIONINSIGHTS"))
    }
    env.pop("LONGOPS_TELEMETRY", None)
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    env["OTEL_SERVICE_NAME"] = "lean-process"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, f"sqlite:///{tmp_path / 'lean.db'}", SECRET],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert done.stdout.decode().split() == ["lean"]
    traces = _decoded(found, "/v1/traces", ExportTraceServiceRequest.FromString)
    spans = [
        (attributes(rs.resource.attributes)["service.name"], s)
        for request in traces
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    ]
    process = [s for service, s in spans if s.name == "process default"]
    assert len(process) == 2
    assert {service for service, _ in spans} == {"lean-process"}
    assert all(s.trace_id == process[0].trace_id for s in process)
    logs = [
        r
        for request in _decoded(found, "/v1/logs", ExportLogsServiceRequest.FromString)
        for rl in request.resource_logs
        for sl in rl.scope_logs
        for r in sl.log_records
    ]
    dims = [attributes(r.attributes) for r in logs]
    ids = [d["eventId"] for d in dims if "operationId" in d]
    assert ids == ["LO0001", "LO0003", "LO0005", "LO0003", "LO0004"]
    assert "LO0018" in {d["eventId"] for d in dims}  # the session's logon, not an operation's
    metrics = {
        m.name
        for request in _decoded(found, "/v1/metrics", ExportMetricsServiceRequest.FromString)
        for rm in request.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert {"messaging.process.duration", "longops.queue.wait", "longops.attempts.ended"} <= metrics
    everything = b"".join(b for bodies_of in found.values() for b in bodies_of)
    assert SECRET.encode() not in everything
    assert providers.current.lean is None  # this process stayed as it was


def test_flushing_the_sdks_providers_flushes_the_lean_records(lean_otel: LeanCaptured) -> None:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.trace import TracerProvider

    tracer_provider, logger_provider = TracerProvider(), LoggerProvider()
    span_flusher, log_flusher = lean.flushers(lean_otel.recorder)
    tracer_provider.add_span_processor(span_flusher)
    logger_provider.add_log_record_processor(log_flusher)
    telemetry.maintenance("pruner", 3)
    logger_provider.get_logger("other").emit(body="not longops's")  # the flusher ignores it
    log_flusher.on_emit(None)
    assert lean_otel.logs_exporter.bodies == []
    assert logger_provider.force_flush()
    assert len(lean_otel.logs_exporter.bodies) == 1
    telemetry.maintenance("pruner", 4)
    tracer_provider.shutdown()  # as at exit
    assert len(lean_otel.logs_exporter.bodies) == 2
    assert lean_otel.event_ids() == ["LO0022", "LO0022"]
    logger_provider.shutdown()


# -- what the attempt's thread leaves to the export thread ------------------------------------
def test_the_metrics_count_attempts_not_exported_yet(tmp_path: Path) -> None:
    """The attempt's thread only queues its state; the counters and histograms are counted
    when the queue is read, which a metric collection does first."""
    op = _operation(tmp_path)
    began = op.created_at + timedelta(milliseconds=5)
    done = RunResult(
        operation_id=op.id,
        lease_token=uuid.uuid4(),
        run_no=1,
        at=began + timedelta(milliseconds=40),
        outcome=Outcome.SUCCESS,
        status=OpStatus.FINISHED,
        started_at=began,
    )
    with lean_captured() as got:
        for _ in range(3):
            with telemetry.processing(op, 1):
                telemetry.started(op, 1, began)
                telemetry.ended(op, 1, done, None)
        assert got.spans_exporter.bodies == got.logs_exporter.bodies == []  # nothing sent
        metrics = got.metrics()
        assert [p.value for p in metrics["longops.attempts.started"]] == [3]
        assert [p.value for p in metrics["longops.attempts.ended"]] == [3]
        [duration] = metrics["messaging.process.duration"]
        assert (duration.count, duration.sum) == (3, pytest.approx(0.12))
        [wait] = metrics["longops.queue.wait"]
        assert wait.count == 3
        assert len(got.process_spans()) == 3
        assert got.event_ids(op.id) == ["LO0003", "LO0004"] * 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CREATION, (0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, 1)),
        (UNSAMPLED, (0x1AF7651916CD43DD8448EB211C80319C, 0xC7AD6B7169203331, 0)),
        ("01" + CREATION[2:] + "-later-fields", (0x0AF7651916CD43DD8448EB211C80319C,
                                                 0xB7AD6B7169203331, 1)),
        (None, None),
        ("", None),
        (CREATION + "-more", None),  # version 00 has exactly four fields
        ("ff" + CREATION[2:], None),
        (CREATION.upper(), None),
        (CREATION.replace("0a", " a", 1), None),
        (CREATION[:-1], None),
        ("00-" + "0" * 32 + "-b7ad6b7169203331-01", None),
        ("00-0af7651916cd43dd8448eb211c80319c-" + "0" * 16 + "-01", None),
        (CREATION.replace("-", "_"), None),
    ],
)  # fmt: skip
def test_a_stored_traceparent_is_parsed_once_by_both_paths(
    text: str | None, expected: tuple[int, int, int] | None
) -> None:
    assert lean.traceparent(text) == expected
    found = lean.traceparent_bytes(text)
    assert (None if found is None else lean.traceparent(text)) == expected
