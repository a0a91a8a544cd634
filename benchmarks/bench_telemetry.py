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
import subprocess
import sys
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
    """What the receiver got. The trace payloads are decoded after the drain
    (:meth:`count_spans`), not while it runs: a collector runs elsewhere, and decoding here
    would take CPU from the workers on the benchmark's own cores."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.process_spans = 0
        self.requests = 0
        self.bytes = 0
        self.pending: list[bytes] = []

    def count_spans(self) -> int:
        with self.lock:
            pending, self.pending = self.pending, []
        for body in pending:
            request = ExportTraceServiceRequest.FromString(body)
            self.process_spans += sum(
                1
                for rs in request.resource_spans
                for ss in rs.scope_spans
                for s in ss.spans
                if s.name.startswith("process ")
            )
        return self.process_spans


@contextmanager
def receiver() -> Iterator[tuple[str, Counts]]:
    counts = Counts()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with counts.lock:
                if self.path == "/v1/traces":
                    counts.pending.append(body)
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


def worker_env(mode: str, endpoint: str, before_src: Path | None) -> dict[str, str]:
    if mode == "on":
        return {
            "LONGOPS_TELEMETRY": "auto",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_SERVICE_NAME": "bench-worker",
        }
    if mode == "before":
        assert before_src is not None
        return {"PYTHONPATH": str(before_src)}
    return {"LONGOPS_TELEMETRY": "off"}


def check_before(before_src: Path) -> None:
    """The "before" workers must really run the code from before telemetry: ``longops``
    imported from ``before_src``, with no ``longops.telemetry``."""
    probe = (
        "import importlib.util, longops; "
        "print(longops.__file__, importlib.util.find_spec('longops.telemetry') is None)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env=dict(os.environ, PYTHONPATH=str(before_src)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not (out[0].startswith(str(before_src)) and out[1] == "True"):
        raise InvalidRunError(f"{before_src} is not the code from before telemetry: {out}")


def one_drain(
    dialect: str, cfg: BenchConfig, mode: str, rep: int, endpoint: str, before_src: Path | None
) -> float:
    env = worker_env(mode, endpoint, before_src)
    with fresh_database(dialect, f"tel_{mode}_{rep}", cfg) as url:
        app = make_app(url)
        try:
            bench_bulk(app, cfg.sizes)
            result = bench_drain(app, url, cfg, f"{dialect}-tel-{mode}-{rep}", env_extra=env)
        finally:
            app.close()
    return float(result["ops_per_s"])


def run(dialect: str, cfg: BenchConfig, repeat: int, before_src: Path | None) -> dict[str, Any]:
    modes = ("off", "on", "before") if before_src is not None else ("off", "on")
    figures: dict[str, list[float]] = {m: [] for m in modes}
    with receiver() as (endpoint, counts):
        for rep in range(repeat):
            # Rotate the order, so no mode always runs first (or last) on a loaded machine.
            order = modes[rep % len(modes) :] + modes[: rep % len(modes)]
            for mode in order:
                before = counts.count_spans()
                ops = one_drain(dialect, cfg, mode, rep, endpoint, before_src)
                got = counts.count_spans() - before
                if mode == "on" and got < cfg.sizes.bulk_total:
                    raise InvalidRunError(f"only {got} process spans for {cfg.sizes.bulk_total}")
                if mode != "on" and got:
                    raise InvalidRunError(f"{got} spans exported with telemetry {mode}")
                figures[mode].append(ops)
                print(f"[{dialect}] run {rep + 1} telemetry {mode}: {ops:,.0f} ops/s", flush=True)
        exported = {"requests": counts.requests, "bytes": counts.bytes}
    off, on = statistics.median(figures["off"]), statistics.median(figures["on"])
    out: dict[str, Any] = {
        "operations": cfg.sizes.bulk_total,
        "runs_ops_per_s": figures,
        "off_ops_per_s": round(off, 1),
        "on_ops_per_s": round(on, 1),
        "on_over_off": round(on / off, 3),
        "cost_percent": round(100 * (1 - on / off), 1),
        "exported": exported,
    }
    if before_src is not None:
        pre = statistics.median(figures["before"])
        out["before_ops_per_s"] = round(pre, 1)
        out["off_over_before"] = round(off / pre, 3)
        out["off_cost_percent"] = round(100 * (1 - off / pre), 1)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="2,000 operations per drain")
    parser.add_argument("--repeat", type=int, default=None, help="runs per mode (default 3)")
    parser.add_argument(
        "--pg-admin-url", default=os.environ.get("LONGOPS_BENCH_PG_URL", DEFAULT_PG_ADMIN_URL)
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--before-src",
        type=Path,
        default=None,
        help="the src/ of the commit before telemetry (git archive <commit> src): its workers "
        "run as a third mode, to show what telemetry off costs against no telemetry at all",
    )
    args = parser.parse_args(argv)
    if args.before_src is not None:
        args.before_src = args.before_src.resolve()
        check_before(args.before_src)
    sizes = QUICK if args.quick else replace(FULL, bulk_total=10_000)
    repeat = args.repeat or 3
    cfg = BenchConfig(args.pg_admin_url, Path(tempfile.mkdtemp(prefix="longops-tel-")), sizes)
    dialects = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    results = {d: run(d, cfg, repeat, args.before_src) for d in dialects}
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
    if args.before_src is not None:
        lines += [
            "",
            "Telemetry off against the code from before telemetry (same run, same databases):",
            "",
            "| database | before ops/s | off ops/s | off/before | cost |",
            "|---|---|---|---|---|",
        ]
        for d, r in results.items():
            lines.append(
                f"| {d} | {r['before_ops_per_s']:,.0f} | {r['off_ops_per_s']:,.0f} | "
                f"{r['off_over_before']} | {r['off_cost_percent']} % |"
            )
    lines += ["", f"Each figure: the median of {repeat} runs per mode, modes rotated per run."]
    (args.out / f"telemetry{suffix}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
