"""One SERVER span per request, whatever FastAPI does on its own.

FastAPI 0.165 and later trace requests natively once a global tracer provider is set; the
API has its own middleware (which continues a caller's ``traceparent`` on every supported
FastAPI), so the native one must stay off or each request becomes two spans in two traces.
A global provider can be set once per process, hence a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import json, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

from fastapi.testclient import TestClient
from longops import Longops
from longops.api import create_api

app = Longops(sys.argv[1])
app.migrate()
with TestClient(create_api(app)) as client:
    assert client.get("/healthz").status_code == 200
    assert client.get("/healthz", headers={
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01"
    }).status_code == 200
app.close()
servers = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
print(json.dumps([[s.name, format(s.context.trace_id, "032x")] for s in servers]))
"""


def test_a_request_is_one_server_span_in_the_callers_trace(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, f"sqlite:///{tmp_path / 'spans.db'}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    servers = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(servers) == 2, servers  # one span for each of the two requests
    assert servers[1][1] == "0af7651916cd43dd8448eb211c80319c"  # the caller's trace
