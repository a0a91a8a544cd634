"""Where a drain's worker CPU goes, telemetry off against on: ``py-spy`` attached to each
worker process of one drain per mode (the drain of ``bench_telemetry.py``), and each
worker thread's CPU read from ``/proc`` just before the workers are stopped.

Run from the project root (``py-spy`` installed in the venv)::

    .venv/bin/python benchmarks/spy_telemetry.py [--db sqlite|postgres] [--ops 10000] \
        [--diag benchmarks/spy_diag]

Writes ``<out>/<db>-<mode>-w<n>.txt`` (py-spy's raw, collapsed stacks per thread) and
prints the threads' CPU and the functions with the most samples, by mode. py-spy samples
from its own process (its CPU is not the workers'); the workers' CPU per operation it prints
is read from ``/proc`` (user + system, start to the last operation done).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

from bench_app import make_app
from bench_core import (
    DEFAULT_PG_ADMIN_URL,
    FULL,
    HERE,
    BenchConfig,
    bench_bulk,
    fresh_database,
    start_workers,
    stop_workers,
    wait_finished,
)
from bench_telemetry import receiver, worker_env

TICK = os.sysconf("SC_CLK_TCK")


def threads_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of ``pid`` now, by thread id."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(task.name)] = (int(fields[11]) + int(fields[12])) / TICK
    return found


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def drain(
    dialect: str, mode: str, cfg: BenchConfig, endpoint: str, out: Path, rate: int, diag: str
) -> None:
    env = worker_env(mode, endpoint, None)
    if diag:
        env |= {"PYTHONPATH": diag, "TEL_DIAG": str(out / f"{dialect}-{mode}")}
        (out / f"{dialect}-{mode}").mkdir(exist_ok=True)
    with fresh_database(dialect, f"spy_{mode}", cfg) as url:
        app = make_app(url)
        try:
            bench_bulk(app, cfg.sizes)
            group = start_workers(
                url, cfg.sizes.workers, cfg.sizes.concurrency, cfg.workdir, f"spy-{mode}",
                env_extra=env,
            )  # fmt: skip
            spies = []
            spy = str(HERE.parent / ".venv/bin/py-spy")
            for n, proc in enumerate(group.procs if rate else ()):
                target = str(out / f"{dialect}-{mode}-w{n}.txt")
                command = [spy, "record", "--pid", str(proc.pid), "-r", str(rate), "-f", "raw",
                           "--threads", "--nonblocking", "-o", target]  # fmt: skip
                spies.append(subprocess.Popen(command, stderr=subprocess.DEVNULL))
            try:
                wait_finished(app, cfg.sizes.bulk_total, group)
                threads = [threads_cpu(p.pid) for p in group.procs]
                total = sum(process_cpu(p.pid) for p in group.procs)
            finally:
                stop_workers(group)
                for spy in spies:
                    spy.wait(timeout=60)
        finally:
            app.close()
    print(f"== {dialect} {mode}: workers' CPU {1000 * total / cfg.sizes.bulk_total:.3f} ms/op")
    for n, found in enumerate(threads):
        shown = sorted(found.values(), reverse=True)
        print(f"   worker {n} threads (s): {', '.join(f'{s:.2f}' for s in shown if s >= 0.01)}")


def top(path: Path, count: int) -> None:
    """The functions with the most samples (anywhere in the stack, own samples apart)."""
    anywhere: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    by_thread: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        n = int(samples)
        frames = stack.split(";")
        total += n
        by_thread[frames[0]] += n
        own[frames[-1]] += n
        for frame in set(frames[1:]):
            anywhere[frame] += n
    print(f"-- {path.name}: {total} samples; by thread: "
          + ", ".join(f"{t} {n}" for t, n in by_thread.most_common()))  # fmt: skip
    print("   own:")
    for frame, n in own.most_common(count):
        print(f"   {n:6d} {100 * n / total:5.1f} % {frame}")
    print("   anywhere in the stack:")
    for frame, n in anywhere.most_common(count):
        print(f"   {n:6d} {100 * n / total:5.1f} % {frame}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--ops", type=int, default=10_000)
    parser.add_argument("--modes", default="off,on")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples/s (0: no py-spy)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--diag",
        default="",
        help="a directory with a sitecustomize.py the workers load (spy_diag/: the GC's "
        "passes and each thread's CPU by name, printed after the drains)",
    )
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="tel-spy-")))
    args = parser.parse_args()
    sizes = replace(FULL, bulk_total=args.ops)
    cfg = BenchConfig(DEFAULT_PG_ADMIN_URL, Path(tempfile.mkdtemp(prefix="tel-spy-db-")), sizes)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"output in {args.out}; load {os.getloadavg()}")
    with receiver() as (endpoint, _):
        for mode in args.modes.split(","):
            drain(args.db, mode, cfg, endpoint, args.out, args.rate, args.diag)
    print(f"load {os.getloadavg()}")
    for found in sorted(args.out.glob(f"{args.db}-*/diag-*.json")):
        diag = json.loads(found.read_text())
        gcs = ", ".join(f"gen{g} {n} in {s:.3f} s" for g, (n, s) in diag["gc"].items())
        by_name: collections.Counter[str] = collections.Counter()
        for name, seconds in diag["threads"].items():
            by_name[name.split("#")[0].split("(")[0].strip()] += seconds
        threads = ", ".join(f"{k} {v:.2f}" for k, v in by_name.most_common())
        print(f"{found.parent.name}/{found.name}: process {diag['process']:.2f} s; {gcs}\n"
              f"   threads: {threads}")  # fmt: skip
    for path in sorted(args.out.glob(f"{args.db}-*.txt")):
        top(path, args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
