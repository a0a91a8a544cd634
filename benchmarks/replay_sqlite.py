"""The SQLite drain's hot path replayed in one thread: where a worker's CPU per operation
goes, without threads, locks or a second process in the way.

Run from the project root::

    .venv/bin/python benchmarks/replay_sqlite.py [--jobs 5000] [--batch 32] [--profile]
        [--src OTHER/src] [--repeat 3]

It fills a fresh SQLite file with ``--jobs`` operations of the peers benchmark's no-op task
(``peers/jobs_longops.py``, bulk-enqueued), registers a worker session, then loops as a
worker's dispatcher and one runner would, in this one thread: ``finish_and_claim`` (the
previous batch's results and the next ``--batch`` claims, one transaction), then each
claimed run through the worker's own path (``RunControl``, ``execute``, which builds the
result). It reports the thread's CPU time per operation in the store (claims carrying the
results) and in running (the worker's per-run Python), and with ``--profile`` the top
functions by cProfile (which slows everything: read the shares, not the times).
``--src`` runs the same replay on another source tree (an A/B, run in turn).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"


class _SqlTimes:
    """CPU time (this thread) per statement, by query name."""

    def __init__(self, store: object) -> None:
        self.names: dict[str, str] = store._query_names  # type: ignore[attr-defined]
        self.cpu: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, cur: object) -> object:
        times = self

        class Cursor:
            def __init__(self, inner: object) -> None:
                self._inner = inner

            def execute(self, query: str, *a: object) -> object:
                return self._run("execute", query, a)

            def executemany(self, query: str, *a: object) -> object:
                return self._run("executemany", query, a)

            def _run(self, how: str, query: str, a: tuple[object, ...]) -> object:
                name = times.names.get(query, query.split()[0])
                t = time.thread_time()
                try:
                    return getattr(self._inner, how)(query, *a)
                finally:
                    times.cpu[name] = times.cpu.get(name, 0.0) + time.thread_time() - t
                    times.calls[name] = times.calls.get(name, 0) + 1

            def __getattr__(self, name: str) -> object:
                return getattr(self._inner, name)

        return Cursor(cur)


def replay(jobs: int, batch: int, profile: bool, sql: bool = False) -> dict[str, float]:
    sys.path.insert(0, str(PEERS))
    os.environ.setdefault("BENCH_MARKS_DIR", tempfile.mkdtemp(prefix="longops-replay-marks-"))
    import cProfile
    import pstats
    from zoneinfo import ZoneInfo

    import jobs_longops

    from longops import Longops
    from longops.store.base import ClaimParams, RunResult
    from longops.worker.executor import RunControl, execute

    work = Path(tempfile.mkdtemp(prefix="longops-replay-"))
    url = f"sqlite:///{work / 'replay.db'}"
    jobs_longops.prepare(url)
    jobs_longops.bulk(url, 0, jobs, 5000)
    app = Longops(url)
    app.task(name=jobs_longops.TASK)(jobs_longops.noop)
    worker = app.worker(concurrency=1, run_services=False)
    worker._register(worker.session_id)  # the session only: none of the worker's threads
    store, registry, clock = app.store, app.registry, app.clock
    tz = ZoneInfo("UTC")
    tasks = (jobs_longops.TASK,)
    task = registry.get(jobs_longops.TASK)
    # CPU time, not wall time: on a shared machine a wall-clock profile charges the time the
    # thread was preempted to whatever function it was in.
    prof = cProfile.Profile(time.thread_time) if profile else None
    sql_times = _SqlTimes(store) if sql else None
    if sql_times is not None:
        store.timed = sql_times.wrap  # type: ignore[attr-defined]
    store_cpu = run_cpu = 0.0
    done = 0
    finished: list[RunResult] = []
    wall = time.perf_counter()
    if prof is not None:
        prof.enable()
    while True:
        t0 = time.thread_time()
        params = ClaimParams(
            worker.session_id, ("default",), batch, clock.now(), clock=clock, tasks=tasks
        )
        # The previous batch's results ride along with the claim, as in a worker.
        claimed = store.finish_and_claim(finished, params) if finished else store.claim(params)
        t1 = time.thread_time()
        store_cpu += t1 - t0
        if not claimed:
            break
        finished = []
        for c in claimed:
            control = RunControl(
                c, store=store, clock=clock, task=task, wake_monitor=lambda: None, kill_after=5.0
            )
            finished.append(execute(c, registry, clock, tz, control, None))
        run_cpu += time.thread_time() - t1
        done += len(claimed)
    if prof is not None:
        prof.disable()
    wall = time.perf_counter() - wall
    app.close()
    if prof is not None:
        stats = pstats.Stats(prof, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(40)
        stats.sort_stats("cumulative").print_stats(60)
    if sql_times is not None:
        for name, cpu in sorted(sql_times.cpu.items(), key=lambda kv: -kv[1]):
            calls = sql_times.calls[name]
            print(
                f"  {name:28} {cpu / done * 1e6:7.1f} us per op, {calls:6} calls",
                file=sys.stderr,
            )
    return {
        "jobs": done,
        "store_us_per_op": store_cpu / done * 1e6,
        "run_us_per_op": run_cpu / done * 1e6,
        "total_us_per_op": (store_cpu + run_cpu) / done * 1e6,
        "ops_per_s_one_thread": done / wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--sql", action="store_true", help="CPU per statement (stderr)")
    parser.add_argument("--src", type=Path, default=None, help="also replay this src tree")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(replay(args.jobs, args.batch, args.profile, args.sql)))
        return 0
    trees: list[tuple[str, Path | None]] = [("this tree", None)]
    if args.src is not None:
        trees.insert(0, ("--src", args.src.resolve()))
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in trees}
    for _ in range(args.repeat):
        for name, src in trees:
            env = dict(os.environ)
            if src is not None:
                env["PYTHONPATH"] = f"{src}{os.pathsep}{env.get('PYTHONPATH', '')}"
            cmd = [sys.executable, __file__, "--child", "--jobs", str(args.jobs)]
            cmd += ["--batch", str(args.batch)] + (["--profile"] if args.profile else [])
            cmd += ["--sql"] if args.sql else []
            err = None if args.profile or args.sql else subprocess.PIPE
            out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
            if out.returncode != 0:
                print(out.stderr, file=sys.stderr)
                return 1
            line = out.stdout.strip().splitlines()[-1]
            results[name].append(json.loads(line))
            print(name, line, flush=True)
    print(f"load {os.getloadavg()}")
    for name, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"{name}: median " + ", ".join(f"{k} {v:,.1f}" for k, v in med.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
