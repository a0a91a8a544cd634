"""Claim cost behind a large table: does history or a deep backlog slow the hot path?

Run from the project root (the heavy part under the shared lock)::

    flock /work/wt/bench.lock .venv/bin/python benchmarks/bench_scale.py \\
        [--dialect postgres sqlite] [--ready 1000000] [--finished 10000000] [--quick]

For each size (first the baseline: only the ``--base-ready`` operations the claims take, no
history; then ``--ready`` ready and ``--finished`` finished operations) a fresh database is
made with the project's migrations and filled with server-side SQL: finished operations
each with their attempt row and their two timeline events (``attempt_started``,
``attempt_ended``), as real finished operations have, spread over the last 29 days (inside
the pruner's default 30-day retention: the worst case it allows). The secondary indexes
are dropped for the load and created again from their own definitions (so they are the
migrations' indexes, freshly built), then the tables are vacuumed and analysed.

Then, through longops's own store API (``Store.claim`` / ``Store.finish_runs``, the calls
the worker makes), ``--claims`` claims of a batch of 1 and of 16 are timed, each claimed run
finished at once so the ready set does not drain; and ``--samples`` one-by-one enqueues
(``Longops.enqueue``) and finishes of one run. The ratio of each figure to the baseline's
is the result. On PostgreSQL ``EXPLAIN (ANALYZE, BUFFERS)`` of the claim (generic plan, as a
worker runs it) at both sizes goes to ``results/explain-claim-scale-postgres.txt``.

Writes ``results/scale.md`` and ``results/scale.json`` (``scale.quick.*`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from longops import Longops
from longops.domain.clock import SystemClock
from longops.domain.operation import Outcome, Status
from longops.store.base import ClaimedRun, ClaimParams, RunResult, Store
from longops.testing import active_session

HERE = Path(__file__).resolve().parent
ADMIN = os.environ.get("LONGOPS_BENCH_PG_URL", "postgresql://root@127.0.0.1:5432/postgres")
HOT_TABLES = ("longops_operations", "longops_attempts", "longops_operation_events")
HISTORY_DAYS = 29
BATCHES = (1, 16)
WARMUP = 20  # claims not timed: the prepared statement's first runs and a cold cache
FLAT = 1.5  # the bound: claim cost at size within 1.5x of the baseline's


@dataclass(frozen=True, slots=True)
class Size:
    label: str
    ready: int
    finished: int


def percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(samples_s: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "p50_ms": round(percentile(ms, 50), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "mean_ms": round(sum(ms) / len(ms), 3),
        "n": len(ms),
    }


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def log(text: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {text}", file=sys.stderr, flush=True)


def success(run: ClaimedRun, at: datetime) -> RunResult:
    return RunResult(
        operation_id=run.operation.id,
        lease_token=run.lease_token,
        run_no=run.run_no,
        at=at,
        outcome=Outcome.SUCCESS,
        status=Status.FINISHED,
        started_at=at,
        clear_checkpoint=True,
    )


# -- fresh databases ---------------------------------------------------------------------------
@contextmanager
def fresh_database(
    dialect: str, tag: str, admin: str, prefix: str = "bench_scale"
) -> Iterator[str]:
    """A new, empty database for one size; dropped (its disk freed) afterwards."""
    if dialect == "postgres":
        name = f"{prefix}_{tag}_{os.getpid()}"
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            c.execute(f"CREATE DATABASE {name}")
        try:
            yield admin.rsplit("/", 1)[0] + "/" + name
        finally:
            with psycopg.connect(admin, autocommit=True) as c:
                c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    else:
        folder = tempfile.mkdtemp(prefix=f"{prefix}_{tag}_")
        try:
            yield f"sqlite:///{folder}/longops.db"
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def pg_uuid7(t: str) -> str:
    """SQL for a UUIDv7-shaped id at timestamp expression ``t``: longops's ids are
    time-ordered (domain/ids.py), so history's keys sit left of new ones in every index
    on them; random ids would scatter each new key's B-tree page across all history."""
    return (
        f"(lpad(to_hex((extract(epoch FROM {t}) * 1000)::bigint), 12, '0') || '7'"
        " || substr(md5(random()::text), 1, 3) || '8'"
        " || substr(md5(random()::text), 1, 15))::uuid"
    )


def sqlite_uuid7(epoch: str) -> str:
    """SQLite's form of :func:`pg_uuid7` (32 hex digits, no dashes), from epoch seconds."""
    return (
        f"printf('%012x', CAST({epoch} * 1000 AS INTEGER)) || '7'"
        " || substr(lower(hex(randomblob(2))), 1, 3) || '8'"
        " || substr(lower(hex(randomblob(8))), 1, 15)"
    )


def template_columns(columns: Sequence[str]) -> list[str]:
    """Every column but the keys the load makes itself."""
    return [c for c in columns if c not in ("id", "entry_no")]


def finished_overrides(t: str) -> dict[str, str]:
    """A finished operation's columns, given the SQL expression ``t`` of its start."""
    return {
        "status": "'finished'",
        "attempt_count": "1",
        "run_count": "1",
        "created_at": t,
        "earliest_start_at": t,
        "ready_at": t,
        "started_at": t,
        "progress_moved_at": t,
    }


# -- PostgreSQL fill -----------------------------------------------------------------------------
def fill_postgres(url: str, template_id: str, size: Size) -> dict[str, float]:
    took: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as c:
        # Session settings for the load only: no RI triggers (the rows are valid by
        # construction), a bigger sort budget for the index builds, no WAL flush waits.
        c.execute("SET session_replication_role = replica")
        c.execute("SET maintenance_work_mem = '256MB'")
        c.execute("SET synchronous_commit = off")
        tables = list(HOT_TABLES)
        indexes = c.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i"
            " WHERE i.tablename = ANY(%s) AND NOT EXISTS ("
            "   SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexname::regclass)",
            (tables,),
        ).fetchall()
        constraints = c.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
            " FROM pg_constraint WHERE contype IN ('p', 'u')"
            " AND conrelid::regclass::text = ANY(%s)",
            (tables,),
        ).fetchall()
        for name, _ in indexes:
            c.execute(f"DROP INDEX {name}")
        for table, name, _ in constraints:
            c.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        cols = [
            r[0]
            for r in c.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'longops_operations' AND is_generated = 'NEVER'"
                " AND identity_generation IS NULL ORDER BY ordinal_position"
            ).fetchall()
        ]
        cols = template_columns(cols)
        began = time.perf_counter()
        if size.finished:
            t = "s.t"
            over = {
                **finished_overrides(t),
                "updated_at": f"{t} + interval '1 second'",
                "ended_at": f"{t} + interval '1 second'",
            }
            select = ", ".join(over.get(col, f"tpl.{col}") for col in cols)
            c.execute(
                f"INSERT INTO longops_operations (id, {', '.join(cols)})"
                f" SELECT {pg_uuid7('s.t')}, {select} FROM longops_operations tpl"
                " CROSS JOIN (SELECT now() - %(span)s::interval"
                "   + g * (%(span)s::interval / %(n)s) AS t"
                "   FROM generate_series(1, %(n)s) g) s"
                " WHERE tpl.id = %(tpl)s ORDER BY s.t",
                {"n": size.finished, "span": f"{HISTORY_DAYS} days", "tpl": template_id},
            )
            c.execute(
                "INSERT INTO longops_attempts (operation_id, company, run_no, attempt, task,"
                " started_at, ended_at, outcome)"
                " SELECT id, company, 1, 1, task, started_at, ended_at, 'success'"
                " FROM longops_operations WHERE status = 'finished' ORDER BY entry_no"
            )
            c.execute(
                "INSERT INTO longops_operation_events (operation_id, company, at, type,"
                " run_no, data)"
                " SELECT o.id, o.company, CASE WHEN k = 1 THEN o.started_at ELSE o.ended_at END,"
                " CASE WHEN k = 1 THEN 'attempt_started' ELSE 'attempt_ended' END, 1,"
                " CASE WHEN k = 1 THEN '{\"attempt\": 1}'::json"
                ' ELSE \'{"outcome": "success", "status": "finished"}\'::json END'
                " FROM longops_operations o CROSS JOIN generate_series(1, 2) k"
                " WHERE o.status = 'finished' ORDER BY o.entry_no, k"
            )
        took["history_s"] = time.perf_counter() - began
        began = time.perf_counter()
        if size.ready > 1:
            select = ", ".join(f"tpl.{col}" for col in cols)
            c.execute(
                f"INSERT INTO longops_operations (id, {', '.join(cols)})"
                f" SELECT {pg_uuid7('s.t')}, {select} FROM longops_operations tpl"
                " CROSS JOIN (SELECT now() - interval '1 hour' + g * (interval '1 hour' / %(n)s)"
                "   AS t FROM generate_series(2, %(n)s) g) s WHERE tpl.id = %(tpl)s",
                {"n": size.ready, "tpl": template_id},
            )
        took["ready_s"] = time.perf_counter() - began
        began = time.perf_counter()
        for table, name, definition in constraints:
            c.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
        for _, definition in indexes:
            c.execute(definition)
        took["indexes_s"] = time.perf_counter() - began
        began = time.perf_counter()
        for table in (*HOT_TABLES, "longops_notifications"):
            c.execute(f"VACUUM (ANALYZE) {table}")
        took["vacuum_analyze_s"] = time.perf_counter() - began
    return took


# -- SQLite fill ---------------------------------------------------------------------------------
def fill_sqlite(url: str, template_id: str, size: Size) -> dict[str, float]:
    took: dict[str, float] = {}
    path = url.removeprefix("sqlite:///")
    c = sqlite3.connect(path, isolation_level=None)
    try:
        c.execute("PRAGMA foreign_keys = OFF")
        c.execute("PRAGMA synchronous = OFF")
        indexes = c.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            f" AND tbl_name IN ({', '.join('?' for _ in HOT_TABLES)})",
            HOT_TABLES,
        ).fetchall()
        for name, _ in indexes:
            c.execute(f"DROP INDEX {name}")
        cols = template_columns(
            [r[1] for r in c.execute("PRAGMA table_info(longops_operations)").fetchall()]
        )
        ts = "strftime('%Y-%m-%d %H:%M:%S', {e}, 'unixepoch') || '.000000'"
        start = (datetime.now(UTC) - timedelta(days=HISTORY_DAYS)).timestamp()
        step = HISTORY_DAYS * 86400 / max(size.finished, 1)
        c.execute("BEGIN")
        began = time.perf_counter()
        if size.finished:
            t = ts.format(e="s.t")
            over = {
                **finished_overrides(t),
                "updated_at": ts.format(e="s.t + 1"),
                "ended_at": ts.format(e="s.t + 1"),
            }
            select = ", ".join(over.get(col, f"tpl.{col}") for col in cols)
            c.execute(
                "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < ?)"
                f" INSERT INTO longops_operations (id, {', '.join(cols)})"
                f" SELECT {sqlite_uuid7('s.t')}, {select} FROM longops_operations tpl"
                " CROSS JOIN (SELECT ? + i * ? AS t FROM g) s WHERE tpl.id = ?",
                (size.finished, start, step, template_id),
            )
            c.execute(
                "INSERT INTO longops_attempts (operation_id, company, run_no, attempt, task,"
                " started_at, ended_at, outcome)"
                " SELECT id, company, 1, 1, task, started_at, ended_at, 'success'"
                " FROM longops_operations WHERE status = 'finished' ORDER BY entry_no"
            )
            c.execute(
                "INSERT INTO longops_operation_events (operation_id, company, at, type,"
                " run_no, data)"
                " SELECT o.id, o.company, CASE WHEN k.k = 1 THEN o.started_at ELSE o.ended_at END,"
                " CASE WHEN k.k = 1 THEN 'attempt_started' ELSE 'attempt_ended' END, 1,"
                " CASE WHEN k.k = 1 THEN '{\"attempt\": 1}'"
                ' ELSE \'{"outcome": "success", "status": "finished"}\' END'
                " FROM longops_operations o CROSS JOIN (SELECT 1 AS k UNION ALL SELECT 2) k"
                " WHERE o.status = 'finished' ORDER BY o.entry_no, k.k"
            )
        took["history_s"] = time.perf_counter() - began
        began = time.perf_counter()
        if size.ready > 1:
            select = ", ".join(f"tpl.{col}" for col in cols)
            c.execute(
                "WITH RECURSIVE g(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM g WHERE i < ?)"
                f" INSERT INTO longops_operations (id, {', '.join(cols)})"
                f" SELECT {sqlite_uuid7('t.t')}, {select} FROM longops_operations tpl"
                " CROSS JOIN (SELECT ? + i * 0.001 AS t FROM g) t WHERE tpl.id = ?",
                (size.ready, time.time() - 3600, template_id),
            )
        took["ready_s"] = time.perf_counter() - began
        began = time.perf_counter()
        for _, definition in indexes:
            c.execute(definition)
        c.execute("COMMIT")
        took["indexes_s"] = time.perf_counter() - began
        began = time.perf_counter()
        c.execute("ANALYZE")
        took["vacuum_analyze_s"] = time.perf_counter() - began
    finally:
        c.close()
    return took


# -- measurement ---------------------------------------------------------------------------------
def claim_params(session_id: Any, limit: int, now: datetime) -> dict[str, Any]:
    """The claim's parameters as a worker of every queue and task sends them."""
    return {
        "session_id": session_id,
        "queues": ["default"],
        "limit": limit,
        "now": now,
        "companies": None,
        "tasks": None,  # any task (the claim's filter by the worker's tasks, off)
    }


def explain_claim(url: str, store: Store, session_id: Any, limit: int, variant: str) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of one claim (guard, then claim) under the generic plan,
    rolled back so the table is left as it was."""
    q = getattr(store, "q")  # noqa: B009 - the SQL stores' named queries
    params = claim_params(session_id, limit, datetime.now(UTC))
    lines: list[str] = []
    with psycopg.connect(url) as conn:
        conn.execute("SET plan_cache_mode = force_generic_plan")
        for name in ("claim_guard", "claim_operations"):
            plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {q[name]}", params).fetchall()
            lines += [f"### {name} (batch {limit}, {variant})", "", *(r[0] for r in plan), ""]
        conn.rollback()
    return lines


def measure(url: str, claims: int, samples: int) -> tuple[dict[str, Any], Store, Any, Longops]:
    app = Longops(url)
    app.task(name="noop")(lambda: None)
    store = app.store
    clock = SystemClock()
    session = active_session(clock.now(), ("default",), concurrency=16)
    store.register_session(session)
    out: dict[str, Any] = {}
    finish_one: list[float] = []
    for batch in BATCHES:
        times: list[float] = []
        for i in range(WARMUP + claims):
            began = time.perf_counter()
            runs = store.claim(ClaimParams(session.id, ("default",), batch, clock.now()))
            took = time.perf_counter() - began
            if len(runs) != batch:
                raise RuntimeError(f"claim of {batch} took {len(runs)}: the ready set ran out")
            began = time.perf_counter()
            store.finish_runs([success(r, clock.now()) for r in runs])
            if batch == 1 and i >= WARMUP:
                finish_one.append(time.perf_counter() - began)
            if i >= WARMUP:
                times.append(took)
        out[f"claim_{batch}"] = summary_ms(times)
    out["finish_1"] = summary_ms(finish_one)
    enqueue: list[float] = []
    for _ in range(samples):
        began = time.perf_counter()
        app.enqueue("noop")
        enqueue.append(time.perf_counter() - began)
    out["enqueue_1"] = summary_ms(enqueue)
    return out, store, session.id, app


def set_database_jit(url: str, value: str, admin: str) -> None:
    """``jit`` for every new connection to the benchmark's database (the store's pool
    connects after this), as ``SET LOCAL jit = off`` in ``claim_plan`` would for the claim."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f"ALTER DATABASE {name} SET jit = {value}")


def run_size(dialect: str, size: Size, args: argparse.Namespace) -> dict[str, Any]:
    with fresh_database(dialect, size.label, args.pg_admin_url) as url:
        app = Longops(url)
        app.task(name="noop")(lambda: None)
        app.migrate()
        template = app.enqueue("noop")
        template_id = str(template.id) if dialect == "postgres" else template.id.hex
        app.close()
        log(f"{dialect} {size.label}: filling {size.ready:,} ready, {size.finished:,} finished")
        began = time.perf_counter()
        fill = fill_postgres if dialect == "postgres" else fill_sqlite
        took = fill(url, template_id, size)
        took["fill_total_s"] = time.perf_counter() - began
        log(f"{dialect} {size.label}: filled in {took['fill_total_s']:.0f} s; measuring")
        variants: dict[str, Any] = {}
        explain: list[str] = []
        # PostgreSQL: as shipped, then with JIT off (the claim's generic plan is estimated
        # to cost millions, past jit_above_cost, so every execution compiles it again).
        for variant in args.variants if dialect == "postgres" else ("shipped",):
            if variant == "jit_off":
                set_database_jit(url, "off", args.pg_admin_url)
            figures, store, session_id, app = measure(url, args.claims, args.samples)
            if dialect == "postgres":
                explain += explain_claim(url, store, session_id, 16, variant)
            app.close()
            variants[variant] = figures
            log(f"{dialect} {size.label} {variant}: {json.dumps(figures)}")
        rows = counts(dialect, url)
    return {
        "label": size.label,
        "ready": size.ready,
        "finished": size.finished,
        "rows": rows,
        "fill": {k: round(v, 1) for k, v in took.items()},
        "figures": variants,
        "explain": explain,
    }


def counts(dialect: str, url: str) -> dict[str, Any]:
    query = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in HOT_TABLES)
    if dialect == "postgres":
        with psycopg.connect(url) as c:
            rows = dict(c.execute(query).fetchall())
            rows["database_bytes"] = c.execute(
                "SELECT pg_database_size(current_database())"
            ).fetchone()[0]  # type: ignore[index]
        return rows
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as c:
        result: dict[str, Any] = dict(c.execute(query).fetchall())
    result["database_bytes"] = os.path.getsize(path)
    return result


# -- report ---------------------------------------------------------------------------------------
def ratios(base: dict[str, Any], big: dict[str, Any]) -> dict[str, float]:
    return {
        key: round(big[key]["p50_ms"] / base[key]["p50_ms"], 2)
        for key in base
        if base[key]["p50_ms"] > 0
    }


def write_markdown(path: Path, doc: dict[str, Any]) -> None:
    lines = [
        "# Scale: the hot path behind a large table" + (" (quick)" if doc["quick"] else ""),
        "",
        f"- date: {doc['date']}; produced by `benchmarks/bench_scale.py {doc['argv']}`",
        f"- load before: `{doc['uptime_before']}`",
        f"- load after: `{doc['uptime_after']}` (2 cores shared by other work: ratios measured"
        " in the same run are the figures that mean something)",
        f"- each size a fresh database (the project's migrations), filled with server-side SQL;"
        f" finished operations each have 1 attempt row and 2 timeline events, spread over the"
        f" last {HISTORY_DAYS} days (inside the pruner's 30-day retention); indexes rebuilt"
        " after the load, then VACUUM ANALYZE (SQLite: ANALYZE)",
        f"- timed through `Store.claim` / `Store.finish_runs` / `Longops.enqueue`:"
        f" {doc['claims']} claims per batch size after {WARMUP} untimed ones, each claimed run"
        f" finished at once; {doc['samples']} enqueues",
        "",
    ]
    for dialect, result in doc["results"].items():
        base, big = result["sizes"]
        lines += [
            f"## {dialect}",
            "",
            f"| variant | figure | baseline ({base['ready']:,} ready, {base['finished']:,}"
            f" finished) | {big['ready']:,} ready, {big['finished']:,} finished | ratio (p50) |",
            "|---|---|---|---|---|",
        ]
        for variant in base["figures"]:
            for key, label in (
                ("claim_1", "claim, batch 1"),
                ("claim_16", "claim, batch 16"),
                ("finish_1", "finish one run"),
                ("enqueue_1", "enqueue one"),
            ):
                b, g = base["figures"][variant][key], big["figures"][variant][key]
                lines.append(
                    f"| {variant} | {label} (p50 / p95 ms) | {b['p50_ms']} / {b['p95_ms']} "
                    f"| {g['p50_ms']} / {g['p95_ms']} | {result['ratios'][variant][key]}x |"
                )
        lines += [""]
        for variant, flat in result["flat"].items():
            lines.append(
                f"- {variant}: claim flat (p50 ratio <= {FLAT}x for both batch sizes): **{flat}**"
            )
        lines += [
            "",
            f"Rows at size: {', '.join(f'{k} {v:,}' for k, v in big['rows'].items())}; "
            f"fill took {big['fill']['fill_total_s']} s ({json.dumps(big['fill'])}).",
            "",
        ]
    path.write_text("\n".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--dialect", nargs="+", default=["postgres"], choices=["postgres", "sqlite"]
    )
    parser.add_argument("--ready", type=int, help="ready operations at size (1,000,000)")
    parser.add_argument("--finished", type=int, help="finished operations at size (10,000,000)")
    parser.add_argument("--base-ready", type=int, help="ready operations of the baseline (25,000)")
    parser.add_argument("--claims", type=int, help="timed claims per batch size (500)")
    parser.add_argument("--samples", type=int, help="timed enqueues (100)")
    parser.add_argument("--quick", action="store_true", help="10k ready / 100k finished, 50 claims")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["shipped", "jit_off"],
        choices=["shipped", "jit_off"],
        help="PostgreSQL: measure as shipped and/or with JIT off",
    )
    parser.add_argument("--pg-admin-url", default=ADMIN)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    # Given values win; --quick only changes the defaults.
    args.ready = args.ready or (10_000 if args.quick else 1_000_000)
    args.finished = (
        args.finished if args.finished is not None else (100_000 if args.quick else 10_000_000)
    )
    args.base_ready = args.base_ready or (4_000 if args.quick else 25_000)
    args.claims = args.claims or (50 if args.quick else 500)
    args.samples = args.samples or (20 if args.quick else 100)
    # Per variant (PostgreSQL measures two), plus the explained claims.
    needed = len(args.variants) * sum((WARMUP + args.claims) * b for b in BATCHES) + 64
    if min(args.base_ready, args.ready) < needed:
        parser.error(f"--base-ready and --ready must be at least {needed} (what the claims take)")
    doc: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "argv": " ".join(sys.argv[1:] if argv is None else argv),
        "quick": args.quick,
        "claims": args.claims,
        "samples": args.samples,
        "uptime_before": uptime(),
        "results": {},
    }
    explain: list[str] = []
    for dialect in args.dialect:
        sizes = [
            Size("baseline", args.base_ready, 0),
            Size("large", args.ready, args.finished),
        ]
        done = [run_size(dialect, size, args) for size in sizes]
        r = {
            variant: ratios(done[0]["figures"][variant], done[1]["figures"][variant])
            for variant in done[0]["figures"]
        }
        flat = {v: all(x[f"claim_{b}"] <= FLAT for b in BATCHES) for v, x in r.items()}
        for d in done:
            if d["explain"]:
                explain += [
                    f"## {d['label']}: {d['ready']:,} ready, {d['finished']:,} finished",
                    "",
                    *d.pop("explain"),
                ]
            else:
                d.pop("explain")
        doc["results"][dialect] = {"sizes": done, "ratios": r, "flat": flat}
    doc["uptime_after"] = uptime()
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "scale.quick" if args.quick else "scale"
    (args.out / f"{stem}.json").write_text(json.dumps(doc, indent=2) + "\n")
    write_markdown(args.out / f"{stem}.md", doc)
    if explain:
        head = [
            "# EXPLAIN (ANALYZE, BUFFERS) of the claim behind a large table (PostgreSQL)",
            "",
            f"- date: {doc['date']}; `{doc['uptime_after']}`",
            "- generic plan (plan_cache_mode = force_generic_plan, as a worker's prepared"
            " statement), batch 16, rolled back; produced by `benchmarks/bench_scale.py`",
            "",
        ]
        name = "explain-claim-scale-postgres" + (".quick" if args.quick else "") + ".txt"
        (args.out / name).write_text("\n".join(head + explain))
    print(json.dumps({d: v["ratios"] for d, v in doc["results"].items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
