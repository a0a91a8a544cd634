"""EXPLAIN of the hot path's statements on PostgreSQL, and which index each one uses.

Run from the project root::

    .venv/bin/python benchmarks/explain_hotpath.py [--ready 20000] [--drained 5000]

Fills a fresh database with ``--ready`` no-op operations, claims and finishes
``--drained`` of them the way a worker does (prepared statements, so generic plans: claims
of 16 carrying the previous batch's results), then writes to
``benchmarks/results/explain-hotpath-postgres.txt``: ``EXPLAIN (ANALYZE, BUFFERS)`` of
``claim_guard``, ``claim_operations`` and ``finish_runs`` under
``plan_cache_mode = force_generic_plan`` (what a worker runs after five calls), and the
index statistics of the hot tables after the drain (``idx_scan``, ``idx_tup_read``): the
evidence that each statement reaches its rows through the index meant for it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from longops import EnqueueRequest, Longops
from longops.domain.clock import SystemClock
from longops.domain.operation import Outcome, Status
from longops.store.base import ClaimParams, RunResult
from longops.testing import active_session

HERE = Path(__file__).resolve().parent
ADMIN = os.environ.get("LONGOPS_BENCH_PG_URL", "postgresql://root@127.0.0.1:5432/postgres")


def success(run: Any, at: datetime) -> RunResult:
    return RunResult(
        operation_id=run.operation.id,
        lease_token=run.lease_token,
        run_no=run.run_no,
        at=at,
        outcome=Outcome.SUCCESS,
        status=Status.FINISHED,
        status_reason=None,
        earliest_start_at=None,
        attempt_count=None,
        error_message=None,
        traceback=None,
        result_json=None,
        started_at=at,
        progress_json=None,
        stop_mode=None,
        cancel_mode=None,
        clear_checkpoint=True,
        peak_rss=None,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ready", type=int, default=20_000)
    parser.add_argument("--drained", type=int, default=5_000)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    db = f"explain_hotpath_{os.getpid()}"
    with psycopg.connect(ADMIN, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {db}")
    url = ADMIN.rsplit("/", 1)[0] + "/" + db
    lines: list[str] = []
    try:
        app = Longops(url)
        app.task(name="noop")(lambda: None)
        app.migrate()
        app.enqueue_many([EnqueueRequest(task="noop") for _ in range(args.ready)])
        clock = SystemClock()
        session = active_session(clock.now(), ("default",), concurrency=8)
        app.store.register_session(session)
        store = app.store
        done: tuple[RunResult, ...] = ()
        started = time.perf_counter()
        drained = 0
        while drained < args.drained:
            runs = store.claim(
                ClaimParams(session.id, ("default",), 16, clock.now(), finished=done)
            )
            done = tuple(success(r, clock.now()) for r in runs)
            drained += len(runs)
        store.finish_runs(done)
        took = time.perf_counter() - started
        lines += [
            "# EXPLAIN of the hot path (PostgreSQL), generic plans",
            "",
            f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}; load average "
            f"{[round(x, 2) for x in os.getloadavg()]} (shared 2-CPU machine)",
            f"- {args.ready:,} ready no-op operations; {drained:,} claimed 16 at a time, each "
            "claim carrying the previous batch's results (as a worker does), in "
            f"{took:.1f} s; then the statements below once more, explained",
            "- produced by `benchmarks/explain_hotpath.py`",
            "",
        ]
        q = store.q
        params = {
            "session_id": session.id,
            "queues": ["default"],
            "limit": 16,
            "now": clock.now(),
            "companies": None,
        }
        with psycopg.connect(url) as conn:
            conn.execute("SET plan_cache_mode = force_generic_plan")
            for name in ("claim_guard", "claim_operations"):
                plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {q[name]}", params).fetchall()
                lines += [f"## {name}", "", *(r[0] for r in plan), ""]
            conn.commit()  # the explained claim ran: its 16 rows are in process
            rows = conn.execute(
                "SELECT id, lease_token, run_count FROM longops_operations "
                "WHERE status = 'in_process' ORDER BY entry_no LIMIT 16"
            ).fetchall()
            now = clock.now()
            finish = {
                "ids": [r[0] for r in rows],
                "leases": [r[1] for r in rows],
                "run_nos": [r[2] for r in rows],
                "ats": [now] * len(rows),
                "outcomes": ["success"] * len(rows),
                "statuses": ["finished"] * len(rows),
                "reasons": [None] * len(rows),
                "starts": [None] * len(rows),
                "attempt_counts": [None] * len(rows),
                "errors": [None] * len(rows),
                "tracebacks": [None] * len(rows),
                "results": [None] * len(rows),
                "run_starts": [now] * len(rows),
                "progresses": [None] * len(rows),
                "stop_modes": [None] * len(rows),
                "cancel_modes": [None] * len(rows),
                "clear_checkpoints": [True] * len(rows),
                "peak_rsses": [None] * len(rows),
            }
            plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {q['finish_runs']}", finish).fetchall()
            lines += ["## finish_runs (16 results)", "", *(r[0] for r in plan), ""]
            conn.commit()
            stats = conn.execute(
                "SELECT relname, indexrelname, idx_scan, idx_tup_read, "
                "pg_relation_size(indexrelid) AS bytes FROM pg_stat_user_indexes "
                "WHERE relname IN ('longops_operations', 'longops_attempts', "
                "'longops_operation_events') ORDER BY relname, indexrelname"
            ).fetchall()
            tables = conn.execute(
                "SELECT relname, n_tup_upd, n_tup_hot_upd, n_dead_tup FROM pg_stat_user_tables "
                "WHERE relname IN ('longops_operations', 'longops_attempts') ORDER BY relname"
            ).fetchall()
        lines += [
            "## Index use after the drain (pg_stat_user_indexes)",
            "",
            "| table | index | scans | entries read | size (bytes) |",
            "|---|---|---|---|---|",
            *(f"| {t} | {i} | {s:,} | {r:,} | {b:,} |" for t, i, s, r, b in stats),
            "",
            "| table | updates | of which HOT | dead rows |",
            "|---|---|---|---|",
            *(f"| {t} | {u:,} | {h:,} | {d:,} |" for t, u, h, d in tables),
            "",
        ]
        app.close()
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    path = args.out / "explain-hotpath-postgres.txt"
    path.write_text("\n".join(lines))
    print(json.dumps({"written": str(path)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
