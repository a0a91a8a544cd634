"""What the pages' core support costs, on SQLite and PostgreSQL.

Run from the project root::

    .venv/bin/python benchmarks/bench_pages_core.py [--db sqlite|postgres|both] [--quick]

Figures (per database):

1. finish: the cost of the notification trigger on the result write. N operations are
   claimed in batches of 100 and their results written with ``finish_runs`` (the worker's
   own call); the time of the writes alone, for operations of no user (the trigger's WHEN
   clause is false) and of a user (one notification row per operation). Reported as
   results per second and as the ratio of the two, which is what carries over to another
   machine.
2. reads: with a backlog of ready operations (100,000; 20,000 with ``--quick``) and 50 in
   process, the reads a page makes, each repeated: ``overview``, ``status_counts`` with
   and without a task filter, ``list_attempts`` (a page of 100), ``running_for_user``,
   ``unread_notifications``; p50 and p95 in milliseconds. The ready facet is capped at
   10,000, so its cost does not grow with the backlog. PostgreSQL's statistics are
   refreshed (``ANALYZE``) after the load, as autovacuum would.

Each phase runs on a fresh, migrated database (see ``bench_core.fresh_database``).
Results go to ``benchmarks/results/pages-core-<dialect>.json`` and
``benchmarks/results/pages-core.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg

from bench_core import (
    DEFAULT_PG_ADMIN_URL,
    DIALECTS,
    RESULTS,
    BenchConfig,
    Sizes,
    fresh_database,
    machine_info,
    percentile,
)
from bench_core import FULL as CORE_SIZES
from longops import EnqueueRequest, Longops
from longops.domain.operation import Outcome
from longops.domain.security import PermissionSet
from longops.domain.status import Status
from longops.store.base import ClaimParams, OperationQuery, RunResult
from longops.testing import active_session

USER = "bench-user"
BATCH = 100


def _app(url: str) -> Longops:
    app = Longops(url)
    app.task(name="bench.noop")(lambda: None)
    app.task(name="bench.other")(lambda: None)
    return app


def bench_finish(url: str, n: int, user: str | None) -> dict[str, Any]:
    """Claim ``n`` operations in batches and time writing their results."""
    app = _app(url)
    try:
        app.enqueue_many([EnqueueRequest(task="bench.noop", user=user)] * n)
        store = app.store
        session = active_session(app.clock.now())
        store.register_session(session)
        spent = 0.0
        done = 0
        while done < n:
            claimed = store.claim(ClaimParams(session.id, ("default",), BATCH, app.clock.now()))
            if not claimed:
                raise RuntimeError(f"only {done} of {n} operations could be claimed")
            now = app.clock.now()
            results = [
                RunResult(
                    operation_id=c.operation.id,
                    lease_token=c.lease_token,
                    run_no=c.run_no,
                    at=now,
                    outcome=Outcome.SUCCESS,
                    status=Status.FINISHED,
                    started_at=now,
                )
                for c in claimed
            ]
            started = time.perf_counter()
            applied = store.finish_runs(results)
            spent += time.perf_counter() - started
            if not all(applied):
                raise RuntimeError("a result write was fenced off")
            done += len(claimed)
        notes = len(store.notifications_since(0, limit=n + 1))
        expected = n if user is not None else 0
        if notes != expected:
            raise RuntimeError(f"{notes} notifications, expected {expected}")
        return {"operations": n, "write_s": round(spent, 4), "per_s": round(n / spent, 1)}
    finally:
        app.close()


def timed(call: Callable[[], object], repeat: int) -> dict[str, float]:
    call()  # warm: connections, plans
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": round(percentile(samples, 50), 3),
        "p95_ms": round(percentile(samples, 95), 3),
        "repeat": repeat,
    }


def bench_reads(url: str, backlog: int, repeat: int) -> dict[str, Any]:
    app = _app(url)
    try:
        app.add_company("A")
        app.security.add_user(USER, grants=[("A", PermissionSet.USER)])
        for start in range(0, backlog, 10_000):
            size = min(10_000, backlog - start)
            app.enqueue_many([EnqueueRequest(task="bench.noop", company="A", user=USER)] * size)
        app.enqueue_many([EnqueueRequest(task="bench.other", company="A")] * 100)
        session = active_session(app.clock.now())
        app.store.register_session(session)
        app.store.claim(ClaimParams(session.id, ("default",), 50, app.clock.now()))
        if url.startswith("postgres"):
            # As autovacuum would after such a load: plans follow the table's statistics.
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("ANALYZE longops_operations")
        view = app.as_user(USER).service
        filtered = OperationQuery(task="bench.other")
        reads: dict[str, Callable[[], object]] = {
            "overview": lambda: view.read_models.overview("A"),
            "status_counts": lambda: view.read_models.status_counts("A"),
            "status_counts_task_filter": lambda: view.read_models.status_counts(
                "A", query=filtered
            ),
            "list_attempts_page": lambda: view.read_models.list_attempts("A", limit=100),
            "running_for_user": lambda: view.read_models.running_for_user("A"),
            "unread_notifications": lambda: view.inbox.unread_notifications("A"),
        }
        out: dict[str, Any] = {"backlog_ready": backlog + 100 - 50, "in_process": 50}
        for name, call in reads.items():
            out[name] = timed(call, repeat)
        return out
    finally:
        app.close()


def run_dialect(dialect: str, cfg: BenchConfig, quick: bool, repeats: int) -> dict[str, Any]:
    n = 1_000 if quick else 5_000
    runs: dict[str, list[dict[str, Any]]] = {"no_user": [], "user": []}
    for i in range(repeats):
        for label, user in (("no_user", None), ("user", USER)):
            with fresh_database(dialect, f"pages_finish_{label}_{i}", cfg) as url:
                runs[label].append(bench_finish(url, n, user))
    median = {label: sorted(r["per_s"] for r in rs)[len(rs) // 2] for label, rs in runs.items()}
    finish = {
        "operations": n,
        "no_user_per_s": median["no_user"],
        "user_per_s": median["user"],
        "ratio_user_to_no_user": round(median["user"] / median["no_user"], 3),
        "runs": runs,
    }
    backlog = 20_000 if quick else 100_000
    with fresh_database(dialect, "pages_reads", cfg) as url:
        reads = bench_reads(url, backlog, 20 if quick else 50)
    return {"finish": finish, "reads": reads}


def render(docs: dict[str, dict[str, Any]], machine: dict[str, Any], quick: bool) -> str:
    lines = [
        "# Pages core benchmark" + (" (quick)" if quick else ""),
        "",
        f"- date: {machine['date']}",
        f"- machine: {machine['nproc']} CPUs, {machine['cpu_model']}, {machine['platform']}",
        "- database on the same machine, shared with other work (figures are indicative; "
        "the ratios carry over better than the absolute numbers)",
        "",
        "## Result writes with and without the notification trigger",
        "",
        "| database | operations | no user (results/s) | with user (results/s) | ratio |",
        "|---|---|---|---|---|",
    ]
    for dialect, doc in docs.items():
        f = doc["finish"]
        lines.append(
            f"| {dialect} | {f['operations']:,} | {f['no_user_per_s']:,} | "
            f"{f['user_per_s']:,} | {f['ratio_user_to_no_user']} |"
        )
    lines.append("")
    lines.append("Every repetition (results/s, no user / with user; medians above):")
    lines.append("")
    for dialect, doc in docs.items():
        runs = doc["finish"]["runs"]
        pairs = ", ".join(
            f"{a['per_s']:,} / {b['per_s']:,}"
            for a, b in zip(runs["no_user"], runs["user"], strict=True)
        )
        lines.append(f"- {dialect}: {pairs}")
    lines += [
        "",
        "## Page reads with a backlog of ready operations",
        "",
        "| database | read | p50 ms | p95 ms |",
        "|---|---|---|---|",
    ]
    for dialect, doc in docs.items():
        r = doc["reads"]
        for name, figures in r.items():
            if isinstance(figures, dict):
                lines.append(
                    f"| {dialect} ({r['backlog_ready']:,} ready) | `{name}` | "
                    f"{figures['p50_ms']} | {figures['p95_ms']} |"
                )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=[*DIALECTS, "both"], default="both")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    args = parser.parse_args(argv)
    dialects = DIALECTS if args.db == "both" else (args.db,)
    repeats = args.repeat or (1 if args.quick else 3)
    docs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as work:
        sizes: Sizes = CORE_SIZES
        cfg = BenchConfig(args.pg_admin_url, Path(work), sizes)
        for dialect in dialects:
            print(f"[{dialect}] running ...", flush=True)
            docs[dialect] = run_dialect(dialect, cfg, args.quick, repeats)
            print(json.dumps({k: v for k, v in docs[dialect]["finish"].items() if k != "runs"}))
    machine = machine_info(args.pg_admin_url if "postgres" in dialects else None)
    suffix = ".quick" if args.quick else ""
    args.out.mkdir(parents=True, exist_ok=True)
    for dialect, doc in docs.items():
        path = args.out / f"pages-core-{dialect}{suffix}.json"
        path.write_text(json.dumps({"machine": machine, **doc}, indent=2) + "\n")
    (args.out / f"pages-core{suffix}.md").write_text(render(docs, machine, args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
