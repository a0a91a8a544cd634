"""What bounds the SQLite drain: py-spy on one worker, CPU per job of each worker.

Run from the project root (py-spy in the venv: ``pip install py-spy``)::

    flock /work/wt/bench.lock .venv/bin/python benchmarks/profile_sqlite.py [--jobs 20000]
        [--concurrency 1] [--gil]

The peers benchmark's SQLite drain (``peers/jobs_longops.py``: the marking no-op task, bulk
enqueued, then 2 ``longops worker --concurrency 1`` processes), with worker 0 under
``py-spy record --threads --idle`` (wall time of every thread; ``--gil``: only samples
holding the GIL, i.e. Python CPU) for a few seconds from a quarter of the drain. Reports
each worker's CPU (user + system, from ``/proc``) per job and the drain's rate from the
first mark (worker start-up left out) beside the whole drain's. Writes
``benchmarks/results/profile-sqlite.txt`` (``--out`` to change the folder).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from profile_hotpath import (
    HERE,
    PEERS,
    done_jobs,
    prepare_drain,
    spy_threads,
    start_spy,
    start_workers,
)

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def marks_read(marks: Path) -> list[float]:
    starts: list[float] = []
    for p in marks.glob("*.txt"):
        for line in p.read_text().splitlines():
            starts.append(float(line.split()[2]))
    return starts


def claim_batches(db: Path) -> dict[str, object]:
    """How many claims took runs, and how many runs each (the claim's time is its
    ``attempt_started`` entries' time)."""
    import sqlite3

    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT n, count(*) FROM (SELECT at, count(*) AS n FROM longops_operation_events"
        " WHERE type = 'attempt_started' GROUP BY at) GROUP BY n ORDER BY 2 DESC"
    ).fetchall()
    conn.close()
    sizes = ", ".join(f"{n} x{k}" for n, k in rows[:6])
    return {"claims": sum(k for _, k in rows), "sizes": sizes}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=3, help="py-spy window")
    parser.add_argument("--gil", action="store_true", help="py-spy --gil instead of --idle")
    parser.add_argument("--no-spy", action="store_true", help="no profiler: CPU figures only")
    parser.add_argument(
        "--src", type=Path, help="run the workers on this longops source tree (an A/B)"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="longops-profile-"))
    url = f"sqlite:///{work / 'drain.db'}"
    marks = work / "marks"
    marks.mkdir()
    path = str(PEERS) if args.src is None else f"{args.src.resolve()}:{PEERS}"
    env = dict(os.environ, PYTHONPATH=path, BENCH_MARKS_DIR=str(marks), BENCH_URL=url)
    env["BENCH_SQLITE_PATH"] = str(work / "drain.db")
    # As bench_peers.compile_sources: the workers start from compiled modules, as an
    # installed package's do (not compiling the tree at every start).
    tree = HERE.parent / "src" if args.src is None else args.src
    for folder in (tree, PEERS):
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", "-j", "0", str(folder)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    load_start = os.getloadavg()
    prepare_drain(url, env, args.jobs)
    started = time.time()
    procs = start_workers(url, env, args.concurrency)
    spy_out = work / "spy.txt"
    spy: subprocess.Popen[bytes] | None = None
    cpu_at_first: list[float] | None = None
    done_count = 0
    cpu_last = [0.0, 0.0]
    while done_count < args.jobs:
        time.sleep(0.02)
        cpu_last = [cpu_seconds(p.pid) for p in procs]
        done_count = done_jobs(marks)
        if cpu_at_first is None and done_count:
            cpu_at_first = cpu_last
        if spy is None and not args.no_spy and done_count >= args.jobs // 4:
            spy = start_spy(procs[0].pid, spy_out, args.seconds, "--gil" if args.gil else "--idle")
        if time.time() - started > 600:
            raise RuntimeError("drain did not finish in 10 minutes")
    elapsed = time.time() - started
    starts = sorted(marks_read(marks))
    steady = len(starts) / (starts[-1] - starts[0])
    if spy is not None:
        spy.wait(timeout=60)
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=60)
    first = cpu_at_first or [0.0, 0.0]
    claims = claim_batches(work / "drain.db")
    threads = spy_threads(spy_out, "sqlite")
    lines = [
        "# Profile of the SQLite drain",
        "",
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}; load average at start "
        f"{[round(x, 2) for x in load_start]}, at end {[round(x, 2) for x in os.getloadavg()]}"
        " (shared 2-CPU machine)",
        f"- {args.jobs:,} no-op jobs (peers/jobs_longops.py), 2 x `longops worker --concurrency "
        f"{args.concurrency}`: {args.jobs / elapsed:,.0f} jobs/s from the workers' start "
        f"({elapsed:.1f} s), {steady:,.0f} jobs/s from the first job's start to the last's",
        f"- worker CPU (user + system): start-up to the first job {sum(first):.2f} s for both; "
        f"then {1000 * (sum(cpu_last) - sum(first)) / args.jobs:.3f} ms per job "
        f"(worker 0 {cpu_last[0] - first[0]:.2f} s, worker 1 {cpu_last[1] - first[1]:.2f} s)",
        f"- py-spy ({'GIL held: Python CPU' if args.gil else 'wall time, every thread'}, "
        f"{args.seconds} s at 200 Hz) on worker 0 from a quarter of the drain"
        if not args.no_spy
        else "- no profiler",
        f"- claims that took runs: {claims['claims']:,} ({args.jobs / max(claims['claims'], 1):.1f}"
        f" runs each; sizes {claims['sizes']})",
        f"- source: {'this tree' if args.src is None else args.src}",
        "- produced by `benchmarks/profile_sqlite.py`",
        "",
        "## Worker 0 threads (py-spy samples, innermost longops/sqlite frames)",
        "",
    ]
    for name, counter in sorted(threads.items()):
        tot = sum(counter.values())
        lines.append(f"{name}: {tot} samples")
        for key, n in counter.most_common(8):
            lines.append(f"  {100 * n / tot:5.1f}%  {key}")
    path = args.out / "profile-sqlite.txt"
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
