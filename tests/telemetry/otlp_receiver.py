"""A local OTLP/HTTP receiver: decodes the protobuf payloads an exporter posts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


@dataclass
class Received:
    spans: list[Any] = field(default_factory=list)
    """(resource service name, span) pairs."""
    logs: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def span_list(self) -> list[tuple[str, Any]]:
        with self.lock:
            return list(self.spans)


def _service(resource: Any) -> str:
    for attr in resource.attributes:
        if attr.key == "service.name":
            return str(attr.value.string_value)
    return ""


@contextmanager
def otlp_receiver() -> Iterator[tuple[str, Received]]:
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == "/v1/traces":
                request = ExportTraceServiceRequest.FromString(body)
                with received.lock:
                    for rs in request.resource_spans:
                        for ss in rs.scope_spans:
                            received.spans.extend((_service(rs.resource), s) for s in ss.spans)
            elif self.path == "/v1/logs":
                logs = ExportLogsServiceRequest.FromString(body)
                with received.lock:
                    for rl in logs.resource_logs:
                        for sl in rl.scope_logs:
                            received.logs.extend(sl.log_records)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
