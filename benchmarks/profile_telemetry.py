"""The per-operation cost of longops's telemetry calls, in process: what one no-op attempt
spends in the hooks (``started``, ``processing``, ``ended``, and the timed SQL statements)
with telemetry on (OTLP/HTTP to a local sink, as configured by the environment: the lean
path), on through the SDK's objects (``--mode sdk``: ``LONGOPS_TELEMETRY=sdk``), off (the
API's no-op providers) and unconfigured (``LONGOPS_TELEMETRY`` unset and no exporter nor
provider configured: the default of a process nobody set telemetry up for).

Run from the project root::

    .venv/bin/python benchmarks/profile_telemetry.py [--mode off|unconfigured|on|sdk] [-n 5000]

The SDK is configured per process, so each mode runs in its own process; the figure is the
median CPU microseconds per operation over 5 rounds: the process's, and broken down by thread
(the calling thread: the hooks themselves; the SDK's batch span and log processors: encoding
and sending; the rest: the receiver here, which a real collector would not cost).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench_telemetry import receiver


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=("off", "unconfigured", "on", "sdk"), default="on")
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--profile", action="store_true", help="pyinstrument the 'on' loop")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="'sdk' only: the calling thread's cost again without the log records, without "
        "the spans, without the metrics (each swapped for the API's no-op one): what each costs",
    )
    parser.add_argument(
        "--encode",
        action="store_true",
        help="'on' only: the lean export's CPU per record, by kind (a process span, LO0003, "
        "LO0004, written in that order as the export thread does), without sending",
    )
    args = parser.parse_args()
    stack = ExitStack()
    if args.mode in ("on", "sdk"):
        # The benchmark's receiver (it keeps the trace payloads; nothing decodes them here).
        endpoint, _ = stack.enter_context(receiver())
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
        os.environ["LONGOPS_TELEMETRY"] = "auto" if args.mode == "on" else "sdk"
    elif args.mode == "unconfigured":
        os.environ.pop("LONGOPS_TELEMETRY", None)
        for name in list(os.environ):
            if name.startswith("OTEL_") or name == "APPLICATIONINSIGHTS_CONNECTION_STRING":
                del os.environ[name]
    else:
        os.environ["LONGOPS_TELEMETRY"] = "off"

    from opentelemetry import _logs, trace

    from longops import Longops, telemetry
    from longops.telemetry.settings import settings

    settings.cache_clear()  # read at import (bench_telemetry imports longops): read it again
    from longops.domain.operation import Outcome
    from longops.domain.status import Status
    from longops.store.base import RunResult

    telemetry.configure("profile")
    db = Path(tempfile.mkdtemp(prefix="longops-tel-prof-")) / "p.db"
    app = Longops(f"sqlite:///{db}")
    app.migrate()
    app.task(name="bench.noop")(lambda: None)
    found = app.store.get_operation(app.enqueue("bench.noop").id)
    assert found is not None
    op = found
    op = replace(op, attempt_count=1, session_id=uuid.uuid4(), entry_no=1)
    at = op.created_at + timedelta(milliseconds=5)
    result = RunResult(
        operation_id=op.id,
        lease_token=uuid.uuid4(),
        run_no=1,
        at=at,
        outcome=Outcome.SUCCESS,
        status=Status.FINISHED,
        started_at=op.created_at,
    )

    # An operation of its own per attempt, as in a drain (ids repeat in no attribute).
    ops = [replace(op, id=uuid.uuid4(), entry_no=n) for n in range(args.n)]
    results = [replace(result, operation_id=o.id) for o in ops]
    it: Iterator[tuple[Any, Any]] = iter(())

    def one() -> None:
        o, r = next(it)
        with telemetry.processing(o, 1):
            telemetry.started(o, 1, at)
            for _ in range(4):  # the statements of a claim, start, progress and finish
                telemetry.sql_timed("claim", 0.0001)
            telemetry.ended(o, 1, r, None)

    it = iter(list(zip(ops, results, strict=True))[:500])
    for _ in range(500):
        one()

    def cpu_by_thread() -> dict[str, float]:
        """CPU seconds of each live thread, by name (the SDK names its export threads)."""
        found = {}
        for thread in threading.enumerate():
            if thread.ident is not None:
                clock = time.pthread_getcpuclockid(thread.ident)
                found[thread.name] = time.clock_gettime(clock)
        return found

    rounds = []
    by_thread: dict[str, list[float]] = {}
    profiler: Any = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002)
        profiler.start()
    flush = getattr(trace.get_tracer_provider(), "force_flush", None)
    flush_logs = getattr(_logs.get_logger_provider(), "force_flush", None)
    for _ in range(5):
        # CPU time of the whole process: the batch processors' export threads included.
        it = iter(zip(ops, results, strict=True))
        began, threads_began = time.process_time(), cpu_by_thread()
        for _ in range(args.n):
            one()
        hooks_ended = time.thread_time()
        if flush is not None and flush_logs is not None:
            flush()
            flush_logs()
        flushed = time.thread_time() - hooks_ended
        total = time.process_time() - began
        rounds.append(total / args.n * 1e6)
        threads = cpu_by_thread()
        spent = {
            name: threads[name] - threads_began[name]
            for name in threads
            if name in threads_began and name != "MainThread"
        }
        spent["hooks (calling thread)"] = (
            threads["MainThread"] - threads_began["MainThread"] - flushed
        )
        # What the export thread had not done yet, encoded and sent by the flush at the end.
        spent["flush at the end (calling thread)"] = flushed
        spent["rest (the receiver here)"] = total - sum(spent.values())
        for name, seconds in spent.items():
            by_thread.setdefault(name, []).append(seconds / args.n * 1e6)
    if profiler is not None:
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    print(
        f"{args.mode}: {statistics.median(rounds):.1f} us/op (rounds {[round(r) for r in rounds]})"
    )
    for name, figures in sorted(by_thread.items(), key=lambda kv: -statistics.median(kv[1])):
        if statistics.median(figures) >= 0.05:
            print(f"  {name}: {statistics.median(figures):.1f} us/op")
    if args.encode and args.mode == "on":
        encode_costs(ops, results, at)
    if args.breakdown and args.mode == "sdk":
        from opentelemetry.metrics import NoOpMeter
        from opentelemetry.trace import NoOpTracer

        from longops.telemetry import providers
        from longops.telemetry.metrics import Instruments

        full = providers.current
        variants = {
            "all": full,
            "without log records": replace(full, logger=_logs.NoOpLogger("profile")),
            "without spans": replace(full, tracer=NoOpTracer()),
            "without metrics": replace(full, instruments=Instruments(NoOpMeter("profile"))),
        }
        cost: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(5):
            for name, chosen in variants.items():  # interleaved: the machine's load shifts
                providers.current = chosen
                it = iter(zip(ops, results, strict=True))
                began_thread = time.thread_time()
                for _ in range(args.n):
                    one()
                cost[name].append((time.thread_time() - began_thread) / args.n * 1e6)
        providers.current = full
        whole = statistics.median(cost["all"])
        print(f"calling thread, all on: {whole:.1f} us/op")
        for name in list(variants)[1:]:
            saved = whole - statistics.median(cost[name])
            print(f"  {name}: {statistics.median(cost[name]):.1f} us/op (saves {saved:.1f})")
    app.close()
    stack.close()
    return 0


def encode_costs(ops: list[Any], results: list[Any], at: Any) -> None:
    """The lean path's encoding, by record: the attempts' entries queued as the hooks queue
    them (on a recorder of its own, no thread), then each kind encoded in turn, as the
    export thread's digest does (the first of an attempt's records also writes what the
    three share: the operation id, the trace context, the operation's dimensions)."""
    from opentelemetry.sdk.resources import Resource

    from longops.telemetry import lean, traces

    class Sink:
        _shutdown = False
        _max_request_size = 0

        def shutdown(self) -> None:
            pass

    by_kind: dict[str, list[float]] = {"LO0003 (started)": [], "LO0004 (finished)": [],
                                       "process span": []}  # fmt: skip
    for _ in range(5):
        recorder = lean.Recorder(Resource.create({}), Sink(), Sink(), start=False)
        encoder = recorder._encoder
        attempts = []
        for op, result in zip(ops, results, strict=True):
            attempt = traces._LeanProcessing(recorder, op, 1)._attempt
            attempt.started_at = at
            attempt.result = result
            attempt.end_ns = attempt.start_ns + 1000
            attempts.append(attempt)
        now = time.time_ns()
        began = time.thread_time()
        for attempt in attempts:
            encoder.started(attempt, now)
        started_s = time.thread_time() - began
        began = time.thread_time()
        for attempt in attempts:
            encoder.finished(attempt, now)
        finished_s = time.thread_time() - began
        began = time.thread_time()
        for attempt in attempts:
            encoder.span(attempt)
        span_s = time.thread_time() - began
        for kind, seconds in zip(by_kind, (started_s, finished_s, span_s), strict=True):
            by_kind[kind].append(seconds / len(attempts) * 1e6)
    print("encoding on the export thread, CPU us per record (median of 5 rounds):")
    for kind, figures in by_kind.items():
        print(f"  {kind}: {statistics.median(figures):.1f} us")
    total = sum(statistics.median(f) for f in by_kind.values())
    print(f"  per attempt (the three): {total:.1f} us")


if __name__ == "__main__":
    sys.exit(main())
