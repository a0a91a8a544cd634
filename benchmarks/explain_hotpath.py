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
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from bench_scale import (
    ADMIN,
    HERE,
    claim_params,
    fresh_database,
    success,
)
from longops import EnqueueRequest, Longops
from longops.domain.clock import SystemClock
from longops.store.base import ClaimParams, RunResult
from longops.testing import active_session


def finish_params(rows: Sequence[Sequence[Any]], now: datetime) -> dict[str, Any]:
    """``finish_runs``' parameters: each run of ``rows`` (id, lease token, run number)
    finished successfully at ``now`` (one JSON array of results, as the store sends it);
    ``ids`` for ``notify_finished``."""
    results = [
        {
            "id": str(r[0]),
            "lease_token": str(r[1]),
            "run_no": r[2],
            "at": now.isoformat(),
            "outcome": "success",
            "status": "finished",
            "run_started_at": now.isoformat(),
            "clear_checkpoint": True,
        }
        for r in rows
    ]
    return {"rows": json.dumps(results), "ids": "{" + ",".join(str(r[0]) for r in rows) + "}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ready", type=int, default=20_000)
    parser.add_argument("--drained", type=int, default=5_000)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    lines: list[str] = []
    with fresh_database("postgres", "hotpath", ADMIN, prefix="explain") as url:
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
        params = claim_params(session.id, 16, clock.now())
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
            finish = finish_params(rows, clock.now())
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
    path = args.out / "explain-hotpath-postgres.txt"
    path.write_text("\n".join(lines))
    print(json.dumps({"written": str(path)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
