"""What bounds the PostgreSQL drain now: py-spy on one worker, pg_stat_activity sampled.

Run from the project root (py-spy in the venv: ``pip install py-spy``)::

    flock /work/wt/bench.lock .venv/bin/python benchmarks/profile_hotpath.py [--jobs 20000]
        [--concurrency 8]

The peers benchmark's drain (``peers/jobs_longops.py``: the marking no-op task, bulk
enqueued, then 2 ``longops worker`` processes), with worker 0 under ``py-spy record
--threads --idle`` (wall time of every thread) for a few seconds in the middle, and the
server's backends sampled every 20 ms (state and wait event of the workers' sessions).
Writes ``benchmarks/results/profile-hotpath-postgres.txt``.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"
ADMIN = os.environ.get("LONGOPS_BENCH_PG_URL", "postgresql://root@127.0.0.1:5432/postgres")
BIN = Path(sys.executable).parent


def prepare_drain(url: str, env: dict[str, str], jobs: int) -> None:
    """The peers' client makes the schema and bulk-enqueues ``jobs`` marking no-op jobs."""
    client = [sys.executable, str(PEERS / "client.py"), "longops"]
    for action, arg in (("prepare", "0"), ("bulk", "5000")):
        subprocess.run(
            [*client, action, url, "0", str(jobs), arg], env=env, cwd=PEERS, check=True,
            capture_output=True,
        )  # fmt: skip


def start_workers(url: str, env: dict[str, str], concurrency: int) -> list[subprocess.Popen[bytes]]:
    """The drain's two ``longops worker`` processes on the peers' app."""
    cmd = [
        str(BIN / "longops"), "--app", "jobs_longops:app", "--database-url", url, "worker",
        "--concurrency", str(concurrency),
    ]  # fmt: skip
    return [subprocess.Popen(cmd, env=env, cwd=PEERS, stderr=subprocess.DEVNULL) for _ in range(2)]


def done_jobs(marks: Path) -> int:
    """How many jobs have marked their run so far."""
    return sum(p.read_bytes().count(b"\n") for p in marks.glob("*.txt"))


def start_spy(pid: int, out: Path, seconds: int, mode: str = "--idle") -> subprocess.Popen[bytes]:
    """``py-spy record`` of every thread of ``pid`` at 200 Hz, raw (folded) output."""
    return subprocess.Popen(
        [
            str(BIN / "py-spy"), "record", "-r", "200", mode, "--threads", "--format", "raw",
            "-o", str(out), "--duration", str(seconds), "--pid", str(pid),
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def spy_threads(out: Path, library: str) -> dict[str, collections.Counter[str]]:
    """py-spy's samples per thread (the runners as one), keyed by the innermost three frames
    of longops or ``library`` (the thread's last frame when none)."""
    threads: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    if not out.exists():
        return threads
    for line in out.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        name = frames[0].split(": ", 1)[-1]
        if name.startswith("longops-runner"):
            name = "longops-runner-*"
        ours = [f.split(" (")[0] for f in frames if "longops" in f or library in f]
        threads[name][" < ".join(ours[-3:]) or frames[-1].split(" (")[0]] += int(n)
    return threads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=5, help="py-spy window")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    db = f"profile_hotpath_{os.getpid()}"
    url = ADMIN.rsplit("/", 1)[0] + "/" + db
    work = Path(tempfile.mkdtemp(prefix="longops-profile-"))
    marks = work / "marks"
    marks.mkdir()
    env = dict(os.environ, PYTHONPATH=str(PEERS), BENCH_MARKS_DIR=str(marks), BENCH_URL=url)
    with psycopg.connect(ADMIN, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {db}")
    load_start = os.getloadavg()
    try:
        prepare_drain(url, env, args.jobs)
        started = time.perf_counter()
        procs = start_workers(url, env, args.concurrency)
        waits: collections.Counter[str] = collections.Counter()
        stop = threading.Event()

        def sample() -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                while not stop.wait(0.02):
                    for state, wait, query in conn.execute(
                        "SELECT state, coalesce(wait_event_type || ':' || wait_event, 'CPU'), "
                        "left(regexp_replace(query, '\\s+', ' ', 'g'), 40) FROM "
                        "pg_stat_activity WHERE datname = current_database() AND "
                        "pid <> pg_backend_pid() AND application_name <> 'py-spy'"
                    ).fetchall():
                        if state == "active":
                            waits[f"{wait:28} {query}"] += 1
                        else:
                            waits[f"({state})"] += 1

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        spy_out = work / "spy.txt"
        done_count = 0
        spy: subprocess.Popen[bytes] | None = None
        while done_count < args.jobs:
            time.sleep(0.05)
            done_count = done_jobs(marks)
            if spy is None and done_count >= args.jobs // 4:
                spy = start_spy(procs[0].pid, spy_out, args.seconds)
            if time.perf_counter() - started > 600:
                raise RuntimeError("drain did not finish in 10 minutes")
        elapsed = time.perf_counter() - started
        stop.set()
        if spy is not None:
            spy.wait(timeout=60)
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=60)
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    threads = spy_threads(spy_out, "psycopg")
    lines = [
        "# Profile of the PostgreSQL drain (hot path v2)",
        "",
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}; load average at start "
        f"{[round(x, 2) for x in load_start]}, at end {[round(x, 2) for x in os.getloadavg()]}"
        " (shared 2-CPU machine)",
        f"- {args.jobs:,} no-op jobs (peers/jobs_longops.py), 2 x `longops worker --concurrency "
        f"{args.concurrency}`: {args.jobs / elapsed:,.0f} jobs/s from the workers' start "
        f"({elapsed:.1f} s)",
        f"- py-spy (wall time, every thread, {args.seconds} s at 200 Hz) on worker 0 from a "
        "quarter of the drain; pg_stat_activity of the database's sessions every 20 ms",
        "- produced by `benchmarks/profile_hotpath.py`",
        "",
        "## Server backends (samples)",
        "",
    ]
    total = sum(waits.values()) or 1
    for key, n in waits.most_common(15):
        lines.append(f"{100 * n / total:5.1f}%  {key}")
    lines += ["", "## Worker 0 threads (py-spy samples, innermost longops/psycopg frames)", ""]
    for name, counter in sorted(threads.items()):
        tot = sum(counter.values())
        lines.append(f"{name}: {tot} samples")
        for key, n in counter.most_common(5):
            lines.append(f"  {100 * n / tot:5.1f}%  {key}")
    path = args.out / "profile-hotpath-postgres.txt"
    path.write_text("\n".join(lines) + "\n")
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
