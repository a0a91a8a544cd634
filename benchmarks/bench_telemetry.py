"""What telemetry costs: the drain of bench_core.py with telemetry off and fully on.

Run from the project root::

    .venv/bin/python benchmarks/bench_telemetry.py [--db sqlite|postgres|both] [--quick]

"Off" is ``LONGOPS_TELEMETRY=off`` (the OpenTelemetry API's no-op providers: the cost of the
hooks alone). "On" sets ``OTEL_EXPORTER_OTLP_ENDPOINT`` to a local OTLP/HTTP receiver in
this process, so the workers export every span, log event and metric over HTTP, as a worker
configured by the environment does (the lean path, ``telemetry/lean.py``). ``--sdk`` adds
"on, SDK path" (``LONGOPS_TELEMETRY=sdk``: the same export through the SDK's span and log
record objects). The receiver reads each body and keeps the trace ones, decoded after each
drain (not during it: a collector runs elsewhere, and decoding here would take the workers'
CPU). The runs alternate off/on on fresh databases; each
figure is the median of ``--repeat`` runs. The "on" runs must deliver a ``process`` span per
operation to the receiver, or the benchmark stops with an error. Results go to
``benchmarks/results/telemetry.md``; the machine is shared, so read the ratio, not the
absolute figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
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
    as_utc,
    bench_bulk,
    bench_drain,
    fresh_database,
    sql_rows,
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


BASELINE: dict[str, Path] = {}
"""``--baseline-src``: the "on-baseline" workers' longops (telemetry on, other code)."""


def worker_env(mode: str, endpoint: str, before_src: Path | None) -> dict[str, str]:
    if mode in ("on", "on-baseline"):
        env = {
            "LONGOPS_TELEMETRY": "auto",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_SERVICE_NAME": "bench-worker",
        }
        if mode == "on-baseline":
            env["PYTHONPATH"] = str(BASELINE["src"])
        return env
    if mode == "on-sdk":
        return {
            "LONGOPS_TELEMETRY": "sdk",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_SERVICE_NAME": "bench-worker",
        }
    if mode == "before":
        assert before_src is not None
        return {"PYTHONPATH": str(before_src)}
    return {"LONGOPS_TELEMETRY": "off"}


def check_source(src: Path) -> None:
    """Workers given ``PYTHONPATH=src`` import ``longops`` from there."""
    out = subprocess.run(
        [sys.executable, "-c", "import longops; print(longops.__file__)"],
        env=dict(os.environ, PYTHONPATH=str(src)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not out.startswith(str(src)):
        raise InvalidRunError(f"longops is imported from {out}, not {src}")


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


MEASURES = {
    "ops_per_s": "ops/s (whole drain, worker start included)",
    "steady_ops_per_s": "ops/s (first start to last end)",
    "middle_ops_per_s": "ops/s (middle half: from the 25th to the 75th percentile start)",
    "worker_cpu_ms_per_op": "worker CPU ms per operation",
    "middle_worker_cpu_ms_per_op": "worker CPU ms per operation (middle half: from the 25th to "
    "the 75th percentile end, no start nor exit)",
}
"""What each run yields. Throughput swings with the machine's other load; the workers' CPU
per operation (user + system, start to exit, read from the kernel) barely does, so it is
the steadiest figure of what telemetry costs on a shared machine."""


_TICK = os.sysconf("SC_CLK_TCK")


class WorkerCpu:
    """The worker processes' CPU (user + system, read from ``/proc``) every ``every``
    seconds while a drain runs, with the wall-clock time of each reading: the CPU they
    spent between two moments of the drain (:meth:`between`), e.g. its middle half, where
    neither the workers' start (importing, setting up the SDK) nor their exit counts."""

    def __init__(self, workers: int, every: float = 0.02) -> None:
        self.workers = workers
        self.every = every
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-cpu", daemon=True)

    def __enter__(self) -> WorkerCpu:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _children(self) -> list[int]:
        me = str(os.getpid())
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if stat.rsplit(")", 1)[1].split()[1] == me:
                    found.append(int(entry.name))
        return found

    def _run(self) -> None:
        pids: list[int] = []
        last: dict[int, float] = {}
        while not self._stop.wait(self.every):
            if len(pids) < self.workers:
                pids = self._children()  # the workers, once started
                continue
            for pid in pids:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue  # exited: its last reading stays
                last[pid] = (int(fields[11]) + int(fields[12])) / _TICK
            self.samples.append((time.time(), sum(last.values())))

    def at(self, moment: float) -> float:
        """The workers' CPU seconds at ``moment`` (interpolated between two readings)."""
        samples = self.samples
        if not samples or moment < samples[0][0] or moment > samples[-1][0]:
            raise InvalidRunError(f"no CPU reading around {moment} ({len(samples)} readings)")
        for (t0, c0), (t1, c1) in itertools.pairwise(samples):
            if t0 <= moment <= t1:
                return c0 if t1 == t0 else c0 + (c1 - c0) * (moment - t0) / (t1 - t0)
        return samples[-1][1]


def one_drain(
    dialect: str, cfg: BenchConfig, mode: str, rep: int, endpoint: str, before_src: Path | None
) -> dict[str, float]:
    env = worker_env(mode, endpoint, before_src)
    with fresh_database(dialect, f"tel_{mode}_{rep}", cfg) as url:
        app = make_app(url)
        try:
            bench_bulk(app, cfg.sizes)
            with WorkerCpu(cfg.sizes.workers) as cpu:
                result = bench_drain(app, url, cfg, f"{dialect}-tel-{mode}-{rep}", env_extra=env)
            ends = sorted(
                as_utc(r[0]).timestamp()
                for r in sql_rows(url, "SELECT ended_at FROM longops_attempts")
            )
        finally:
            app.close()
    # The middle half of the operations by when they ended: both workers at work.
    n = len(ends)
    first, last = ends[n // 4], ends[3 * n // 4]
    middle_cpu = cpu.at(last) - cpu.at(first)
    return {
        # Between the 25th and the 75th percentile end: no start, no exit.
        "middle_worker_cpu_ms_per_op": 1000 * middle_cpu / (3 * n // 4 - n // 4),
        "ops_per_s": float(result["ops_per_s"]),
        "steady_ops_per_s": float(result["steady_ops_per_s"] or 0.0),
        # Both workers at work: neither one's start (a second or more apart on a loaded
        # machine, in a drain of a few seconds) nor the last stragglers.
        "middle_ops_per_s": result["operations"] / 2 / sum(result["quarter_durations_s"][1:3]),
        "worker_cpu_ms_per_op": 1000 * float(result["cpu"]["workers_s"]) / result["operations"],
        # Not a measure (no median): how long the workers took to start their first run.
        "worker_startup_s": float(result["worker_startup_s"]),
    }


def _cost(measure: str, value: float, base: float) -> float:
    """Percent more expensive than ``base`` (fewer ops/s, or more CPU per operation)."""
    if measure.endswith("worker_cpu_ms_per_op"):
        return round(100 * (value / base - 1), 1)
    return round(100 * (1 - value / base), 1)


def run(
    dialect: str, cfg: BenchConfig, repeat: int, before_src: Path | None, sdk: bool = False
) -> dict[str, Any]:
    modes: tuple[str, ...] = ("off", "on", "before") if before_src is not None else ("off", "on")
    if BASELINE:
        modes += ("on-baseline",)
    if sdk:
        modes += ("on-sdk",)
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    load_before = os.getloadavg()
    retried: list[str] = []
    with receiver() as (endpoint, counts):
        for rep in range(repeat):
            # Rotate the order, so no mode always runs first (or last) on a loaded machine.
            order = modes[rep % len(modes) :] + modes[: rep % len(modes)]
            for mode in order:
                before = counts.count_spans()
                try:
                    figures = one_drain(dialect, cfg, mode, rep, endpoint, before_src)
                except InvalidRunError as exc:
                    # On a loaded machine a worker still starting when the drain is done
                    # dies of the SIGTERM before its handler is set: run it again, once.
                    if "exit codes" not in str(exc):
                        raise
                    print(f"[{dialect}] run {rep + 1} {mode} again: {str(exc)[:60]}")
                    retried.append(f"{mode} {rep + 1}")
                    before = counts.count_spans()
                    figures = one_drain(dialect, cfg, mode, rep + 100, endpoint, before_src)
                got = counts.count_spans() - before
                if mode.startswith("on") and got < cfg.sizes.bulk_total:
                    raise InvalidRunError(f"only {got} process spans for {cfg.sizes.bulk_total}")
                if not mode.startswith("on") and got:
                    raise InvalidRunError(f"{got} spans exported with telemetry {mode}")
                runs[mode].append(figures)
                shown = ", ".join(f"{k} {v:,.2f}" for k, v in figures.items())
                print(f"[{dialect}] run {rep + 1} telemetry {mode}: {shown}", flush=True)
        exported = {"requests": counts.requests, "bytes": counts.bytes}
    medians = {
        mode: {m: round(statistics.median(r[m] for r in got), 3) for m in MEASURES}
        for mode, got in runs.items()
    }
    out: dict[str, Any] = {
        "operations": cfg.sizes.bulk_total,
        "runs": runs,
        "medians": medians,
        "on_cost_percent": {m: _cost(m, medians["on"][m], medians["off"][m]) for m in MEASURES},
        "exported": exported,
        "runs_retried": retried,
        "load_average": {"start": load_before, "end": os.getloadavg()},
    }
    if sdk:
        out["on_sdk_cost_percent"] = {
            m: _cost(m, medians["on-sdk"][m], medians["off"][m]) for m in MEASURES
        }
    if BASELINE:
        out["on_baseline_cost_percent"] = {
            m: _cost(m, medians["on-baseline"][m], medians["off"][m]) for m in MEASURES
        }
    if before_src is not None:
        out["off_cost_percent_vs_before"] = {
            m: _cost(m, medians["off"][m], medians["before"][m]) for m in MEASURES
        }
    return out


TARGET_PERCENT = 10.0
"""Issue 13: the drain with telemetry fully on costs at most this much."""


def _load(r: dict[str, Any]) -> str:
    found = r.get("load_average")
    if not found:
        return "not recorded"
    return " to ".join(", ".join(f"{v:.1f}" for v in found[k]) for k in ("start", "end"))


def report(
    results: dict[str, Any],
    repeat: int,
    before: bool,
    baseline: str | None = None,
    uptime: tuple[str, str] = ("", ""),
) -> list[str]:
    sdk = any("on_sdk_cost_percent" in r for r in results.values())
    lines = [
        "# Telemetry overhead (benchmarks/bench_telemetry.py)",
        "",
        "Telemetry on (OTLP/HTTP to a local receiver) against off (`LONGOPS_TELEMETRY=off`)"
        + (", and off against the code from before telemetry" if before else "")
        + f". Medians of {repeat} runs per mode, modes rotated per run, in one process on "
        "fresh databases; cost: how much worse than the baseline. The task is a no-op, so "
        "the cost of telemetry per attempt is set against the least an attempt can cost: "
        "the worst case."
        + (
            f' "On, baseline code": telemetry on in workers running {baseline} (the same '
            "runs, rotated with the others): what the cuts changed."
            if baseline
            else ""
        )
        + (
            ' "On, SDK path": the same export with `LONGOPS_TELEMETRY=sdk` (the SDK\'s span and '
            "log record objects, not the lean path), in the same runs."
            if sdk
            else ""
        ),
        "",
        f"Machine: {os.cpu_count()} cores, shared with other work; load averages (1, 5, 15 "
        "min) at the start and end of each database's runs: "
        + "; ".join(f"{d} {_load(r)}" for d, r in results.items())
        + "."
        + (f" `uptime` before: {uptime[0]}; after: {uptime[1]}." if uptime[0] else ""),
        "",
        f"Target (issue 13): the drain at most {TARGET_PERCENT:.0f} % slower with telemetry "
        "on; each measure has its verdict. The whole drain and 'first start to last end' "
        "include the workers' start (importing and setting up the SDK: a fixed cost per "
        "worker process, not per operation) and how far apart the two workers start, which "
        "on a loaded machine is a good part of a drain of a few seconds; the middle half is "
        "the steady state, both workers at work. The workers' CPU per operation counts "
        "everything, the start and the export thread included; its middle half is the "
        "workers' CPU (read from /proc every 20 ms) between the moments the 25th and the "
        "75th percentile operation ended, over the operations that ended in between: what "
        "each operation costs once the workers are up, the export thread included, the "
        "start and the exit (final flush) not. Where the remaining cost goes: "
        "[telemetry-notes.md](telemetry-notes.md).",
        "",
        f"| database | operations | measure | off | on | on cost | within {TARGET_PERCENT:.0f} % |"
        + (" before | off cost vs before |" if before else "")
        + (" on, baseline code | its on cost |" if baseline else "")
        + (" on, SDK path | its on cost |" if sdk else ""),
        "|---|---|---|---|---|---|---|"
        + ("---|---|" if before else "")
        + ("---|---|" if baseline else "")
        + ("---|---|" if sdk else ""),
    ]
    for d, r in results.items():
        med = r["medians"]
        for m, label in MEASURES.items():
            cost = r["on_cost_percent"][m]
            row = (
                f"| {d} | {r['operations']:,} | {label} | {med['off'][m]:,.2f} | "
                f"{med['on'][m]:,.2f} | {cost} % | {'yes' if cost <= TARGET_PERCENT else 'no'} |"
            )
            if before:
                row += f" {med['before'][m]:,.2f} | {r['off_cost_percent_vs_before'][m]} % |"
            if baseline:
                row += f" {med['on-baseline'][m]:,.2f} | {r['on_baseline_cost_percent'][m]} % |"
            if sdk:
                row += f" {med['on-sdk'][m]:,.2f} | {r['on_sdk_cost_percent'][m]} % |"
            lines.append(row)
    return lines


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


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
        "--name",
        default="telemetry",
        help="the results' file name, without .md/.json (default telemetry; .quick added "
        "with --quick)",
    )
    parser.add_argument(
        "--before-src",
        type=Path,
        default=None,
        help="the src/ of the commit before telemetry (git archive <commit> src): its workers "
        "run as a third mode, to show what telemetry off costs against no telemetry at all",
    )
    parser.add_argument(
        "--baseline-src",
        type=Path,
        default=None,
        help="the src/ of another commit (git archive <commit> src): its workers run with "
        "telemetry on as a third mode, to compare two versions of the telemetry in one run",
    )
    parser.add_argument("--baseline-name", default="the baseline commit")
    parser.add_argument(
        "--sdk",
        action="store_true",
        help='a third mode, "on-sdk": telemetry on through the SDK\'s objects (no lean path)',
    )
    args = parser.parse_args(argv)
    if args.baseline_src is not None:
        BASELINE["src"] = args.baseline_src.resolve()
        check_source(BASELINE["src"])
    if args.before_src is not None:
        args.before_src = args.before_src.resolve()
        check_before(args.before_src)
    sizes = QUICK if args.quick else replace(FULL, bulk_total=10_000)
    repeat = args.repeat or 3
    cfg = BenchConfig(args.pg_admin_url, Path(tempfile.mkdtemp(prefix="longops-tel-")), sizes)
    dialects = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    uptime_before = _uptime()
    results = {d: run(d, cfg, repeat, args.before_src, args.sdk) for d in dialects}
    uptime_after = _uptime()
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = ".quick" if args.quick else ""
    (args.out / f"{args.name}{suffix}.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = report(
        results,
        repeat,
        args.before_src is not None,
        args.baseline_name if BASELINE else None,
        (uptime_before, uptime_after),
    )
    (args.out / f"{args.name}{suffix}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
