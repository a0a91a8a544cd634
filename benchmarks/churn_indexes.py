"""What a claim and a finish write into the indexes of the hot tables (PostgreSQL): this
tree against a baseline's source, in one run.

Run from the project root::

    .venv/bin/python benchmarks/churn_indexes.py [--jobs 10000] [--baseline-src DIR]

For each tree (this one; ``--baseline-src``, a ``src`` folder such as ``git archive main
src``, run in a child process with it first on ``PYTHONPATH``): a fresh database,
``--jobs`` no-op operations bulk-enqueued, ``VACUUM ANALYZE``, then every operation
claimed by the store's own ``claim`` (batches of 32, one session, nothing finished), then
all finished by ``finish_runs`` (batches of 32). After each phase, the size of every index
of longops_operations and longops_attempts, and the CPU the database's server processes
spent in the phase (read from ``/proc``; one client, serial, so less noisy than a drain
but still shared with the machine's load). Writes
``benchmarks/results/churn-indexes.md``. Index growth is deterministic (B-tree
deduplication and bottom-up deletion fold some of a non-HOT update's entries into
existing pages, so growth counts what had to be stored, not statements).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

HERE = Path(__file__).resolve().parent
ADMIN = os.environ.get("LONGOPS_BENCH_PG_URL", "postgresql://root@127.0.0.1:5432/postgres")


def _sizes(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as c:
        rows = c.execute(
            "SELECT i.relname, pg_relation_size(i.oid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
            "WHERE t.relname IN ('longops_operations', 'longops_attempts') ORDER BY 1"
        ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def _server_cpu(url: str) -> float:
    with psycopg.connect(url, autocommit=True) as c:
        pids = [
            int(r[0])
            for r in c.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        ]
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    return total


def measure(jobs: int) -> dict[str, Any]:
    """One tree (the one on sys.path): sizes after each phase, server CPU per phase."""
    from longops import EnqueueRequest, Longops
    from longops.domain.clock import SystemClock
    from longops.domain.operation import Outcome
    from longops.domain.status import Status
    from longops.store.base import ClaimParams, RunResult
    from longops.testing import active_session

    db = f"churn_indexes_{os.getpid()}"
    with psycopg.connect(ADMIN, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {db}")
    url = ADMIN.rsplit("/", 1)[0] + "/" + db
    try:
        app = Longops(url)
        app.task(name="noop")(lambda: None)
        app.migrate()
        clock = SystemClock()
        for low in range(0, jobs, 5000):
            app.enqueue_many([EnqueueRequest(task="noop") for _ in range(min(5000, jobs - low))])
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("VACUUM ANALYZE")
        session = active_session(clock.now(), ("default",), concurrency=8)
        app.store.register_session(session)
        enqueued = _sizes(url)
        cpu0 = _server_cpu(url)
        runs = []
        while got := app.store.claim(ClaimParams(session.id, ("default",), 32, clock.now())):
            runs += got
        cpu1 = _server_cpu(url)
        claimed = _sizes(url)
        cpu1b = _server_cpu(url)
        for low in range(0, len(runs), 32):
            at = clock.now()
            app.store.finish_runs(
                [
                    RunResult(
                        operation_id=r.operation.id,
                        lease_token=r.lease_token,
                        run_no=r.run_no,
                        at=at,
                        outcome=Outcome.SUCCESS,
                        status=Status.FINISHED,
                        started_at=at,
                        clear_checkpoint=True,
                    )
                    for r in runs[low : low + 32]
                ]
            )
        cpu2 = _server_cpu(url)
        finished = _sizes(url)
        app.close()
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    return {
        "claimed": len(runs),
        "enqueued": enqueued,
        "claimed_sizes": claimed,
        "finished": finished,
        "claim_cpu_ms_per_op": round((cpu1 - cpu0) * 1000 / max(len(runs), 1), 4),
        "finish_cpu_ms_per_op": round((cpu2 - cpu1b) * 1000 / max(len(runs), 1), 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-src", type=Path, default=None)
    parser.add_argument("--baseline-name", default="main")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "churn-indexes.md")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.jobs)))
        return 0
    trees: list[tuple[str, Path | None]] = [("this tree", None)]
    if args.baseline_src is not None:
        trees.append((f"baseline ({args.baseline_name})", args.baseline_src.resolve()))
    load_start = [round(x, 2) for x in os.getloadavg()]
    results: dict[str, list[dict[str, Any]]] = {}
    for r in range(args.rounds):
        for name, src in trees[r % len(trees) :] + trees[: r % len(trees)]:
            env = dict(os.environ)
            if src is not None:
                env["PYTHONPATH"] = str(src)
            out = subprocess.run(
                [sys.executable, __file__, "--child", "--jobs", str(args.jobs)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            results.setdefault(name, []).append(json.loads(out.stdout.strip().splitlines()[-1]))
    write(args, results, load_start)
    print(args.out.read_text())
    return 0


def write(
    args: argparse.Namespace, results: dict[str, list[dict[str, Any]]], load: list[float]
) -> None:
    names = list(results)
    first = {n: results[n][0] for n in names}
    indexes = sorted(set().union(*(first[n]["enqueued"] for n in names)))
    kb = 1024

    def grow(res: dict[str, Any], phase: str, before: str, index: str | None = None) -> float:
        if index is None:
            return (sum(res[phase].values()) - sum(res[before].values())) / kb
        return (res[phase].get(index, 0) - res[before].get(index, 0)) / kb

    lines = [
        "# Index churn of the claim and the finish (PostgreSQL, `benchmarks/churn_indexes.py`)",
        "",
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}; load average at start "
        f"{load}, at end {[round(x, 2) for x in os.getloadavg()]}",
        f"- {args.jobs:,} no-op operations bulk-enqueued, `VACUUM ANALYZE`, all claimed (store "
        "`claim`, batches of 32, nothing finished), then all finished (`finish_runs`, "
        f"batches of 32); {args.rounds} rounds, trees alternated",
        "",
        "Index growth in kB per phase (first round; growth is deterministic):",
        "",
        "| index | " + " | ".join(f"{n}: claim | {n}: finish" for n in names) + " |",
        "|---|" + "---|---|" * len(names),
    ]
    for index in indexes:
        cells = []
        for n in names:
            cells += [
                f"{grow(first[n], 'claimed_sizes', 'enqueued', index):,.0f}",
                f"{grow(first[n], 'finished', 'claimed_sizes', index):,.0f}",
            ]
        lines.append(f"| {index} | " + " | ".join(cells) + " |")
    cells = []
    for n in names:
        cells += [
            f"**{grow(first[n], 'claimed_sizes', 'enqueued'):,.0f}**",
            f"**{grow(first[n], 'finished', 'claimed_sizes'):,.0f}**",
        ]
    lines.append("| **all** | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Server CPU per operation (ms; every round, median first), one client, serial:",
        "",
        "| tree | claim | finish |",
        "|---|---|---|",
    ]
    for n in names:
        c = [r["claim_cpu_ms_per_op"] for r in results[n]]
        f = [r["finish_cpu_ms_per_op"] for r in results[n]]
        lines.append(
            f"| {n} | {statistics.median(c):.3f} ({', '.join(f'{x:.3f}' for x in c)}) | "
            f"{statistics.median(f):.3f} ({', '.join(f'{x:.3f}' for x in f)}) |"
        )
    lines.append("")
    args.out.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
