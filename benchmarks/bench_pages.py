"""Server time of the Job Queue Entries page with 1,000,000 operations in PostgreSQL.

Run from the project root::

    .venv/bin/python benchmarks/bench_pages.py            # 1,000,000 operations, 50 requests each
    .venv/bin/python benchmarks/bench_pages.py --quick    # 20,000 operations, 10 requests each

It creates a database ``bench_pages_<pid>`` (dropped at the end, also on failure), migrates
it, seeds the operations in one ``INSERT ... SELECT generate_series`` (a realistic spread of
companies, statuses, tasks, categories, users and priorities; see ``SEED_SQL``), runs
``VACUUM (ANALYZE)`` (as autovacuum would soon after such a load) and then requests the
page in-process (the same ASGI application ``longops serve`` runs, through
``httpx.ASGITransport``: no sockets, so the time is the server's),
signed in through the login form as an admin of the largest company. Scenarios:

- ``first_page``: ``/c/CRONUS/entries`` (no filter);
- ``filtered``: ``/c/CRONUS/entries?task=bench.render_report&status=error`` (task + status);
- ``next_page``: the page after the filtered one (its keyset ``after`` link), when the page
  has one;
- ``text``: ``/c/CRONUS/entries?q=batch 4711`` (substring search: a sequential scan by nature).

Each scenario: 3 warm-up requests, then ``--requests`` (default 50) timed ones, p50/p95/max.
Then one more request with every SQL statement it makes timed, and ``EXPLAIN (ANALYZE,
BUFFERS)`` of the slowest, saved to ``results/explain-pages-<scenario>.txt``.

Issue 17 (search and sort) adds, from the same seed: ``sorted`` (by Ended, latest first),
``sorted_user`` (by User, A to Z), ``sorted_next`` (the page after ``sorted``: its keyset
cursor), ``entry_no`` (``q=`` an entry number of the company), ``id_prefix`` (``q=`` the
first 8 hex digits of an id), ``error_text`` (``q=`` words of the last error, which 5 % of
the operations share: a broad search).

Outputs ``results/pages.json`` and ``results/pages.md`` (``--quick``: ``pages.quick.*``;
``--tag T``: ``pages.T.*`` and ``explain-pages-T-<scenario>.txt``). Nothing is asserted
about speed; the run fails (exit 2) when a page does not answer 200 or shows no rows.

``--database NAME`` keeps the seeded database between runs (seeding 1,000,000 rows takes
minutes): a database of that name already seeded is migrated (new migrations only) and
reused, else it is made and seeded; it is never dropped. ``--scenarios a,b`` runs only
those.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import (
    DEFAULT_PG_ADMIN_URL,
    RESULTS,
    fmt,
    machine_info,
    percentile,
    pg_url_for,
)
from longops import Longops
from longops.domain.security import PermissionSet

COMPANY = "CRONUS"
USER = "bench-admin"
PASSWORD = "bench password 1"  # noqa: S105 - a benchmark user's password
TASKS = (
    "bench.post_invoices",
    "bench.sync_catalogue",
    "bench.render_report",
    "bench.export_ledger",
    "bench.import_items",
    "bench.send_reminders",
    "bench.clean_up",
    "bench.recalculate_costs",
)
SCENARIOS = {
    "first_page": "/c/CRONUS/entries",
    "filtered": "/c/CRONUS/entries?task=bench.render_report&status=error",
    "text": "/c/CRONUS/entries?q=batch%204711",
    "sorted": "/c/CRONUS/entries?sort=ended&dir=desc",
    "sorted_user": "/c/CRONUS/entries?status=error&sort=user&dir=asc",
    "entry_no": "/c/CRONUS/entries?q={entry_no}",
    "id_prefix": "/c/CRONUS/entries?q={id_prefix}",
    "error_text": "/c/CRONUS/entries?q=does%20not%20balance",
}
ORDER = (
    "first_page",
    "filtered",
    "next_page",
    "text",
    "sorted",
    "sorted_next",
    "sorted_user",
    "entry_no",
    "id_prefix",
    "error_text",
)
WARMUP = 3

# One statement: per row a few random numbers drive company (70/20/10 %), status (80 %
# finished, 5 % error, 3 % cancelled, 8 % ready, 3.8 % on hold, 0.2 % in process), task
# (skewed: the first tasks are the most common), category (by task), user (50 users,
# skewed), priority; created over the last 30 days in entry order, as a real queue fills.
SEED_SQL = """
INSERT INTO longops_operations (
    id, company, task, args, description, queue, category, priority, status,
    earliest_start_at, max_attempts, attempt_count, run_count, user_name,
    created_at, updated_at, ready_at, started_at, ended_at, last_error,
    lease_token, session_id, labels)
SELECT
    gen_random_uuid(), s.company, s.task, '{"args": [], "kwargs": {}}',
    initcap(replace(split_part(s.task, '.', 2), '_', ' ')) || ' batch ' || s.g,
    'default',
    CASE WHEN s.task = 'bench.post_invoices' THEN 'POSTING'
         WHEN s.task = 'bench.export_ledger' THEN 'EXPORT' END,
    (ARRAY[1000, 2000, 2000, 2000, 3000])[1 + floor(s.r5 * 5)::int],
    s.status,
    s.created, 3,
    CASE s.status WHEN 'error' THEN 3 WHEN 'ready' THEN 0 WHEN 'on_hold' THEN 0 ELSE 1 END,
    CASE s.status WHEN 'ready' THEN 0 WHEN 'on_hold' THEN 0 ELSE 1 END,
    'user' || lpad((1 + floor(s.r4 * s.r4 * 50))::int::text, 2, '0'),
    s.created, s.created + interval '2 seconds',
    CASE WHEN s.status <> 'on_hold' THEN s.created END,
    CASE WHEN s.status IN ('finished', 'error', 'in_process')
         THEN s.created + interval '1 second' END,
    CASE WHEN s.status IN ('finished', 'error', 'cancelled')
         THEN s.created + make_interval(secs => 1 + s.r5 * 120) END,
    CASE WHEN s.status = 'error' THEN 'RuntimeError: the ledger does not balance' END,
    CASE WHEN s.status = 'in_process' THEN gen_random_uuid() END,
    CASE WHEN s.status = 'in_process' THEN %(session)s::uuid END,
    '{}'
FROM (
    SELECT r.g, r.r4, r.r5, r.created,
        CASE WHEN r.r2 < 0.7 THEN 'CRONUS' WHEN r.r2 < 0.9 THEN 'FABRIKAM' ELSE 'CONTOSO' END
            AS company,
        CASE WHEN r.r1 < 0.80 THEN 'finished' WHEN r.r1 < 0.85 THEN 'error'
             WHEN r.r1 < 0.88 THEN 'cancelled' WHEN r.r1 < 0.96 THEN 'ready'
             WHEN r.r1 < 0.998 THEN 'on_hold' ELSE 'in_process' END AS status,
        (%(tasks)s::text[])[1 + floor(r.r3 * r.r3 * 8)::int] AS task
    FROM (
        SELECT g, random() AS r1, random() AS r2, random() AS r3, random() AS r4,
               random() AS r5,
               now() - interval '30 days' * (1 - g::float8 / %(rows)s) AS created
        FROM generate_series(1, %(rows)s) AS g
    ) AS r
) AS s
ORDER BY s.g
"""


class InvalidRunError(RuntimeError):
    """A page did not answer as it must: the figures would mean nothing."""


@dataclass
class Recorded:
    sql: str
    params: Any
    seconds: float


@dataclass
class Recorder:
    """Times every statement the store runs while ``on`` (in this process: in-process ASGI)."""

    on: bool = False
    statements: list[Recorded] = field(default_factory=list)


class _TimedCursor:
    def __init__(self, cur: Any, recorder: Recorder) -> None:
        self._cur = cur
        self._recorder = recorder

    def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:
        started = time.perf_counter()
        try:
            return self._cur.execute(query, params, **kw)
        finally:
            if self._recorder.on:
                text = query if isinstance(query, str) else str(query)
                self._recorder.statements.append(
                    Recorded(text, params, time.perf_counter() - started)
                )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cur)


def instrument(store: Any, recorder: Recorder) -> None:
    """Wrap the store's read and write cursors so that statements can be timed, and its
    pipelined reads (``_reads``: several statements, one round trip), each statement of a
    batch recorded with the batch's time shared out evenly."""
    for name in ("_read", "_tx"):
        original = getattr(store, name)

        @contextlib.contextmanager
        def wrapped(*a: Any, _original: Any = original, **kw: Any) -> Iterator[Any]:
            with _original(*a, **kw) as cur:
                yield _TimedCursor(cur, recorder)

        setattr(store, name, wrapped)
    batched = store._reads

    def reads(statements: Any) -> Any:
        started = time.perf_counter()
        on, recorder.on = recorder.on, False  # the batch's own cursor is not recorded twice
        try:
            return batched(statements)
        finally:
            recorder.on = on
            if on and statements:
                share = (time.perf_counter() - started) / len(statements)
                for query, params in statements:
                    recorder.statements.append(Recorded(store.q[query], params, share))

    store._reads = reads


def seed(url: str, rows: int) -> dict[str, Any]:
    lib = Longops(url)
    lib.migrate()
    for name in ("CRONUS", "FABRIKAM", "CONTOSO"):
        lib.add_company(name)
        lib.set_category("POSTING", description="Invoice posting", company=name)
        lib.set_category("EXPORT", max_concurrent=3, description="Exports", company=name)
    lib.security.add_user(USER, password=PASSWORD, grants=[(COMPANY, PermissionSet.ADMIN)])
    lib.close()
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        session = conn.execute("SELECT gen_random_uuid()").fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO longops_sessions (id, host, pid, queues, concurrency, state,"
            " started_at, last_heartbeat_at) VALUES (%s, 'bench-host', 1, '{default}', 8,"
            " 'active', now(), now())",
            (session,),
        )
        conn.execute(
            "INSERT INTO longops_users (name, display_name, state, is_super, created_at,"
            " updated_at) SELECT 'user' || lpad(i::text, 2, '0'), 'User ' || i, 'active',"
            " false, now(), now() FROM generate_series(1, 50) AS i"
        )
        conn.execute(
            "INSERT INTO longops_memberships (user_name, company, permission_set, granted_at)"
            " SELECT 'user' || lpad(i::text, 2, '0'), c, 'JOBQUEUE-USER', now()"
            " FROM generate_series(1, 50) AS i, unnest(ARRAY['CRONUS','FABRIKAM','CONTOSO']) c"
        )
        conn.execute("SELECT setseed(0.42)")
        conn.execute(SEED_SQL, {"rows": rows, "tasks": list(TASKS), "session": session})
        conn.commit()
    inserted = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as conn:
        # VACUUM as well: autovacuum does it to a real table minutes after such a load
        # (inserts trigger it), and the runs would otherwise depend on whether it has
        # reached the table yet (an index-only scan reads the heap until it has).
        conn.execute("VACUUM (ANALYZE) longops_operations")
        conn.execute("ANALYZE")
        spread = conn.execute(
            "SELECT company, status, count(*) FROM longops_operations GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        size = conn.execute(
            "SELECT pg_size_pretty(pg_total_relation_size('longops_operations'))"
        ).fetchone()
    return {
        "rows": rows,
        "insert_s": round(inserted, 2),
        "rows_per_s": round(rows / inserted),
        "table_size": size[0] if size else None,
        "spread": [{"company": c, "status": s, "n": n} for c, s, n in spread],
    }


def _seeded(admin_url: str, url: str, name: str) -> bool:
    """Does database ``name`` exist with the benchmark's user in it (a finished seed)?"""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            return False
    try:
        with psycopg.connect(url) as conn:
            done = conn.execute("SELECT 1 FROM longops_users WHERE name = 'user50'").fetchone()
    except psycopg.Error:
        return False
    return done is not None


def _reused(url: str) -> dict[str, Any]:
    """A seeded database brought to this code's schema (its new migrations only)."""
    started = time.perf_counter()
    lib = Longops(url)
    # The seed's worker session looks live: a migration that is not online asks for
    # maintenance mode (nothing runs here; it only lets the migration through).
    lib.maintenance.start(reason="bench_pages: new migrations on a reused database")
    try:
        lib.migrate()
    finally:
        lib.maintenance.stop()
        lib.close()
    migrated = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE longops_operations")
        n = conn.execute("SELECT count(*) FROM longops_operations").fetchone()
        size = conn.execute(
            "SELECT pg_size_pretty(pg_total_relation_size('longops_operations'))"
        ).fetchone()
    return {
        "rows": n[0] if n else 0,
        "insert_s": 0.0,
        "rows_per_s": 0,
        "migrate_s": round(migrated, 2),
        "reused": True,
        "table_size": size[0] if size else None,
        "spread": [],
    }


def asgi_app(lib: Longops) -> Any:
    """The application ``longops serve`` runs (REST API and pages)."""
    from longops.cli.serve import Server

    return Server(lib)


@contextlib.asynccontextmanager
async def running(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    # The API half runs the lifespan (it starts and stops the event hub).
    async with app.api.router.lifespan_context(app.api):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.local") as c:
            yield c


CSRF = re.compile(r'name="csrf_token"\s+value="([^"]+)"|value="([^"]+)"\s+name="csrf_token"')


async def sign_in(client: httpx.AsyncClient) -> None:
    page = await client.get("/login")
    match = CSRF.search(page.text)
    if page.status_code != 200 or match is None:
        raise InvalidRunError(f"/login answered {page.status_code} without a csrf_token")
    token = match.group(1) or match.group(2)
    done = await client.post(
        "/login", data={"username": USER, "password": PASSWORD, "csrf_token": token}
    )
    if done.status_code not in (302, 303) or "longops_session" not in client.cookies:
        raise InvalidRunError(f"sign-in answered {done.status_code}: {done.text[:300]}")


ROW = re.compile(r'<tr[^>]*data-operation-id="')
NEXT = re.compile(r'href="([^"]*[?&](?:amp;)?after=[^"]+)"')


async def measure(
    client: httpx.AsyncClient, path: str, requests: int, *, need_rows: bool = True
) -> dict[str, Any]:
    times = []
    body = ""
    for i in range(WARMUP + requests):
        started = time.perf_counter()
        response = await client.get(path)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise InvalidRunError(f"GET {path} answered {response.status_code}")
        body = response.text
        if i >= WARMUP:
            times.append(elapsed * 1000)
    rows = len(ROW.findall(body))
    if rows == 0 and need_rows:
        raise InvalidRunError(f"GET {path} showed no operations")
    return {
        "path": path,
        "requests": requests,
        "rows_on_page": rows,
        "bytes": len(body.encode()),
        "p50_ms": round(percentile(times, 50), 2),
        "p95_ms": round(percentile(times, 95), 2),
        "min_ms": round(min(times), 2),
        "max_ms": round(max(times), 2),
        "next": (m.group(1).replace("&amp;", "&") if (m := NEXT.search(body)) else None),
    }


def _one_line(sql: str) -> str:
    code = (line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return " ".join(" ".join(code).split())


async def breakdown(
    client: httpx.AsyncClient, path: str, recorder: Recorder, url: str
) -> dict[str, Any]:
    recorder.statements.clear()
    recorder.on = True
    started = time.perf_counter()
    try:
        await client.get(path)
    finally:
        recorder.on = False
    total = (time.perf_counter() - started) * 1000
    statements = sorted(recorder.statements, key=lambda r: r.seconds, reverse=True)
    top = statements[0] if statements else None
    plan = None
    code = (
        ""
        if top is None
        else "\n".join(line for line in top.sql.splitlines() if not line.lstrip().startswith("--"))
    )
    if top is not None and code.lstrip().upper().startswith(("SELECT", "WITH")):
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "EXPLAIN (ANALYZE, BUFFERS) " + top.sql,  # type: ignore[arg-type]
                top.params,
            ).fetchall()
            plan = "\n".join(r[0] for r in rows)
    return {
        "request_ms": round(total, 2),
        "statements": len(statements),
        "sql_ms": round(sum(s.seconds for s in statements) * 1000, 2),
        "slowest": [
            {"ms": round(s.seconds * 1000, 2), "sql": _one_line(s.sql)[:300]}
            for s in statements[:5]
        ],
        "plan": plan,
        "plan_params": None if top is None else repr(top.params)[:2000],
    }


def sample(url: str) -> dict[str, str]:
    """An entry number and an id prefix of the company's operations (from the middle of
    the table, the same ones on every run of a seeded database)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT entry_no, id FROM longops_operations WHERE company = %s"
            " ORDER BY entry_no OFFSET (SELECT count(*) / 2 FROM longops_operations"
            " WHERE company = %s) LIMIT 1",
            (COMPANY, COMPANY),
        ).fetchone()
    if row is None:
        raise InvalidRunError("no operations to search for")
    return {"entry_no": str(row[0]), "id_prefix": str(row[1])[:8]}


async def run_pages(
    url: str,
    requests: int,
    out: Path,
    suffix: str,
    only: set[str] | None = None,
    allow_empty: bool = False,
) -> dict[str, Any]:
    lib = Longops(url)
    recorder = Recorder()
    instrument(lib.store, recorder)
    results: dict[str, Any] = {}
    found = sample(url)
    try:
        app = asgi_app(lib)
        async with running(app) as client:
            await sign_in(client)
            scenarios = {k: v.format(**found) for k, v in SCENARIOS.items()}
            for name in ORDER:
                path = scenarios.get(name)
                if path is None or (only and name not in only):
                    continue
                # A text search may rightly find nothing in a small (--quick) table.
                figures = await measure(
                    client, path, requests, need_rows=name != "text" and not allow_empty
                )
                figures["queries"] = await breakdown(client, path, recorder, url)
                plan = figures["queries"].pop("plan")
                if plan:
                    explain = (
                        f"explain-pages-{suffix[1:]}-{name}.txt"
                        if suffix and suffix != ".quick"
                        else f"explain-pages-{name}{suffix}.txt"
                    )
                    (out / explain).write_text(
                        f"-- GET {path}: the slowest statement of the request\n"
                        f"-- {figures['queries']['slowest'][0]['sql']}\n"
                        f"-- params: {figures['queries']['plan_params']}\n\n{plan}\n"
                    )
                results[name] = figures
                print(
                    f"[pages] {name:10} {path}: p50 {figures['p50_ms']} ms, "
                    f"p95 {figures['p95_ms']} ms ({figures['rows_on_page']} rows, "
                    f"{figures['queries']['statements']} statements)",
                    flush=True,
                )
                following = {"filtered": "next_page", "sorted": "sorted_next"}.get(name)
                if following and figures["next"]:
                    # The link is relative to the page (often just "?...&after=N").
                    target = urlsplit(urljoin("http://bench.local" + path, figures["next"]))
                    scenarios[following] = f"{target.path}?{target.query}"
    finally:
        lib.close()
    return results


def write_markdown(path: Path, doc: dict[str, Any]) -> None:
    m = doc["machine"]
    s = doc["seed"]
    seeded = (
        f"- {s['rows']:,} operations ({s['table_size']}), seeded in {s['insert_s']} s "
        f"({s['rows_per_s']:,} rows/s) by one INSERT ... SELECT generate_series, then ANALYZE"
    )
    if s.get("reused"):
        seeded = (
            f"- {s['rows']:,} operations ({s['table_size']}), a database seeded by an earlier "
            f"run and reused (its new migrations applied in {s['migrate_s']} s), then ANALYZE"
        )
    lines = [
        "# Job Queue Entries page: server time with many operations (PostgreSQL)",
        "",
        seeded,
        f"- machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['postgresql']}, Python "
        f"{m['python']}; load average {m['loadavg_at_start']} at start, "
        f"{doc['loadavg_at_end']} at end; {m['date']}",
        f"- source: {m['source']}",
        "- in-process ASGI (httpx.ASGITransport, no sockets), signed in as an admin of "
        f"{COMPANY}; {WARMUP} warm-up requests, then {doc['requests']} timed, one after another",
        "",
        "| page | path | rows shown | p50 (ms) | p95 (ms) | max (ms) | SQL statements | "
        "SQL time (ms) | slowest statement (ms) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in doc["results"].items():
        q = r["queries"]
        slowest = q["slowest"][0]["ms"] if q["slowest"] else 0
        lines.append(
            f"| {name} | `{r['path']}` | {r['rows_on_page']} | {fmt(r['p50_ms'])} | "
            f"{fmt(r['p95_ms'])} | {fmt(r['max_ms'])} | {q['statements']} | "
            f"{fmt(q['sql_ms'])} | {fmt(slowest)} |"
        )
    lines += [
        "",
        "The SQL columns come from one extra request per page with every statement timed; "
        "`explain-pages-<page>.txt` holds `EXPLAIN (ANALYZE, BUFFERS)` of its slowest one.",
        "",
        "Slowest statements per page:",
        "",
    ]
    for name, r in doc["results"].items():
        lines.append(f"- **{name}**:")
        for st in r["queries"]["slowest"][:3]:
            lines.append(f"  - {fmt(st['ms'])} ms: `{st['sql'][:200]}`")
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 operations, 10 requests")
    parser.add_argument("--rows", type=int, default=None, help="operations to seed")
    parser.add_argument("--requests", type=int, default=None, help="timed requests per page")
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get("LONGOPS_BENCH_PG_URL", DEFAULT_PG_ADMIN_URL),
        help="a PostgreSQL URL allowed to CREATE/DROP DATABASE (default %(default)s)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    parser.add_argument("--tag", default=None, help="results as pages.TAG.* (default: pages.*)")
    parser.add_argument("--database", default=None, help="keep and reuse this database")
    parser.add_argument("--scenarios", default=None, help="only these pages (comma-separated)")
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="a page may show no rows (code before the search by entry number and id)",
    )
    args = parser.parse_args(argv)
    rows = args.rows or (20_000 if args.quick else 1_000_000)
    requests = args.requests or (10 if args.quick else 50)
    suffix = f".{args.tag}" if args.tag else (".quick" if args.quick else "")
    only = set(args.scenarios.split(",")) if args.scenarios else None
    args.out.mkdir(parents=True, exist_ok=True)
    machine = machine_info(args.pg_admin_url)
    name = args.database or f"bench_pages_{os.getpid()}"
    url = pg_url_for(args.pg_admin_url, name)
    print(f"longops pages benchmark: {rows:,} operations; {requests} requests per page", flush=True)
    reuse = args.database is not None and _seeded(args.pg_admin_url, url, name)
    if not reuse:
        with psycopg.connect(args.pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        if reuse:
            seeded = _reused(url)
            print(f"[pages] reusing {name}: {seeded['rows']:,} operations ({seeded['table_size']})")
        else:
            seeded = seed(url, rows)
            print(f"[pages] seeded {rows:,} in {seeded['insert_s']} s ({seeded['table_size']})")
        results = asyncio.run(run_pages(url, requests, args.out, suffix, only, args.allow_empty))
    except InvalidRunError as exc:
        print(f"invalid run: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.database is None:
            with psycopg.connect(args.pg_admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    doc = {
        "quick": args.quick,
        "requests": requests,
        "seed": seeded,
        "machine": machine,
        "results": results,
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    (args.out / f"pages{suffix}.json").write_text(json.dumps(doc, indent=2))
    write_markdown(args.out / f"pages{suffix}.md", doc)
    print(f"[pages] wrote {args.out / f'pages{suffix}.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
