"""The plans of the list pages' statements (PostgreSQL): every list, sort, search and count
the Job Queue Entries page sends, `EXPLAIN ANALYZE`-d on a filled table, so a change to the
lists' indexes (migration 0016 leaves running operations out of them) shows whether each
page is still an index scan.

Run from the project root::

    .venv/bin/python benchmarks/explain_lists.py [--rows 200000]

Fills a fresh database with ``--rows`` operations in one INSERT (two companies, 20 tasks,
a third finished, 1 in 1,000 running, 1 in 13 of a user, 1 in 97 in a category), runs
``ANALYZE``, then calls the store's list and count methods with the filters the page
offers. Every statement they send is recorded and `EXPLAIN (ANALYZE, BUFFERS)`-ed with the
same parameters (custom plans, as the pages run them). Writes
``benchmarks/results/explain-lists-postgres.md``: per call, the plan and whether any
sequential scan of ``longops_operations`` is in it.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from longops.domain.filters import OperationFilter, SortCursor, SortKey
from longops.domain.operation import Category
from longops.domain.status import Status
from longops.store._sql import core
from longops.store.postgres import PostgresStore

HERE = Path(__file__).resolve().parent
ADMIN = os.environ.get("LONGOPS_BENCH_PG_URL", "postgresql://root@127.0.0.1:5432/postgres")

FILL = """
INSERT INTO longops_operations (id, company, task, args, description, queue, category, status,
    priority, earliest_start_at, created_at, updated_at, started_at, ended_at, lease_token,
    session_id, user_name, last_error)
SELECT gen_random_uuid(), CASE WHEN i %% 10 = 0 THEN 'B' ELSE 'default' END,
       'noop' || (i %% 20), '{}', 'Nightly batch ' || i, 'default',
       CASE WHEN i %% 97 = 1 AND i %% 10 <> 0 THEN 'CAT' END,
       CASE WHEN i %% 1000 = 7 THEN 'in_process' WHEN i %% 3 = 0 THEN 'finished'
            WHEN i %% 50 = 1 THEN 'error' ELSE 'ready' END,
       (ARRAY[1000, 2000, 3000])[1 + i %% 3],
       now() + (i %% 600) * interval '1 s', now(), now(),
       CASE WHEN i %% 3 = 0 OR i %% 1000 = 7 OR i %% 50 = 1 THEN now() - interval '1 min' END,
       CASE WHEN (i %% 3 = 0 OR i %% 50 = 1) AND i %% 1000 <> 7
            THEN now() - interval '1 min' + (i %% 5000) * interval '1 ms' END,
       CASE WHEN i %% 1000 = 7 THEN gen_random_uuid() END,
       CASE WHEN i %% 1000 = 7 THEN gen_random_uuid() END,
       CASE WHEN i %% 13 = 0 THEN 'alice' END,
       CASE WHEN i %% 50 = 1 AND i %% 1000 <> 7 THEN 'timeout talking to ledger' END
  FROM generate_series(1, %(rows)s) i
"""

SEEN: list[tuple[str, Any]] = []


def watch() -> Callable[[], None]:
    """Record every statement a TimedCursor sends (and its parameters)."""
    original = core.TimedCursor._timed

    def timed(self: Any, run: Any, query: Any, args: Any, kwargs: Any) -> Any:
        if isinstance(query, str) and args and run.__name__ == "execute":
            SEEN.append((query, args[0]))
        return original(self, run, query, args, kwargs)

    core.TimedCursor._timed = timed  # type: ignore[method-assign]

    def undo() -> None:
        core.TimedCursor._timed = original  # type: ignore[method-assign]

    return undo


def calls(s: PostgresStore) -> list[tuple[str, Callable[[], object]]]:
    f = OperationFilter
    q = f(company="default", limit=50)
    last = s.last_entry_no()
    out: list[tuple[str, Callable[[], object]]] = [
        ("list: company, oldest first", lambda: s.list_operations(q)),
        ("list: company, newest first", lambda: s.list_operations(replace(q, descending=True))),
        (
            "list: newest first, next page",
            lambda: s.list_operations(replace(q, descending=True, before_entry_no=last // 2)),
        ),
        ("list: every company", lambda: s.list_operations(f(limit=50))),
        (
            "list: statuses finished, error",
            lambda: s.list_operations(replace(q, statuses=(Status.FINISHED, Status.ERROR))),
        ),
        (
            "list: in process",
            lambda: s.list_operations(replace(q, statuses=(Status.IN_PROCESS,))),
        ),
        ("list: task", lambda: s.list_operations(replace(q, task="noop3"))),
        (
            "list: task, ready",
            lambda: s.list_operations(replace(q, task="noop3", statuses=(Status.READY,))),
        ),
        ("list: category", lambda: s.list_operations(replace(q, category="CAT"))),
        ("list: user", lambda: s.list_operations(replace(q, user="alice"))),
        ("list: search text", lambda: s.list_operations(replace(q, text="ledger"))),
        ("list: search text, rare", lambda: s.list_operations(replace(q, text="batch 12345"))),
    ]
    for key in SortKey:
        if key is SortKey.ENTRY_NO:
            continue
        for descending in (False, True):
            label = f"list: sort {key.value}{' desc' if descending else ''}"

            def first(k: SortKey = key, d: bool = descending) -> object:
                return s.list_operations(replace(q, sort=k, descending=d))

            out.append((label, first))
        out.append((f"list: sort {key.value}, next page", _next_page(s, q, key)))
    out += [
        ("count_operations", lambda: s.count_operations("default")),
        (
            "count_capped: per status",
            lambda: s.count_capped([replace(q, statuses=(st,)) for st in Status], 1000),
        ),
        ("count_capped: task", lambda: s.count_capped([replace(q, task="noop3")], 1000)),
        (
            "count_by_status: search",
            lambda: s.count_by_status(replace(q, text="ledger"), cap=1000),
        ),
    ]
    return out


def _next_page(s: PostgresStore, q: OperationFilter, key: SortKey) -> Callable[[], object]:
    def run() -> object:
        page = s.list_operations(replace(q, sort=key))
        from longops.domain.filters import sort_value

        cursor = SortCursor(page[-1].entry_no, sort_value(key, page[-1]))
        SEEN.clear()  # only the second page's statement
        return s.list_operations(replace(q, sort=key, cursor=cursor))

    return run


SCAN = re.compile(
    r"((?:Parallel )?(?:Index Only Scan|Index Scan Backward|Index Scan|Bitmap Index Scan|Seq Scan))"
    r" (?:using|on) (\w+)"
)


def _scans(plan: str) -> str:
    """The scans of a plan, in order: kind and index (or table)."""
    return ", ".join(f"{kind} {name}" for kind, name in SCAN.findall(plan))


def _ms(plan: str) -> str:
    found = re.search(r"Execution Time: ([\d.]+) ms", plan)
    return found[1] if found else "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    db = f"explain_lists_{os.getpid()}"
    with psycopg.connect(ADMIN, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {db}")
    url = ADMIN.rsplit("/", 1)[0] + "/" + db
    sections: list[str] = []
    seq_scans: list[str] = []
    summary: list[tuple[str, str, str]] = []
    try:
        store = PostgresStore(url)
        store.migrate()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO longops_companies (name, display_name) VALUES ('B', 'B')")
        store.upsert_category(Category("default", "CAT", "a category", 2))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(FILL, {"rows": args.rows})
            conn.execute("VACUUM ANALYZE longops_operations")
        with psycopg.connect(url, autocommit=True) as conn:
            for label, call in calls(store):
                SEEN.clear()
                undo = watch()
                try:
                    call()
                finally:
                    undo()
                for query, params in SEEN:
                    rows = conn.execute(
                        f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {query}", params
                    ).fetchall()
                    plan = "\n".join(r[0] for r in rows)
                    if "Seq Scan on longops_operations" in plan:
                        seq_scans.append(label)
                    summary.append((label, _scans(plan), _ms(plan)))
                    sections += [f"## {label}", "", "```", plan, "```", ""]
        store.close()
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    head = [
        "# The list pages' plans (PostgreSQL)",
        "",
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}; load average "
        f"{[round(x, 2) for x in os.getloadavg()]}",
        f"- {args.rows:,} operations (2 companies, 20 tasks, a third finished, 1 in 1,000 "
        "running, 1 in 13 of a user, 1 in 97 in a category, 1 in 50 in error), `VACUUM "
        "ANALYZE`; each statement the store sends for a page `EXPLAIN (ANALYZE, BUFFERS)`-ed "
        "with its own parameters (custom plans); times are under the load above",
        "- produced by `benchmarks/explain_lists.py`",
        f"- sequential scans of longops_operations: {', '.join(seq_scans) or 'none'}",
        "",
        "| call | scans (per branch) | execution ms |",
        "|---|---|---|",
        *(f"| {label} | {scans} | {ms} |" for label, scans, ms in summary),
        "",
    ]
    out = args.out / "explain-lists-postgres.md"
    out.write_text("\n".join(head + sections))
    print("\n".join(head))
    return 0


if __name__ == "__main__":
    sys.exit(main())
