"""Which query uses each index of the hot tables (PostgreSQL): the evidence that every index
the claim and the finish must maintain earns its keep.

Run from the project root::

    .venv/bin/python benchmarks/explain_indexes.py [--ready 20000] [--drained 2000]

Fills a fresh database (``--ready`` ready no-op operations in two companies, some in a
category or of a user, ``--drained`` of them run through the store's own claim and
finish, one left running, one scheduled to expire), runs ``ANALYZE``, then calls the
store's reads and sweeps the way the pages, the API, the worker and the services do. Every
statement they send through the store's cursors is first ``EXPLAIN``-ed with the same
parameters, and the indexes its plan names are recorded. The hot path's own statements
(``claim_guard``, ``claim_operations``, ``finish_runs``; pipelined, so not seen here) are
explained the same way at the end. Writes
``benchmarks/results/explain-indexes-postgres.md``: per index, its size and the queries
whose plans use it; an index no query uses is flagged.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench_scale import (
    ADMIN,
    HERE,
    HOT_TABLES,
    claim_params,
    fresh_database,
    success,
)
from explain_hotpath import finish_params
from longops import EnqueueRequest, Longops
from longops.domain.clock import SystemClock
from longops.domain.filters import OperationFilter, SortKey
from longops.domain.operation import Category
from longops.domain.status import Status
from longops.store._sql import core
from longops.store.base import ClaimParams, RunResult
from longops.store.protocols.read_models import AttemptQuery
from longops.testing import active_session

USED: dict[str, set[str]] = defaultdict(set)
"""Index name -> the queries (store names) whose plans use it."""


def _indexes(plan: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(plan, dict):
        for key, value in plan.items():
            if key == "Index Name":
                found.add(str(value))
            else:
                found |= _indexes(value)
    elif isinstance(plan, list):
        for item in plan:
            found |= _indexes(item)
    return found


def explain(cur: Any, name: str, query: str, params: Any) -> None:
    if query.lstrip().upper().startswith(("SELECT SET_CONFIG", "SET ", "LISTEN", "NOTIFY")):
        return
    # Inside a transaction, a statement EXPLAIN refuses must not abort it.
    savepoint = not cur.connection.autocommit
    try:
        if savepoint:
            cur.execute("SAVEPOINT explain_indexes")
        cur.execute(f"EXPLAIN (FORMAT JSON) {query}", params)
        row = cur.fetchone()
        if savepoint:
            cur.execute("RELEASE SAVEPOINT explain_indexes")
    except psycopg.Error:
        if savepoint:
            cur.execute("ROLLBACK TO SAVEPOINT explain_indexes")
        return
    plan = row["QUERY PLAN"] if isinstance(row, dict) else row[0]
    for index in _indexes(plan if not isinstance(plan, str) else json.loads(plan)):
        USED[index].add(name)


def _built_name(query: str) -> str:
    """The name of a statement the store builds from a named template (a sorted list puts
    its sort's expressions in), by the template's opening."""
    from longops.store.queries import load_queries

    for name in ("list_operations_sorted",):
        if query[:40] == load_queries("postgres")[name][:40]:
            return name
    return "(unnamed)"


def watch() -> Callable[[], None]:
    """Explain every statement a TimedCursor sends, before it runs."""
    original = core.TimedCursor._timed

    def timed(self: Any, run: Any, query: Any, args: Any, kwargs: Any) -> Any:
        if isinstance(query, str) and args and run.__name__ == "execute":
            name = self._names.get(query) or _built_name(query)
            explain(self._cur, name, query, args[0])
        return original(self, run, query, args, kwargs)

    core.TimedCursor._timed = timed  # type: ignore[method-assign]

    def undo() -> None:
        core.TimedCursor._timed = original  # type: ignore[method-assign]

    return undo


def fill(app: Longops, ready: int, drained: int) -> Any:
    clock = SystemClock()
    app.add_company("B")
    app.store.upsert_category(Category("default", "CAT", "a category", 2))
    requests = [
        EnqueueRequest(
            task=f"noop{i % 20}",
            earliest_start_at=clock.now() + timedelta(hours=1) if i % 5 == 0 else None,
            company="B" if i % 10 == 0 else "default",
            category="CAT" if i % 97 == 1 and i % 10 else None,
            user="alice" if i % 13 == 0 else None,
            expires_at=clock.now() + timedelta(days=1) if i % 101 == 0 else None,
        )
        for i in range(ready)
    ]
    for low in range(0, ready, 5000):
        app.enqueue_many(requests[low : low + 5000])
    session = active_session(clock.now(), ("default",), concurrency=8)
    app.store.register_session(session)
    done: tuple[RunResult, ...] = ()
    n = 0
    while n < drained:
        runs = app.store.claim(
            ClaimParams(session.id, ("default",), 16, clock.now(), finished=done)
        )
        done = tuple(success(r, clock.now()) for r in runs)
        n += len(runs)
    app.store.finish_runs(done[1:])  # one left running
    return session


def calls(app: Longops, session: Any) -> list[tuple[str, Callable[[], object]]]:
    s = app.store
    now = datetime.now(UTC)
    f = OperationFilter
    last = s.last_entry_no()
    some = s.list_operations(f(company="default", limit=1))[0]
    return [
        ("list: company", lambda: s.list_operations(f(company="default", limit=20))),
        (
            "list: company, statuses",
            lambda: s.list_operations(
                f(company="default", statuses=(Status.FINISHED, Status.ERROR), limit=20)
            ),
        ),
        (
            "list: company, in process",
            lambda: s.list_operations(f(company="default", statuses=(Status.IN_PROCESS,))),
        ),
        ("list: task", lambda: s.list_operations(f(company="default", task="noop3", limit=20))),
        (
            "list: task, status",
            lambda: s.list_operations(
                f(company="default", task="noop3", statuses=(Status.FINISHED,), limit=20)
            ),
        ),
        (
            "list: category",
            lambda: s.list_operations(f(company="default", category="CAT", limit=20)),
        ),
        ("list: user", lambda: s.list_operations(f(company="default", user="alice", limit=20))),
        (
            "list: newest first, next page",
            lambda: s.list_operations(
                f(company="default", descending=True, before_entry_no=last - 100, limit=20)
            ),
        ),
        ("list: every company", lambda: s.list_operations(f(limit=20))),
        ("list: search", lambda: s.list_operations(f(company="default", text="noop1", limit=20))),
        *(
            (
                f"list: sort {key.value}",
                lambda k=key: s.list_operations(f(company="default", sort=k, limit=20)),
            )
            for key in SortKey
            if key is not SortKey.ENTRY_NO
        ),
        (
            "count_by_status: search",
            lambda: s.count_by_status(f(company="default", text="noop1"), 1000),
        ),
        ("count", lambda: s.count_operations("default")),
        (
            "count_capped",
            lambda: s.count_capped([f(company="default", statuses=(st,)) for st in Status], 1000),
        ),
        ("list_running", lambda: s.list_running("default", limit=50)),
        ("category_activity", lambda: s.category_activity("default", 100)),
        ("list_company_attempts", lambda: s.list_company_attempts(AttemptQuery("default"))),
        ("get_operation", lambda: s.get_operation(some.id)),
        ("get_operation_by_entry_no", lambda: s.get_operation_by_entry_no(some.entry_no)),
        ("list_attempts", lambda: s.list_attempts(some.id)),
        ("list_events", lambda: s.list_events(some.id)),
        ("last_entry_no", s.last_entry_no),
        ("session_runs", lambda: s.session_runs(session.id)),
        ("orphaned_runs", s.orphaned_runs),
        ("next_due_at", lambda: s.next_due_at(("default",))),
        ("expire_operations", lambda: s.expire_operations(now)),
        ("flag_stalled", lambda: s.flag_stalled(now)),
        ("prune", lambda: s.prune(now - timedelta(days=30))),
        ("wait_context", lambda: s.wait_context(now)),
        ("recent_durations", lambda: s.recent_durations("noop3")),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ready", type=int, default=20_000)
    parser.add_argument("--drained", type=int, default=2_000)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    failed: list[str] = []
    with fresh_database("postgres", "indexes", ADMIN, prefix="explain") as url:
        app = Longops(url)
        for t in range(20):
            app.task(name=f"noop{t}")(lambda: None)
        app.migrate()
        session = fill(app, args.ready, args.drained)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")
        undo = watch()
        try:
            for name, call in calls(app, session):
                try:
                    call()
                except Exception as exc:  # a call the fill cannot serve: say so, go on
                    failed.append(f"{name}: {type(exc).__name__}: {exc}")
        finally:
            undo()
        hot_path(app, url, session)
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT t.relname, i.relname, pg_relation_size(i.oid), "
                "pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                "JOIN pg_class t ON t.oid = x.indrelid WHERE t.relname = ANY(%s) "
                "ORDER BY t.relname, i.relname",
                [list(HOT_TABLES)],
            ).fetchall()
        app.close()
    lines = [
        "# Which query uses each index of the hot tables (PostgreSQL)",
        "",
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}; load average "
        f"{[round(x, 2) for x in os.getloadavg()]}",
        f"- {args.ready:,} ready operations (2 companies, 20 tasks, a fifth due in an hour, "
        f"1 % in a category, 8 % of a user, 1 % expiring), {args.drained:,} run through "
        "claim and finish, then `ANALYZE`; each "
        "statement of the store's reads and sweeps `EXPLAIN`-ed with its own parameters "
        "(custom plans); the hot path's statements under `force_generic_plan`, as workers "
        "run them",
        "- produced by `benchmarks/explain_indexes.py`",
        "",
        "| table | index | size | used by | definition |",
        "|---|---|---|---|---|",
    ]
    unused = []
    for table, index, size, definition in rows:
        users = sorted(USED.get(index, ()))
        if not users:
            unused.append(index)
        used = ", ".join(f"`{u}`" for u in users) or "**no query seen**"
        where = definition.split(" USING ", 1)[1] if " USING " in definition else definition
        lines.append(f"| {table} | {index} | {size / 1024:,.0f} kB | {used} | `{where}` |")
    lines += ["", f"Indexes no query used here: {', '.join(unused) or 'none'}.", ""]
    if failed:
        lines += ["Calls that failed (not explained):", "", *(f"- {f}" for f in failed), ""]
    out = args.out / "explain-indexes-postgres.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


def hot_path(app: Longops, url: str, session: Any) -> None:
    """The pipelined statements, explained under the generic plan workers use."""
    q = app.store.q
    params = claim_params(session.id, 16, datetime.now(UTC))
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SET plan_cache_mode = force_generic_plan")
        for name in ("claim_guard", "claim_operations", "next_due_at"):
            explain(cur, name, q[name], params)
        rows = cur.execute(
            "SELECT id, lease_token, run_count FROM longops_operations "
            "WHERE status = 'in_process' LIMIT 1"
        ).fetchall()
        finish = finish_params(rows, datetime.now(UTC))
        explain(cur, "finish_runs", q["finish_runs"], finish)
        explain(cur, "notify_finished", q["notify_finished"], {"ids": finish["ids"]})
        conn.rollback()


if __name__ == "__main__":
    sys.exit(main())
