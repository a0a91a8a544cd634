"""Where an enqueue's time goes on PostgreSQL, and its start latency's (issue 12, points 5
and the enqueue side of the must-shows). Run from the project root, under the bench lock::

    flock /work/wt/bench.lock .venv/bin/python benchmarks/profile_enqueue.py PART [N]

PART is one of:

- ``bulk``: ``enqueue_many`` of 5,000 requests shaped like the peers benchmark's, 3 rounds;
  CPU per operation of this process and of its PostgreSQL backend (``/proc``), for the
  whole call and for its two halves (building the rows; the insert of rows already built);
- ``one``: ``N`` one-by-one ``enqueue`` calls (default 2,000): rate and this process's CPU
  per call;
- ``tail``: ``N`` one-by-one calls (default 5,000), each timed, and what happened during
  the slowest 1 %: a Python GC pass, a WAL segment switch, a checkpoint, the first calls
  (before the statement is prepared), and the call's own CPU against a typical call's;
- ``latency``: two idle ``longops worker --concurrency 8`` processes and ``N`` (default
  200) enqueues paced 20 ms apart, each split into the enqueue call, its commit to the
  worker's ``LISTEN`` wake-up, the wake-up to the claim, the claim's round trip and the
  claim's return to the task's start (timestamps from ``peers/latency_app.py``).

To compare two versions in one run, put the other's ``src`` first on ``PYTHONPATH``
(``git archive <ref> src | tar -x -C /tmp/before``; ``PYTHONPATH=/tmp/before/src``): the
worker processes of ``latency`` inherit it. Every part uses a database of its own, dropped
at the end. Findings: ``results/enqueue-notes.md``.
"""

from __future__ import annotations

import gc
import glob
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"
ADMIN_URL = os.environ.get("LONGOPS_BENCH_PG_URL", "postgresql://root@127.0.0.1:5432/postgres")
TICK = os.sysconf("SC_CLK_TCK")
BATCH = 5_000
WORKER = ("worker", "--concurrency", "8")
sys.path.insert(0, str(PEERS))


@contextmanager
def database(tag: str) -> Iterator[str]:
    name = f"profile_enqueue_{tag}_{os.getpid()}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def app_for(url: str) -> Any:
    import jobs_longops

    jobs_longops.prepare(url)
    return jobs_longops._client(url)


def own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def backend_cpu(db_name: str) -> float:
    """CPU seconds of the database's backends so far."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        pids = [
            r[0]
            for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [db_name])
        ]
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def part_bulk(_: int) -> None:
    from longops import EnqueueRequest

    with database("bulk") as url:
        app = app_for(url)
        db_name = url.rsplit("/", 1)[1]
        svc, store = app.service, app.store
        svc.build(EnqueueRequest(task="peers.noop", args=(-1, 0.0)))
        figures: dict[str, list[float]] = {}

        def note(key: str, seconds: float) -> None:
            figures.setdefault(key, []).append(seconds / BATCH * 1e6)

        for _round in range(3):
            now = time.time()
            requests = [EnqueueRequest(task="peers.noop", args=(n, now)) for n in range(BATCH)]
            s0, c0, t0 = backend_cpu(db_name), own_cpu(), time.perf_counter()
            app.enqueue_many(requests)
            note("enqueue_many wall", time.perf_counter() - t0)
            note("enqueue_many client CPU", own_cpu() - c0)
            note("enqueue_many server CPU", backend_cpu(db_name) - s0)
            c0 = own_cpu()
            built = [svc.build(r) for r in requests]
            note("build one by one (build()) client CPU", own_cpu() - c0)
            s0, c0 = backend_cpu(db_name), own_cpu()
            store.insert_operations_bulk(built)
            note("insert_operations_bulk client CPU", own_cpu() - c0)
            note("insert_operations_bulk server CPU", backend_cpu(db_name) - s0)
        for key, values in figures.items():
            shown = ", ".join(f"{v:.1f}" for v in values)
            print(f"{key}: median {statistics.median(values):.1f} us/op ({shown})")
        app.close()


def part_one(n: int) -> None:
    with database("one") as url:
        app = app_for(url)
        for i in range(50):
            app.enqueue("peers.noop", i, time.time())
        c0, t0 = own_cpu(), time.perf_counter()
        for i in range(n):
            app.enqueue("peers.noop", i, time.time())
        wall = time.perf_counter() - t0
        print(
            f"one-by-one enqueue: {n / wall:,.0f}/s, wall {wall / n * 1e6:.0f} us, "
            f"client CPU {(own_cpu() - c0) / n * 1e6:.0f} us per call"
        )
        app.close()


def part_tail(n: int) -> None:
    with database("tail") as url:
        app = app_for(url)
        side = psycopg.connect(url, autocommit=True)
        passes: list[tuple[float, float]] = []
        began = [0.0]

        def on_gc(phase: str, _info: dict[str, Any]) -> None:
            if phase == "start":
                began[0] = time.perf_counter()
            else:
                passes.append((began[0], time.perf_counter()))

        def wal() -> tuple[int, int]:
            row = side.execute(
                "SELECT pg_current_wal_insert_lsn()::text, "
                "(SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter)"
            ).fetchone()
            assert row is not None
            high, low = row[0].split("/")
            return int(high, 16) << 32 | int(low, 16), int(row[1])

        spans: list[tuple[float, float]] = []
        cpu: list[float] = []
        switched: list[bool] = []
        checkpointed: list[bool] = []
        gc.callbacks.append(on_gc)
        lsn, checkpoints = wal()
        for i in range(n):
            c0, t0 = time.thread_time(), time.perf_counter()
            app.enqueue("peers.noop", i, time.time())
            spans.append((t0, time.perf_counter()))
            cpu.append((time.thread_time() - c0) * 1000)
            new_lsn, new_checkpoints = wal()
            switched.append(new_lsn >> 24 != lsn >> 24)  # 16 MB segments
            checkpointed.append(new_checkpoints != checkpoints)
            lsn, checkpoints = new_lsn, new_checkpoints
        gc.callbacks.remove(on_gc)
        ms = [(e - s) * 1000 for s, e in spans]
        ordered = sorted(ms)

        def q(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]

        slow = [i for i, v in enumerate(ms) if v >= q(99)]
        typical = [i for i, v in enumerate(ms) if v <= q(50)]
        in_gc = sum(1 for i in slow if any(a < spans[i][1] and b > spans[i][0] for a, b in passes))
        print(
            f"n={n}: p50 {q(50):.3f}, p90 {q(90):.3f}, p99 {q(99):.3f}, p99.9 {q(99.9):.3f}, "
            f"max {ordered[-1]:.2f} ms (p99/p50 {q(99) / q(50):.1f})"
        )
        print(
            f"the {len(slow)} calls >= p99: during a GC pass {in_gc}, a WAL segment switch "
            f"{sum(switched[i] for i in slow)} (of {sum(switched)} in the run), a checkpoint "
            f"{sum(checkpointed[i] for i in slow)}, among the first 6 calls "
            f"{sum(1 for i in slow if i < 6)}"
        )
        print(
            f"client CPU per call: calls >= p99 {statistics.median(cpu[i] for i in slow):.3f} ms, "
            f"calls <= p50 {statistics.median(cpu[i] for i in typical):.3f} ms; longest GC "
            f"pass {max((b - a for a, b in passes), default=0) * 1000:.2f} ms"
        )
        print("slowest 10 (ms):", ", ".join(f"{v:.1f}" for v in ordered[::-1][:10]))
        side.close()
        app.close()


def part_latency(n: int) -> None:
    marks = Path(tempfile.mkdtemp(prefix="profile-enqueue-"))
    env = dict(os.environ, BENCH_MARKS_DIR=str(marks))
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PEERS), os.environ.get("PYTHONPATH", "")) if p
    )
    os.environ["BENCH_MARKS_DIR"] = str(marks)
    longops = str(Path(sys.executable).parent / "longops")
    with database("latency") as url:
        client = app_for(url)
        procs = [
            subprocess.Popen(
                [longops, "--app", "latency_app:app", "--database-url", url, *WORKER],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            for _ in range(2)
        ]
        try:
            started = _paced(client, marks, n)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(30)
            client.close()
    _split(started, marks)


def _marks(marks: Path) -> dict[int, tuple[float, str]]:
    """Each job's start time and the worker process (pid) that ran it."""
    out: dict[int, tuple[float, str]] = {}
    for path in glob.glob(str(marks / "[0-9]*.txt")):
        pid = Path(path).stem
        for line in Path(path).read_text().splitlines():
            n, _enqueued, start = line.split()
            out[int(n)] = (float(start), pid)
    return out


def _wait_for(check: Callable[[], bool], seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not run the jobs in time")
        time.sleep(0.05)


def _paced(client: Any, marks: Path, n: int) -> dict[int, tuple[float, float, float, str]]:
    """Warm-up jobs, then ``n`` paced enqueues: per job (before the call, after it, start,
    the pid that ran it)."""
    for i in range(10):
        client.enqueue("peers.noop", i, time.time())
        time.sleep(0.02)
    _wait_for(lambda: len(_marks(marks)) >= 10)
    sent: dict[int, tuple[float, float]] = {}
    began = time.perf_counter()
    for i in range(n):
        pause = began + i * 0.02 - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        job = 1_000_000 + i
        t0 = time.time()
        client.enqueue("peers.noop", job, t0)
        sent[job] = (t0, time.time())
    _wait_for(lambda: len(_marks(marks)) >= 10 + n)
    starts = _marks(marks)
    return {job: (t0, t1, *starts[job]) for job, (t0, t1) in sent.items()}


def _split(started: dict[int, tuple[float, float, float, str]], marks: Path) -> None:
    """Each job's spans, from the timestamps of the worker process that ran it."""
    wakes: dict[str, list[float]] = {}
    claims: dict[str, list[tuple[float, float]]] = {}  # (sent, returned), claims with runs
    for path in glob.glob(str(marks / "trace-*.log")):
        pid = Path(path).stem.removeprefix("trace-")
        for line in Path(path).read_text().splitlines():
            kind, at, *rest = line.split()
            if kind == "wake":
                wakes.setdefault(pid, []).append(float(at))
            elif kind == "claim" and rest[1] != "0":
                claims.setdefault(pid, []).append((float(rest[0]), float(at)))
    parts: dict[str, list[float]] = {}
    early = 0
    for t0, t1, start, pid in started.values():
        woke = next((w for w in sorted(wakes.get(pid, ())) if t0 <= w <= start), None)
        claim = next(
            (c for c in sorted(claims.get(pid, []), key=lambda c: c[1]) if t0 <= c[1] <= start),
            None,
        )
        spans = {"enqueue->start (total)": start - t0, "the enqueue call": t1 - t0}
        if woke is not None:
            spans["call start -> LISTEN wake-up"] = woke - t0
        if woke is not None and claim is not None:
            if claim[0] >= woke:
                spans["wake-up -> claim sent"] = claim[0] - woke
            else:
                early += 1  # a claim already under way took it (no wait for the wake-up)
        if claim is not None:
            spans["claim round trip"] = claim[1] - claim[0]
            spans["claim back -> task start"] = start - claim[1]
        for key, seconds in spans.items():
            parts.setdefault(key, []).append(seconds * 1000)
    for key, values in parts.items():
        values.sort()
        p90 = values[int(len(values) * 0.9)]
        print(f"{key:32} p50 {statistics.median(values):6.2f} ms  p90 {p90:6.2f}  n={len(values)}")
    print(f"jobs taken by a claim sent before their wake-up: {early}")


PARTS = {"bulk": part_bulk, "one": part_one, "tail": part_tail, "latency": part_latency}
DEFAULT_N = {"bulk": BATCH, "one": 2_000, "tail": 5_000, "latency": 200}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in PARTS:
        print(__doc__)
        return 2
    part = argv[0]
    n = int(argv[1]) if len(argv) > 1 else DEFAULT_N[part]
    print(f"== {part} (n={n}), load {os.getloadavg()}", flush=True)
    PARTS[part](n)
    print(f"== load at end {os.getloadavg()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
