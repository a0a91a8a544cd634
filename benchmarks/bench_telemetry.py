"""What telemetry costs: the drain of bench_core.py with telemetry off and fully on.

Run from the project root::

    .venv/bin/python benchmarks/bench_telemetry.py [--db sqlite|postgres|both] [--quick]

"Off" is ``LONGOPS_TELEMETRY=off`` (the OpenTelemetry API's no-op providers: the cost of the
hooks alone). "On" sets ``OTEL_EXPORTER_OTLP_ENDPOINT`` to a local OTLP/HTTP receiver in
this process, so the workers export every span, log event and metric over HTTP (the SDK's
batch processors, default settings). The runs alternate off/on on fresh databases; each
figure is the median of ``--repeat`` runs. The "on" runs must deliver a ``process`` span per
operation to the receiver, or the benchmark stops with an error. Results go to
``benchmarks/results/telemetry.md``; the machine is shared, so read the ratio, not the
absolute figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench_app import make_app
from bench_core import (
    DEFAULT_PG_ADMIN_URL,
    FULL,
    QUICK,
    RESULTS,
    BenchConfig,
    InvalidRunError,
    bench_bulk,
    bench_drain,
    fresh_database,
)


class Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.process_spans = 0
        self.requests = 0
        self.bytes = 0


@contextmanager
def receiver() -> Iterator[tuple[str, Counts]]:
    counts = Counts()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            spans = 0
            if self.path == "/v1/traces":
                request = ExportTraceServiceRequest.FromString(body)
                spans = sum(
                    1
                    for rs in request.resource_spans
                    for ss in rs.scope_spans
                    for s in ss.spans
                    if s.name.startswith("process ")
                )
            with counts.lock:
                counts.process_spans += spans
                counts.requests += 1
                counts.bytes += len(body)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", counts
    finally:
        server.shutdown()
        server.server_close()


def one_drain(dialect: str, cfg: BenchConfig, mode: str, rep: int, endpoint: str) -> float:
    env = {"LONGOPS_TELEMETRY": "off"} if mode == "off" else {
        "LONGOPS_TELEMETRY": "auto",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_SERVICE_NAME": "bench-worker",
    }  # fmt: skip
    with fresh_database(dialect, f"tel_{mode}_{rep}", cfg) as url:
        app = make_app(url)
        try:
            bench_bulk(app, cfg.sizes)
            result = bench_drain(app, url, cfg, f"{dialect}-tel-{mode}-{rep}", env_extra=env)
        finally:
            app.close()
    return float(result["ops_per_s"])


def run(dialect: str, cfg: BenchConfig, repeat: int) -> dict[str, Any]:
    figures: dict[str, list[float]] = {"off": [], "on": []}
    with receiver() as (endpoint, counts):
        for rep in range(repeat):
            order = ("off", "on") if rep % 2 == 0 else ("on", "off")
            for mode in order:
                before = counts.process_spans
                ops = one_drain(dialect, cfg, mode, rep, endpoint)
                got = counts.process_spans - before
                if mode == "on" and got < cfg.sizes.bulk_total:
                    raise InvalidRunError(f"only {got} process spans for {cfg.sizes.bulk_total}")
                if mode == "off" and got:
                    raise InvalidRunError(f"{got} spans exported with telemetry off")
                figures[mode].append(ops)
                print(f"[{dialect}] run {rep + 1} telemetry {mode}: {ops:,.0f} ops/s", flush=True)
        exported = {"requests": counts.requests, "bytes": counts.bytes}
    off, on = statistics.median(figures["off"]), statistics.median(figures["on"])
    return {
        "operations": cfg.sizes.bulk_total,
        "runs_ops_per_s": figures,
        "off_ops_per_s": round(off, 1),
        "on_ops_per_s": round(on, 1),
        "on_over_off": round(on / off, 3),
        "cost_percent": round(100 * (1 - on / off), 1),
        "exported": exported,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="2,000 operations per drain")
    parser.add_argument("--repeat", type=int, default=None, help="runs per mode (default 3)")
    parser.add_argument(
        "--pg-admin-url", default=os.environ.get("LONGOPS_BENCH_PG_URL", DEFAULT_PG_ADMIN_URL)
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else replace(FULL, bulk_total=10_000)
    repeat = args.repeat or (2 if args.quick else 3)
    cfg = BenchConfig(args.pg_admin_url, Path(tempfile.mkdtemp(prefix="longops-tel-")), sizes)
    dialects = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    results = {d: run(d, cfg, repeat) for d in dialects}
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = ".quick" if args.quick else ""
    (args.out / f"telemetry{suffix}.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Telemetry overhead (benchmarks/bench_telemetry.py)",
        "",
        "| database | operations | off ops/s | on (OTLP) ops/s | on/off | cost |",
        "|---|---|---|---|---|---|",
    ]
    for d, r in results.items():
        lines.append(
            f"| {d} | {r['operations']:,} | {r['off_ops_per_s']:,.0f} | "
            f"{r['on_ops_per_s']:,.0f} | {r['on_over_off']} | {r['cost_percent']} % |"
        )
    (args.out / f"telemetry{suffix}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
