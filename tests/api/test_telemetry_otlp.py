"""One trace from the HTTP request that enqueues to the run in a worker process, received by
a real OTLP/HTTP endpoint (a local server decoding the protobuf payloads)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from live import OWN, TASK, Live
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from longops import Status, telemetry
from procs import APPS, stop_workers, wait_for

sys.path.insert(0, str(Path(__file__).parents[1] / "telemetry"))
from otlp_receiver import Received, otlp_receiver

ENQUEUE = f"/v1/companies/{OWN}/tasks/{TASK}:enqueue"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def receiver() -> Iterator[tuple[str, Received]]:
    with otlp_receiver() as found:
        yield found


def _worker(db_url: str, endpoint: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), env.get("PYTHONPATH", "")])
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    env["OTEL_SERVICE_NAME"] = "worker-under-test"
    env["OTEL_BSP_SCHEDULE_DELAY"] = "100"
    env["OTEL_METRIC_EXPORT_INTERVAL"] = "500"
    cmd = [
        sys.executable, "-m", "longops.cli.main", "--app", "telemetry_app:app",
        "--database-url", db_url, "worker", "--concurrency", "1", "--poll-interval", "0.1",
        "--heartbeat-interval", "0.5",
    ]  # fmt: skip
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_one_trace_from_the_request_to_the_run(live: Live, receiver: tuple[str, Received]) -> None:
    endpoint, received = receiver
    provider = TracerProvider(resource=Resource.create({"service.name": "api-under-test"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"))
    )
    telemetry.use(tracer_provider=provider)
    try:
        with live.client("JOBQUEUE-USER") as http:
            response = http.post(
                ENQUEUE, json={"kwargs": {"n": 2}}, headers={"traceparent": CALLER}
            )
        assert response.status_code == 202, response.text
        operation_id = response.json()["id"]
        # The server span ends after the response went out: wait for it before shutting down.
        wait_for(
            lambda: any(s.kind == s.SPAN_KIND_SERVER for _, s in received.span_list()),
            timeout=20,
            what="the server span",
        )
    finally:
        telemetry.use()
        provider.shutdown()
    worker = _worker(live.app.database_url, endpoint)
    try:
        wait_for(
            lambda: live.app.get(operation_id).status is Status.FINISHED,
            timeout=60,
            what="the run",
        )
    finally:
        assert stop_workers([worker]) == [0]  # SIGTERM: the SDK flushes at exit

    def spans_of(service: str) -> list[object]:
        return [s for svc, s in received.span_list() if svc == service]

    api_spans = spans_of("api-under-test")
    worker_spans = wait_for(lambda: spans_of("worker-under-test"), timeout=30, what="spans")
    [server] = [
        s for s in api_spans if s.name == "POST /v1/companies/{company}/tasks/{task}:enqueue"
    ]
    [send] = [s for s in api_spans if s.name == "send default"]
    [process] = [s for s in worker_spans if s.name == "process default"]
    [step] = [s for s in worker_spans if s.name == "step Count"]
    for span in (server, send, process, step):
        assert span.trace_id.hex() == TRACE_ID, span.name
    assert server.parent_span_id.hex() == "00f067aa0ba902b7"
    assert send.parent_span_id == server.span_id
    assert process.parent_span_id == send.span_id
    assert step.parent_span_id == process.span_id
    attributes = {a.key: a.value for a in process.attributes}
    assert attributes["messaging.message.id"].string_value == operation_id
    assert attributes["longops.outcome"].string_value == "success"
    assert attributes["longops.company"].string_value == OWN
