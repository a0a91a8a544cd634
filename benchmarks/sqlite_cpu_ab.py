"""CPU per one-by-one enqueue and per drained job on SQLite: this tree against another,
alternating (the SQLite side of issue 12). Run from the project root, under the bench lock::

    flock /work/wt/bench.lock .venv/bin/python benchmarks/sqlite_cpu_ab.py --before OTHER/src
        [--rounds 3] [--calls 3000] [--jobs 10000]

``OTHER/src`` is the other version's source tree (``git archive main src | tar -x -C
/tmp/before``). Per round and tree, in turn:

- enqueue: a process makes ``--calls`` one-by-one ``enqueue`` calls on a fresh SQLite file
  (the peers benchmark's client, ``peers/jobs_longops.py``) and reports its CPU per call
  (``getrusage``: user + system, its checkpoint thread included), the rate, and the WAL's
  size after the last call;
- drain: ``profile_sqlite.py``'s drain without the profiler: ``--jobs`` no-op jobs
  bulk-enqueued, two ``longops worker --concurrency 1`` processes, their CPU per job from
  the first job's start (``/proc``), the rate, and the WAL's size and pages at the end.

Prints one line per measurement (``sqlite.v6-cpu.*.txt`` in ``results/`` are its output).
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from profile_hotpath import PEERS, done_jobs, prepare_drain, start_workers
from profile_sqlite import claim_batches, cpu_seconds, marks_read

HERE = Path(__file__).resolve().parent


def enqueue_one_process(calls: int) -> str:
    """In this process: ``calls`` one-by-one enqueues; a line of figures."""
    sys.path.insert(0, str(PEERS))
    work = Path(tempfile.mkdtemp(prefix="longops-cpu-ab-"))
    os.environ.setdefault("BENCH_MARKS_DIR", str(work))
    import jobs_longops

    url = f"sqlite:///{work / 'enqueue.db'}"
    jobs_longops.prepare(url)
    client = jobs_longops._client(url)
    client.enqueue(jobs_longops.TASK, -1, 0.0, on_hold=True)  # opens the store
    before = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    for i in range(calls):
        client.enqueue(jobs_longops.TASK, i, time.time())
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF)
    wal = (work / "enqueue.db-wal").stat().st_size
    client.close()
    user = (after.ru_utime - before.ru_utime) / calls * 1e6
    system = (after.ru_stime - before.ru_stime) / calls * 1e6
    return (
        f"{calls / wall:6,.0f} calls/s, CPU {user + system:4.0f} us per call "
        f"(user {user:.0f}, system {system:.0f}), WAL after {wal / 1e6:.1f} MB"
    )


def enqueue(src: Path, calls: int) -> str:
    env = dict(os.environ, PYTHONPATH=f"{src}{os.pathsep}{HERE}")
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--one-enqueue", str(calls)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip().splitlines()[-1]


def drain(src: Path, jobs: int) -> str:
    work = Path(tempfile.mkdtemp(prefix="longops-cpu-ab-"))
    db = work / "drain.db"
    url = f"sqlite:///{db}"
    marks = work / "marks"
    marks.mkdir()
    env = dict(
        os.environ,
        PYTHONPATH=f"{src}{os.pathsep}{PEERS}",
        BENCH_MARKS_DIR=str(marks),
        BENCH_URL=url,
        BENCH_SQLITE_PATH=str(db),
    )
    prepare_drain(url, env, jobs)
    started = time.time()
    procs = start_workers(url, env, 1)
    first: list[float] | None = None
    cpu = [0.0, 0.0]
    done = 0
    while done < jobs:
        time.sleep(0.02)
        cpu = [cpu_seconds(p.pid) for p in procs]
        done = done_jobs(marks)
        if first is None and done:
            first = cpu
        if time.time() - started > 600:
            raise RuntimeError("drain did not finish in 10 minutes")
    elapsed = time.time() - started
    wal = (db.parent / "drain.db-wal").stat().st_size
    conn = sqlite3.connect(db)
    pages = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
    conn.close()
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=60)
    starts = sorted(marks_read(marks))
    first = first or [0.0, 0.0]
    claims = claim_batches(db)["claims"]
    return (
        f"{jobs / elapsed:6,.0f} jobs/s ({len(starts) / (starts[-1] - starts[0]):,.0f} first to "
        f"last start), CPU {1000 * (sum(cpu) - sum(first)) / jobs:.3f} ms per job "
        f"(start-up {sum(first):.2f} s), {claims} claims, WAL at the end {wal / 1e6:.0f} MB, "
        f"{pages:,} pages"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, help="the other version's src folder")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--one-enqueue", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_enqueue:
        print(enqueue_one_process(args.one_enqueue))
        return 0
    if args.before is None:
        parser.error("--before is required")
    trees = {"before": args.before.resolve(), "this tree": HERE.parent / "src"}
    for tree in trees.values():
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", "-j", "0", str(tree), str(PEERS)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    print(f"load {os.getloadavg()}", flush=True)
    for n in range(args.rounds):
        for name, tree in trees.items():
            print(f"round {n + 1} enqueue {name:9}: {enqueue(tree, args.calls)}", flush=True)
    for n in range(args.rounds):
        for name, tree in trees.items():
            print(f"round {n + 1} drain   {name:9}: {drain(tree, args.jobs)}", flush=True)
    print(f"load {os.getloadavg()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
