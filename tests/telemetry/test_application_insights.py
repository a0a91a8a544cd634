"""Application Insights: with APPLICATIONINSIGHTS_CONNECTION_STRING set, the Azure Monitor
exporter posts envelopes whose custom dimensions carry eventId (as Business Central's do),
here to a local ingestion endpoint."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import azure.monitor.opentelemetry.exporter  # noqa: F401  (a dev dependency: missing fails)
import pytest

SCRIPT = """
import sys
from opentelemetry import _logs, trace
from longops import Longops
from longops.testing import Runner

app = Longops(sys.argv[1])
app.store.migrate()
app.task(name="post_invoices")(lambda month: 3)
app.enqueue("post_invoices", "2026-01")
assert Runner(app).run_until_idle() == 1
app.close()
trace.get_tracer_provider().force_flush()
_logs.get_logger_provider().force_flush()
"""


@pytest.fixture
def ingestion() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    envelopes: list[dict[str, Any]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            items = json.loads(body)
            items = items if isinstance(items, list) else [items]
            with lock:
                envelopes.extend(items)
            reply = json.dumps(
                {"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", envelopes
    finally:
        server.shutdown()
        server.server_close()


def test_envelopes_carry_the_event_ids(
    ingestion: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    endpoint, envelopes = ingestion
    env = dict(os.environ)
    for name in list(env):
        if name.startswith("OTEL_"):
            del env[name]
    env["APPLICATIONINSIGHTS_CONNECTION_STRING"] = (
        f"InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint={endpoint}"
    )
    env["APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL"] = "true"
    env["TMPDIR"] = str(tmp_path)  # the exporter's offline storage stays in the test's folder
    db = f"sqlite:///{tmp_path / 'ai.db'}"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, db], env=env, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    messages = [e for e in envelopes if e.get("data", {}).get("baseType") == "MessageData"]
    dims = [m["data"]["baseData"].get("properties", {}) for m in messages]
    assert {"LO0001", "LO0003", "LO0004"} <= {d.get("eventId") for d in dims}
    [finished] = [d for d in dims if d.get("eventId") == "LO0004"]
    assert finished["bcEventId"] == "AL0000E26"
    assert finished["task"] == "post_invoices"
    requests = [e for e in envelopes if e.get("data", {}).get("baseType") == "RequestData"]
    assert any(r["data"]["baseData"]["name"] == "process default" for r in requests)
