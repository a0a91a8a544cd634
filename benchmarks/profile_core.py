"""Profiles behind ``bench_core.py``'s figures: where the enqueue loop and the drain spend time.

Run from the project root (py-spy must be installed in the venv: ``pip install py-spy``)::

    .venv/bin/python benchmarks/profile_core.py [--db sqlite|postgres|both] [--quick]

Writes to ``benchmarks/results/``:

- ``profile-enqueue-<dialect>.txt``: pyinstrument, the ``app.enqueue`` loop (tree and flat);
- ``profile-bulk-<dialect>.txt``: pyinstrument, ``app.enqueue_many`` batches;
- ``profile-drain-<dialect>-worker{0,1}.collapsed``: py-spy raw stacks of the two worker
  processes during a drain (worker 0 with ``--idle``: wall time of every thread; worker 1
  without: only threads that were running);
- ``profile-drain-<dialect>.txt``: those stacks summarised per thread and per function, and
  on PostgreSQL what the server backends were doing (``pg_stat_activity`` samples);
- ``explain-claim-<dialect>.txt``: the claim query's plan with 20,000 ready rows, with and
  without planner statistics, and (PostgreSQL) a rewrite of its ``uncategorized`` part.

The profile run is not the benchmark: samplers cost CPU, and the drain here starts while the
operations are still being enqueued. The findings are in ``results/profile-notes.md``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from pyinstrument import Profiler

from bench_app import TASK, make_app
from bench_core import (
    DEFAULT_PG_ADMIN_URL,
    DIALECTS,
    FULL,
    QUICK,
    RESULTS,
    BenchConfig,
    Sizes,
    fresh_database,
    start_workers,
    stop_workers,
    wait_finished,
    wait_sessions,
)
from longops import EnqueueRequest, Longops
from longops.domain.ids import new_id
from longops.domain.operation import Session, SessionState
from longops.store.queries import load_queries

PYSPY_RATE = 200


# -- enqueue (pyinstrument, in this process) --------------------------------------------------
def profile_enqueue(dialect: str, cfg: BenchConfig, out: Path) -> None:
    sizes = cfg.sizes
    with fresh_database(dialect, "prof_enqueue", cfg) as url:
        app = make_app(url)
        try:
            for _ in range(20):
                app.enqueue(TASK)
            profiler = Profiler(interval=0.0002)
            started = time.perf_counter()
            with profiler:
                for _ in range(sizes.enqueue_one):
                    app.enqueue(TASK)
            elapsed = time.perf_counter() - started
            write_pyinstrument(
                out / f"profile-enqueue-{dialect}.txt",
                f"app.enqueue x {sizes.enqueue_one} on {dialect}: {elapsed:.3f} s "
                f"({sizes.enqueue_one / elapsed:,.0f} ops/s under the profiler)",
                profiler,
            )
            batch = [EnqueueRequest(task=TASK)] * sizes.bulk_batch
            profiler = Profiler(interval=0.0005)
            started = time.perf_counter()
            with profiler:
                for _ in range(sizes.bulk_total // sizes.bulk_batch):
                    app.enqueue_many(batch)
            elapsed = time.perf_counter() - started
            write_pyinstrument(
                out / f"profile-bulk-{dialect}.txt",
                f"app.enqueue_many, {sizes.bulk_total} in batches of {sizes.bulk_batch} on "
                f"{dialect}: {elapsed:.3f} s ({sizes.bulk_total / elapsed:,.0f} ops/s "
                "under the profiler)",
                profiler,
            )
        finally:
            app.close()
    print(f"[{dialect}] enqueue and bulk profiles written", flush=True)


def write_pyinstrument(path: Path, title: str, profiler: Profiler) -> None:
    tree = profiler.output_text(unicode=False, color=False, show_all=False)
    flat = profiler.output_text(unicode=False, color=False, flat=True)
    path.write_text(f"{title}\n\n== call tree ==\n{tree}\n== flat (self time) ==\n{flat}")


# -- drain (py-spy on the worker processes) ---------------------------------------------------
def pyspy_command() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    if not beside.exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    return str(beside)


def attach_pyspy(pid: int, output: Path, *, idle: bool) -> subprocess.Popen[str]:
    command = [
        pyspy_command(),
        "record",
        "--pid",
        str(pid),
        "--threads",
        "--nonblocking",
        "--rate",
        str(PYSPY_RATE),
        "--format",
        "raw",
        "--output",
        str(output),
    ]
    if idle:
        command.append("--idle")
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until it samples, so the drain is covered
        if "Sampling process" in line:
            return proc
    raise RuntimeError(f"py-spy could not attach to pid {pid} (exit {proc.wait()})")


def wait_spies(spies: Sequence[subprocess.Popen[str]]) -> None:
    """py-spy writes its file when the process it watches exits."""
    for spy in spies:
        try:
            spy.wait(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()


class PgActivitySampler(threading.Thread):
    """Samples ``pg_stat_activity`` for one database: what each backend is doing."""

    def __init__(self, url: str, interval: float = 0.005) -> None:
        super().__init__(name="pg-activity-sampler", daemon=True)
        self.url = url
        self.interval = interval
        self.samples: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self.rounds = 0
        self._halt = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._halt.is_set():
                rows = conn.execute(
                    "SELECT coalesce(state, ''), coalesce(wait_event_type || ':' || wait_event,"
                    " 'on CPU'), query FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND backend_type = 'client backend'"
                ).fetchall()
                self.rounds += 1
                for state, wait, query in rows:
                    self.samples[(state, wait, query_kind(query))] += 1
                self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def query_kind(query: str) -> str:
    q = " ".join(query.split())
    kinds = [
        ("pg_advisory_xact_lock(7243015001)", "claim_lock"),
        ("WITH paused AS", "claim_operations"),
        ("WITH op AS", "finish_run"),
        ("SELECT status, count(*)", "count_operations (driver)"),
        ("SELECT min(earliest_start_at)", "next_due_at"),
        ("COPY longops_operations", "copy_operations"),
        ("pg_notify", "notify_ready"),
        ("LISTEN", "LISTEN (wake-ups)"),
        ("UPDATE longops_sessions SET last_heartbeat_at", "heartbeat"),
        ("longops_leaders", "leader election"),
        ("SELECT coalesce(state", "sampler"),
    ]
    for needle, kind in kinds:
        if needle in q:
            return kind
    return q[:50] or "(none)"


def profile_drain(dialect: str, cfg: BenchConfig, out: Path) -> None:
    sizes = cfg.sizes
    with fresh_database(dialect, "prof_drain", cfg) as url:
        outputs = [
            out / f"profile-drain-{dialect}-worker{i}.collapsed" for i in range(sizes.workers)
        ]
        # Clean-ups run last-registered first, each even if an earlier one failed.
        with contextlib.ExitStack() as cleanup:
            app = make_app(url)
            cleanup.callback(app.close)
            spies: list[subprocess.Popen[str]] = []
            cleanup.callback(wait_spies, spies)
            group = start_workers(url, sizes.workers, sizes.concurrency, cfg.workdir, "prof")
            cleanup.callback(stop_workers, group)
            wait_sessions(app, sizes.workers, group)
            for i, proc in enumerate(group.procs):
                spies.append(attach_pyspy(proc.pid, outputs[i], idle=i == 0))
            sampler: PgActivitySampler | None = None
            if dialect == "postgres":
                sampler = PgActivitySampler(url)
                sampler.start()
                cleanup.callback(sampler.stop)
            started = time.perf_counter()
            batch = [EnqueueRequest(task=TASK)] * sizes.bulk_batch
            for _ in range(sizes.bulk_total // sizes.bulk_batch):
                app.enqueue_many(batch)
            done = wait_finished(app, sizes.bulk_total, group)
            elapsed = done - started
    lines = [
        f"drain of {sizes.bulk_total} operations on {dialect}, {sizes.workers} workers x "
        f"{sizes.concurrency}: {elapsed:.2f} s ({sizes.bulk_total / elapsed:,.0f} ops/s under "
        f"py-spy at {PYSPY_RATE} Hz; enqueue overlapped the start)",
        "",
    ]
    for i, path in enumerate(outputs):
        kind = "wall time of every thread (--idle)" if i == 0 else "running threads only"
        lines += summarise_collapsed(path, f"worker {i}: {kind}")
    if sampler is not None:
        lines += summarise_activity(sampler)
    (out / f"profile-drain-{dialect}.txt").write_text("\n".join(lines) + "\n")
    print(f"[{dialect}] drain profile written ({elapsed:.1f} s)", flush=True)


FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]+)(?::(?P<line>\d+))?\)$")


def parse_collapsed(path: Path) -> list[tuple[str, list[str], int]]:
    """(thread group, frames root first, samples) per line of py-spy's raw output."""
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[-1] if frames[0].startswith("thread") else "?"
        group = re.sub(r"-\d+$", "-*", thread)
        stacks.append((group, frames[1:], int(count)))
    return stacks


def func_name(frame: str, *, with_line: bool = False) -> str:
    m = FRAME.match(frame)
    if not m:
        return frame
    if with_line and m["line"]:
        return f"{m['func']} ({m['file']}:{m['line']})"
    return f"{m['func']} ({m['file']})"


def summarise_collapsed(path: Path, title: str, top: int = 25) -> list[str]:
    stacks = parse_collapsed(path)
    total = sum(c for _, _, c in stacks) or 1
    per_thread: collections.Counter[str] = collections.Counter()
    leaf_by_thread: dict[str, collections.Counter[str]] = collections.defaultdict(
        collections.Counter
    )
    own_by_thread: dict[str, collections.Counter[str]] = collections.defaultdict(
        collections.Counter
    )
    inclusive: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    for group, frames, count in stacks:
        per_thread[group] += count
        if frames:
            leaf = func_name(frames[-1], with_line=True)
            leaves[leaf] += count
            leaf_by_thread[group][leaf] += count
        names = {func_name(f) for f in frames}
        for name in names:
            inclusive[name] += count
        # Where in longops each thread is: every longops function on the stack, and the
        # innermost longops line (the call it is making into a library, or its own code).
        for name in names:
            if "(longops/" in name:
                own_by_thread[group][name] += count
        innermost = next((f for f in reversed(frames) if "(longops/" in f), None)
        if innermost is not None:
            own_by_thread[group]["at " + func_name(innermost, with_line=True)] += count
    lines = [f"== {title}: {total} samples ({total / PYSPY_RATE:.1f} thread-seconds) ==", ""]
    lines.append("per thread group: share of samples; leaf lines; longops functions on the stack")
    for group, count in per_thread.most_common():
        lines.append(f"  {count / total:6.1%}  {group}")
        for leaf, n in leaf_by_thread[group].most_common(3):
            lines.append(f"           {n / count:6.1%} of it in {leaf}")
        for name, n in own_by_thread[group].most_common(8):
            lines.append(f"           {n / count:6.1%} of it under {name}")
    lines += ["", "top functions, inclusive (share of all samples):"]
    for name, count in inclusive.most_common(top):
        lines.append(f"  {count / total:6.1%}  {name}")
    lines += ["", "top leaf lines, self (share of all samples):"]
    for name, count in leaves.most_common(top):
        lines.append(f"  {count / total:6.1%}  {name}")
    lines.append("")
    return lines


def summarise_activity(sampler: PgActivitySampler) -> list[str]:
    total = sum(sampler.samples.values()) or 1
    lines = [
        f"== PostgreSQL client backends: {sampler.rounds} pg_stat_activity samples, "
        f"{total} backend-samples ==",
        "",
        "  share   state / wait event / statement",
    ]
    for (state, wait, kind), count in sampler.samples.most_common(20):
        lines.append(f"  {count / total:6.1%}  {state or '-'} / {wait} / {kind}")
    active = {k: v for k, v in sampler.samples.items() if k[0] == "active" and k[2] != "sampler"}
    busy = sum(active.values())
    if busy:
        lines += ["", "  of the active (in a statement) backend-samples:"]
        by_kind: collections.Counter[str] = collections.Counter()
        for (_, wait, kind), count in active.items():
            by_kind[f"{kind} [{wait}]"] += count
        for kind, count in by_kind.most_common(12):
            lines.append(f"  {count / busy:6.1%}  {kind}")
        rounds = sampler.rounds or 1
        lines.append(f"  mean backends in a statement at once: {busy / rounds:.2f}")
    lines.append("")
    return lines


# -- the claim query's plan ----------------------------------------------------------------------
UNCATEGORIZED_REWRITE = """uncategorized AS (
    -- Rewrite under test: one index-ordered scan per served queue (LATERAL), so the
    -- (queue, priority, entry_no) WHERE status = 'ready' index yields rows in claim order
    -- and the LIMIT stops the scan, instead of reading and sorting every ready row.
    SELECT pick.id, pick.priority, pick.entry_no
      FROM unnest(%(queues)s::text[]) AS q(name)
     CROSS JOIN LATERAL (
        SELECT o.id, o.priority, o.entry_no
          FROM longops_operations o
         WHERE o.status = 'ready' AND o.category IS NULL
           AND o.queue = q.name
           AND o.earliest_start_at <= %(now)s
           AND (o.expires_at IS NULL OR o.expires_at > %(now)s)
         ORDER BY o.priority, o.entry_no
         LIMIT %(limit)s
     ) pick
     WHERE q.name NOT IN (SELECT name FROM paused)
     ORDER BY pick.priority, pick.entry_no
     LIMIT %(limit)s
),
chosen AS ("""


def rewrite_claim(query: str) -> str | None:
    start = query.find("uncategorized AS (")
    end = query.find("chosen AS (")
    if start < 0 or end < 0:
        return None
    return query[:start] + UNCATEGORIZED_REWRITE + query[end + len("chosen AS (") :]


def register_session(app: Longops) -> Any:
    now = app.clock.now()
    sid = new_id(now)
    app.store.register_session(
        Session(
            id=sid,
            host="profile",
            pid=0,
            queues=("default",),
            concurrency=8,
            state=SessionState.ACTIVE,
            started_at=now,
            last_heartbeat_at=now,
            ended_at=None,
        )
    )
    return sid


def explain_postgres(cfg: BenchConfig, out: Path, ready: int) -> None:
    lines: list[str] = []
    with fresh_database("postgres", "prof_explain", cfg) as url:
        app = make_app(url)
        try:
            batch = [EnqueueRequest(task=TASK)] * min(5_000, ready)
            for _ in range(max(ready // len(batch), 1)):
                app.enqueue_many(batch)
            sid = register_session(app)
            original = load_queries("postgres")["claim_operations"]
            variants = {"claim_operations as shipped": original}
            rewritten = rewrite_claim(original)
            if rewritten is not None:
                variants["claim_operations, uncategorized rewritten with LATERAL"] = rewritten
            with psycopg.connect(url) as conn:
                for stats in ("no planner statistics (as in the drain)", "after ANALYZE"):
                    if stats == "after ANALYZE":
                        conn.commit()
                        conn.autocommit = True
                        conn.execute("ANALYZE")
                        conn.autocommit = False
                    for name, query in variants.items():
                        for limit in (8, 100):
                            params = {
                                "session_id": sid,
                                "queues": ["default"],
                                "limit": limit,
                                "now": app.clock.now(),
                            }
                            plan = conn.execute(
                                "EXPLAIN (ANALYZE, BUFFERS) " + query, params
                            ).fetchall()
                            conn.rollback()
                            times = []
                            for _ in range(10):
                                t = time.perf_counter()
                                rows = conn.execute(query, params).fetchall()
                                times.append(time.perf_counter() - t)
                                conn.rollback()
                            assert len(rows) == limit, (name, len(rows))
                            lines += [
                                f"===== {name}; limit {limit}; {ready} ready rows; {stats}",
                                f"client-side time per claim (10 runs, rolled back): "
                                f"median {sorted(times)[5] * 1000:.2f} ms, "
                                f"min {min(times) * 1000:.2f} ms",
                                *(r[0] for r in plan),
                                "",
                            ]
                lines += explain_finish_run(conn, app, sid)
        finally:
            app.close()
    (out / "explain-claim-postgres.txt").write_text("\n".join(lines) + "\n")
    print("[postgres] claim plans written", flush=True)


def explain_finish_run(conn: psycopg.Connection[Any], app: Longops, sid: Any) -> list[str]:
    """EXPLAIN ANALYZE one ``finish_run`` (a claimed operation finishing), rolled back."""
    queries = load_queries("postgres")
    claim = queries["claim_operations"]
    params = {"session_id": sid, "queues": ["default"], "limit": 1, "now": app.clock.now()}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(claim, params)
        row = cur.fetchone()
        assert row is not None
        plan = cur.execute(
            "EXPLAIN (ANALYZE, BUFFERS) " + queries["finish_run"],
            {
                "id": row["id"],
                "lease_token": row["lease_token"],
                "run_no": row["run_count"],
                "at": app.clock.now(),
                "outcome": "success",
                "status": "finished",
                "status_reason": None,
                "earliest_start_at": None,
                "attempt_count": None,
                "error_message": None,
                "traceback": None,
                "result": None,
            },
        ).fetchall()
    conn.rollback()
    return [
        "===== finish_run, one claimed operation (rolled back)",
        *(r["QUERY PLAN"] for r in plan),
    ]


def explain_sqlite(cfg: BenchConfig, out: Path, ready: int) -> None:
    lines: list[str] = []
    with fresh_database("sqlite", "prof_explain", cfg) as url:
        app = make_app(url)
        try:
            batch = [EnqueueRequest(task=TASK)] * min(5_000, ready)
            for _ in range(max(ready // len(batch), 1)):
                app.enqueue_many(batch)
            sid = register_session(app)
            query = load_queries("sqlite")["claim_operations"]
            store: Any = app.store
            conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            try:
                for stats in ("no ANALYZE", "after ANALYZE"):
                    if stats == "after ANALYZE":
                        conn.execute("ANALYZE")
                    for limit in (8, 100):
                        params = {
                            "session_id": store.enc_uuid(sid),
                            "queues": store.enc_list(["default"]),
                            "limit": limit,
                            "now": store.enc_ts(app.clock.now()),
                        }
                        plan = conn.execute("EXPLAIN QUERY PLAN " + query, params).fetchall()
                        times = []
                        for _ in range(10):
                            conn.execute("BEGIN IMMEDIATE")
                            t = time.perf_counter()
                            rows = conn.execute(query, params).fetchall()
                            times.append(time.perf_counter() - t)
                            conn.execute("ROLLBACK")
                        assert len(rows) == limit
                        lines += [
                            f"===== claim_operations; limit {limit}; {ready} ready rows; {stats}",
                            f"time per claim statement (10 runs, rolled back): "
                            f"median {sorted(times)[5] * 1000:.2f} ms, "
                            f"min {min(times) * 1000:.2f} ms",
                            *(f"{r[0]:>3} {r[1]:>3}  {r[3]}" for r in plan),
                            "",
                        ]
            finally:
                conn.close()
        finally:
            app.close()
    (out / "explain-claim-sqlite.txt").write_text("\n".join(lines) + "\n")
    print("[sqlite] claim plans written", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="about 1/10 of the sizes")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sizes: Sizes = QUICK if args.quick else FULL
    dialects = DIALECTS if args.db == "both" else (args.db,)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="longops-profile-") as tmp:
        cfg = BenchConfig(args.pg_admin_url, Path(tmp), sizes)
        for dialect in dialects:
            profile_enqueue(dialect, cfg, args.out)
            if dialect == "postgres":
                explain_postgres(cfg, args.out, sizes.bulk_total)
            else:
                explain_sqlite(cfg, args.out, sizes.bulk_total)
            profile_drain(dialect, cfg, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
