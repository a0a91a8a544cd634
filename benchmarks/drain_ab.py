"""The PostgreSQL drain, this tree against a baseline ref, at several concurrencies, in one
run: the before/after of a hot-path change on a loaded machine.

Run from the project root::

    .venv/bin/python benchmarks/drain_ab.py --baseline main --concurrency 1,8 --jobs 5000
    .venv/bin/python benchmarks/drain_ab.py --concurrency 1,4,8,16 --rounds 3 --no-baseline

Each variant (a source tree and a ``--concurrency``) drains the peers benchmark's no-op job
(``peers/jobs_longops.py``: it leaves a mark per job) the way ``bench_peers.py`` does: a
fresh database, ``--jobs`` operations bulk-enqueued by the variant's own code, two
``longops worker --concurrency C`` processes, the clock from their spawn to the N-th mark;
every job checked run exactly once. The variants run in turn, their order rotated per round,
so each ratio compares runs a minute apart. Beside ops/s it reports, per operation, the
workers' CPU (user + system, read from ``/proc`` just before they are stopped), the CPU
of the database's server processes serving them, the database's commits
(``pg_stat_database.xact_commit``), and from ``pg_stat_user_tables`` the updates of
``longops_operations`` and how many were HOT.

Results: ``--out`` (default ``benchmarks/results/drain-ab.md`` and ``.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from bench_api import database, export_src
from bench_core import machine_info
from bench_peers import (
    BULK_BATCH,
    PEERS_DIR,
    Marks,
    Workers,
    client,
    install_schema,
    start_workers,
    stop_workers,
    wait_marks,
)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_PG_ADMIN_URL = "postgresql://root@127.0.0.1:5432/postgres"


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backends_cpu(url: str) -> float:
    """CPU seconds of the server processes connected to ``url``'s database (the workers'
    pooled connections live through the drain, so this is their whole work)."""
    with psycopg.connect(url, autocommit=True) as conn:
        pids = [
            int(r[0])
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        ]
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):  # ended meanwhile
            total += cpu_seconds(pid)
    return total


def db_counters(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        db = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        tab = conn.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
            "WHERE relname = 'longops_operations'"
        ).fetchone()
    assert db is not None
    assert tab is not None
    return {"commits": int(db[0]), "updates": int(tab[0]), "hot_updates": int(tab[1])}


def drain(
    admin_url: str, workdir: Path, src: Path | None, concurrency: int, jobs: int, tag: str
) -> dict[str, Any]:
    """One drain of ``jobs`` operations by two workers of the code in ``src`` (None: this
    tree) at ``concurrency``."""
    import bench_peers

    marks_dir = Path(tempfile.mkdtemp(dir=workdir))
    pythonpath = os.pathsep.join([*([str(src)] if src is not None else []), str(PEERS_DIR)])
    old_env = bench_peers.system_env

    def env(url: str, marks: Path, system: str = "") -> dict[str, str]:
        e = old_env(url, marks, system)
        e["PYTHONPATH"] = pythonpath
        return e

    bench_peers.system_env = env
    old_recommended = bench_peers.LONGOPS_RECOMMENDED
    bench_peers.LONGOPS_RECOMMENDED = concurrency
    try:
        with database(admin_url, f"drain_ab_{tag}_{os.getpid()}") as url:
            install_schema("longops", url, marks_dir)
            client("longops", "bulk", url, marks_dir, 0, jobs, BULK_BATCH)
            before = db_counters(url)
            marks = Marks(marks_dir)
            workers: Workers = start_workers(
                "longops", "recommended", url, marks_dir, workdir, f"ab-{tag}"
            )
            try:
                done = wait_marks(marks, jobs, workers)
                # Let the last results land, then read the workers' CPU.
                time.sleep(0.3)
                cpu = sum(cpu_seconds(p.pid) for p in workers.procs)
                server_cpu = backends_cpu(url)
            finally:
                codes = stop_workers(workers)
            marks.started(0, jobs)  # each exactly once, or InvalidRunError
            after = db_counters(url)
    finally:
        bench_peers.system_env = old_env
        bench_peers.LONGOPS_RECOMMENDED = old_recommended
    elapsed = done - workers.started
    delta = {k: after[k] - before[k] for k in after}
    return {
        "jobs_per_s": round(jobs / elapsed, 1),
        "elapsed_s": round(elapsed, 3),
        "worker_cpu_ms_per_op": round(cpu * 1000 / jobs, 3),
        "server_cpu_ms_per_op": round(server_cpu * 1000 / jobs, 3),
        "commits_per_op": round(delta["commits"] / jobs, 3),
        "updates_per_op": round(delta["updates"] / jobs, 3),
        "hot_update_share": round(delta["hot_updates"] / delta["updates"], 3)
        if delta["updates"]
        else None,
        "worker_exit_codes": codes,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="main", help="git ref of the 'before' code")
    parser.add_argument("--no-baseline", action="store_true", help="this tree only")
    parser.add_argument("--concurrency", default="1,8", help="comma-separated")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--pg-admin-url", default=os.environ.get("LONGOPS_BENCH_PG_URL", DEFAULT_PG_ADMIN_URL)
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "drain-ab.md")
    args = parser.parse_args(argv)
    concurrencies = [int(c) for c in args.concurrency.split(",") if c.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="longops-drain-ab-"))
    trees: list[tuple[str, Path | None]] = [("current", None)]
    if not args.no_baseline:
        trees.append((f"baseline ({args.baseline})", export_src(args.baseline, workdir)))
    variants = [(name, src, c) for name, src, c in _product(trees, concurrencies)]
    machine = machine_info(args.pg_admin_url)
    print(f"drain A/B: {len(variants)} variants x {args.rounds} rounds; load {os.getloadavg()}")
    runs: dict[str, list[dict[str, Any]]] = {}
    for r in range(args.rounds):
        order = variants[r % len(variants) :] + variants[: r % len(variants)]
        for i, (name, src, c) in enumerate(order):
            key = f"{name}, --concurrency {c}"
            res = drain(args.pg_admin_url, workdir, src, c, args.jobs, f"{r}_{i}")
            res["load"] = round(os.getloadavg()[0], 2)
            runs.setdefault(key, []).append(res)
            print(f"  round {r + 1}: {key:45} {json.dumps(res)}", flush=True)
    load_end = [round(x, 2) for x in os.getloadavg()]
    write(args.out, machine, load_end, args, runs)
    print(f"results in {args.out}")
    return 0


def _product(
    trees: list[tuple[str, Path | None]], concurrencies: list[int]
) -> list[tuple[str, Path | None, int]]:
    return [(name, src, c) for name, src in trees for c in concurrencies]


FIELDS = (
    ("jobs_per_s", "jobs/s"),
    ("worker_cpu_ms_per_op", "worker CPU ms/op"),
    ("server_cpu_ms_per_op", "server CPU ms/op"),
    ("commits_per_op", "commits/op"),
    ("updates_per_op", "row updates/op"),
    ("hot_update_share", "HOT share"),
)


def write(
    path: Path,
    machine: dict[str, Any],
    load_end: list[float],
    args: argparse.Namespace,
    runs: dict[str, list[dict[str, Any]]],
) -> None:
    lines = [
        "# PostgreSQL drain, A/B (`benchmarks/drain_ab.py`)",
        "",
        f"- date: {machine['date']}; machine: {machine['nproc']} CPUs, load average at start "
        f"{machine['loadavg_at_start']}, at end {load_end}",
        f"- this tree: {machine['source']}; baseline: "
        + ("none" if args.no_baseline else f"`{args.baseline}`"),
        f"- {args.jobs:,} no-op jobs per drain, 2 `longops worker` processes, {args.rounds} "
        "rounds, variants rotated per round; medians, every run listed",
        "",
        "| variant | " + " | ".join(label for _, label in FIELDS) + " | every run (jobs/s) |",
        "|---|" + "---|" * (len(FIELDS) + 1),
    ]
    for key, results in runs.items():
        cells = []
        for field, _ in FIELDS:
            values = [r[field] for r in results if r[field] is not None]
            cells.append(f"{statistics.median(values):,.3g}" if values else "n/a")
        every = " / ".join(f"{r['jobs_per_s']:,.0f}" for r in results)
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {every} |")
    lines.append("")
    path.write_text("\n".join(lines))
    path.with_suffix(".json").write_text(
        json.dumps({"machine": machine, "load_end": load_end, "runs": runs}, indent=2)
    )


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
