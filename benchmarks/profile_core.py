"""Profiles behind ``bench_core.py``'s figures: where the enqueue loop and the drain spend time.

Run from the project root (py-spy must be installed in the venv: ``pip install py-spy``)::

    .venv/bin/python benchmarks/profile_core.py [--db sqlite|postgres|both] [--quick]

Writes to ``benchmarks/results/``:

- ``profile-enqueue-<dialect>.txt``: pyinstrument, the ``app.enqueue`` loop (tree and flat);
- ``profile-bulk-<dialect>.txt``: pyinstrument, ``app.enqueue_many`` batches;
- ``profile-drain-<dialect>-worker{0,1}.collapsed``: py-spy raw stacks of the two worker
  processes during a drain (worker 0 with ``--idle``: wall time of every thread; worker 1
  with ``--gil``: the thread holding the GIL, i.e. where the process spends Python CPU);
- ``profile-drain-<dialect>.txt``: those stacks summarised per thread and per function, and
  on PostgreSQL what the server backends were doing (``pg_stat_activity`` samples);
- ``explain-claim-<dialect>.txt``: the claim query's plan with 20,000 ready rows, with and
  without planner statistics (SQLite: beside candidate rewrites), and half-way through a
  drain, with the plans of the statements that record finished runs;
- ``whatif-drain-<dialect>.txt``: the benchmark's drain as shipped and under changes made
  from outside longops (``ANALYZE``; tweaks applied by ``whatif_worker.py``).

The profile run is not the benchmark: samplers cost CPU, and the drain here starts while the
operations are still being enqueued. The findings are in ``results/profile-notes.md``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import itertools
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
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
    bench_bulk,
    bench_drain,
    fresh_database,
    source_fingerprint,
    start_workers,
    stop_workers,
    wait_finished,
    wait_sessions,
)
from longops import EnqueueRequest, Longops, Status
from longops.domain.operation import Outcome
from longops.store.base import ClaimedRun, ClaimParams
from longops.store.queries import load_queries
from longops.testing import active_session
from longops.worker.executor import RunOutcome, result_for
from whatif_worker import SQLITE_CLAIM_REWRITES, rewrites

PYSPY_RATE = 200
PARTS = ("enqueue", "explain", "drain", "whatif")


# -- enqueue (pyinstrument, in this process) --------------------------------------------------
def profile_enqueue(dialect: str, cfg: BenchConfig, out: Path) -> None:
    sizes = cfg.sizes
    source = source_fingerprint()
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
                source,
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
                source,
            )
            split = bulk_split(app, sizes)
            with (out / f"profile-bulk-{dialect}.txt").open("a") as f:
                f.write(f"\n== without the profiler ==\n{split}\n")
        finally:
            app.close()
    print(f"[{dialect}] enqueue and bulk profiles written", flush=True)


def bulk_split(app: Longops, sizes: Sizes) -> str:
    """``enqueue_many`` is validation (``service.build``) then the store's bulk write: time
    each half on its own, without a profiler's overhead."""
    batch = [EnqueueRequest(task=TASK)] * sizes.bulk_batch
    rounds = sizes.bulk_total // sizes.bulk_batch
    build = write = 0.0
    for _ in range(rounds):
        t = time.perf_counter()
        built = [app.service.build(r) for r in batch]
        build += time.perf_counter() - t
        t = time.perf_counter()
        app.store.insert_operations_bulk(built)
        write += time.perf_counter() - t
    n = rounds * sizes.bulk_batch
    return (
        f"{n} operations: build (validation, ids, JSON) {build:.3f} s = "
        f"{build / n * 1e6:.1f} us/op; store.insert_operations_bulk {write:.3f} s = "
        f"{write / n * 1e6:.1f} us/op; together {n / (build + write):,.0f} ops/s"
    )


def source_line(at_start: str) -> str:
    """Which longops code a section measured; says so when it changed during the section."""
    now = source_fingerprint()
    if now == at_start:
        return f"source: {at_start}"
    return f"source: {at_start}, changed to {now} while this section ran"


def write_pyinstrument(path: Path, title: str, profiler: Profiler, source: str) -> None:
    tree = profiler.output_text(unicode=False, color=False, show_all=False)
    flat = profiler.output_text(unicode=False, color=False, flat=True)
    path.write_text(
        f"{source_line(source)}\n{title}\n\n== call tree ==\n{tree}\n== flat (self time) ==\n{flat}"
    )


# -- drain (py-spy on the worker processes) ---------------------------------------------------
def pyspy_command() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    if not beside.exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    return str(beside)


def attach_pyspy(pid: int, output: Path, *, idle: bool, gil: bool) -> subprocess.Popen[str]:
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
    if gil:
        command.append("--gil")
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
        ("WITH input AS", "finish_runs"),
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
    source = source_fingerprint()
    with fresh_database(dialect, "prof_drain", cfg) as url:
        outputs = [
            out / f"profile-drain-{dialect}-worker{i}.collapsed" for i in range(sizes.workers)
        ]
        # Clean-ups run last-registered first, each even if an earlier one failed.
        with contextlib.ExitStack() as cleanup:
            app = make_app(url)
            cleanup.callback(app.close)
            probe: GenericPlanProbe | None = None
            probe_failed: list[str] = []
            extra_finished = 0
            if dialect == "postgres":
                try:
                    probe = GenericPlanProbe(app, url)
                    extra_finished = 1
                    cleanup.callback(probe.close)
                except (psycopg.Error, ValueError, KeyError) as exc:
                    probe_failed.append(f"(generic-plan probe skipped: {exc!r})")
            spies: list[subprocess.Popen[str]] = []
            cleanup.callback(wait_spies, spies)
            group = start_workers(url, sizes.workers, sizes.concurrency, cfg.workdir, "prof")
            cleanup.callback(stop_workers, group)
            wait_sessions(app, sizes.workers, group)
            for i, proc in enumerate(group.procs):
                spies.append(attach_pyspy(proc.pid, outputs[i], idle=i == 0, gil=i > 0))
            sampler: PgActivitySampler | None = None
            if dialect == "postgres":
                sampler = PgActivitySampler(url)
                sampler.start()
                cleanup.callback(sampler.stop)
            started = time.perf_counter()
            batch = [EnqueueRequest(task=TASK)] * sizes.bulk_batch
            for _ in range(sizes.bulk_total // sizes.bulk_batch):
                app.enqueue_many(batch)
            done = wait_finished(app, sizes.bulk_total + extra_finished, group)
            elapsed = done - started
            after: list[str] = []
            if dialect == "postgres":
                stop_workers(group)
                after = after_drain_postgres(app, url)
                if probe is not None:
                    try:
                        after += probe.after_drain(app)
                    except (psycopg.Error, ValueError, KeyError) as exc:
                        after.append(f"(generic-plan probe failed: {exc!r})")
                after += probe_failed
    lines = [
        source_line(source),
        f"drain of {sizes.bulk_total} operations on {dialect}, {sizes.workers} workers x "
        f"{sizes.concurrency}: {elapsed:.2f} s ({sizes.bulk_total / elapsed:,.0f} ops/s under "
        f"py-spy at {PYSPY_RATE} Hz; enqueue overlapped the start)",
        "",
    ]
    for i, path in enumerate(outputs):
        kind = (
            "wall time of every thread (--idle)"
            if i == 0
            else "only the thread holding the GIL (--gil): where Python spends CPU"
        )
        lines += summarise_collapsed(path, f"worker {i}: {kind}")
    if sampler is not None:
        lines += summarise_activity(sampler)
    lines += after
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
def register_session(app: Longops) -> Any:
    session = active_session(app.clock.now(), ("default",), concurrency=8)
    app.store.register_session(session)
    return session.id


def seed_ready(app: Longops, ready: int) -> Any:
    """Leave ``ready`` no-op operations ready, then register a session to claim them."""
    batch = [EnqueueRequest(task=TASK)] * min(5_000, ready)
    for _ in range(max(ready // len(batch), 1)):
        app.enqueue_many(batch)
    return register_session(app)


def explain_postgres(cfg: BenchConfig, out: Path, ready: int) -> None:
    source = source_fingerprint()
    lines: list[str] = []
    with fresh_database("postgres", "prof_explain", cfg) as url:
        app = make_app(url)
        try:
            sid = seed_ready(app, ready)
            original = load_queries("postgres")["claim_operations"]
            variants = {"claim_operations as shipped": original}
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
                                "companies": None,
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
    lines += explain_mid_drain("postgres", cfg, ready)
    lines.insert(0, source_line(source) + "\n")
    (out / "explain-claim-postgres.txt").write_text("\n".join(lines) + "\n")
    print("[postgres] claim plans written", flush=True)


class RecordingCursor:
    """Stands in for a store's cursor and records the statements sent to it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def execute(self, query: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((query, params))
        return self

    def executemany(self, query: str, params: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((query, next(iter(params), None)))
        return self

    def fetchone(self) -> Any:
        return {"id": None, "applied": 1}  # "the row was there": the next statement follows

    def fetchall(self) -> list[Any]:
        return []

    def nextset(self) -> bool:
        return False


def captured_statements(store: Any, action: Callable[[], object]) -> list[tuple[str, Any]]:
    """The statements (and parameters) ``action`` sends through ``store._tx()``, captured
    instead of run: so the plans below are those of the store's own SQL and parameters,
    whatever shape they have today."""
    recorder = RecordingCursor()

    @contextlib.contextmanager
    def recording_tx() -> Iterator[RecordingCursor]:
        yield recorder

    store._tx = recording_tx  # an instance attribute shadows the method
    try:
        action()
    finally:
        del store._tx
    return [(q, p) for q, p in recorder.calls if "pg_notify" not in q]


def claim_one(app: Longops, sid: Any) -> ClaimedRun:
    [claimed] = app.store.claim(ClaimParams(sid, ("default",), 1, app.clock.now()))
    return claimed


def finish_statements(app: Longops, claimed: ClaimedRun) -> list[tuple[str, Any]]:
    """What the store sends to record ``claimed`` as a success (captured, not run)."""
    result = result_for(
        claimed, RunOutcome(Outcome.SUCCESS), task=None, clock=app.clock, tz=ZoneInfo("UTC")
    )
    return captured_statements(app.store, lambda: app.store.finish_runs([result]))


def statement_name(query: str) -> str:
    for dialect in ("postgres", "sqlite"):
        for name, text in load_queries(dialect).items():
            if text == query.strip().rstrip(";").strip():
                return name
    return query.split()[0]


def explain_finish_run(conn: psycopg.Connection[Any], app: Longops, sid: Any) -> list[str]:
    """EXPLAIN ANALYZE what the store sends to record one run's end, rolled back."""
    try:
        statements = finish_statements(app, claim_one(app, sid))
        lines = []
        for query, params in statements:
            plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + query, params).fetchall()
            lines += [
                f"===== {statement_name(query)}, recording one claimed run (rolled back)",
                *(r[0] for r in plan),
            ]
        conn.rollback()
    except (psycopg.Error, ValueError, KeyError) as exc:
        conn.rollback()
        return [f"===== finish: skipped ({type(exc).__name__}: {exc})"]
    return lines


def run_until_finished(app: Longops, url: str, cfg: BenchConfig, count: int) -> float:
    """Let worker processes run until ``count`` operations are finished, then stop them."""
    sizes = cfg.sizes
    group = start_workers(url, sizes.workers, sizes.concurrency, cfg.workdir, "mid")
    try:
        started = time.perf_counter()
        while app.store.count_operations()[Status.FINISHED] < count:
            group.check_alive()
            time.sleep(0.05)
        return time.perf_counter() - started
    finally:
        stop_workers(group)


def explain_mid_drain(dialect: str, cfg: BenchConfig, ready: int) -> list[str]:
    """The claim and finish plans half-way through a real drain (no ANALYZE, as in the
    benchmark): dead index entries and table statistics are what the workers met."""
    half = ready // 2
    lines = [f"########## half-way through a drain: {ready} enqueued, {half}+ finished", ""]
    with fresh_database(dialect, "prof_mid", cfg) as url:
        app = make_app(url)
        try:
            batch = [EnqueueRequest(task=TASK)] * min(5_000, ready)
            for _ in range(max(ready // len(batch), 1)):
                app.enqueue_many(batch)
            took = run_until_finished(app, url, cfg, half)
            counts = {k.value: v for k, v in app.store.count_operations().items() if v}
            lines.append(f"workers ran {took:.1f} s; operations now {counts}")
            sid = register_session(app)
            if dialect == "postgres":
                lines += postgres_table_state(url)
                with psycopg.connect(url) as conn:
                    query = load_queries("postgres")["claim_operations"]
                    params = {
                        "session_id": sid,
                        "queues": ["default"],
                        "limit": 8,
                        "now": app.clock.now(),
                        "companies": None,
                    }
                    plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + query, params).fetchall()
                    conn.rollback()
                    lines += ["", "===== claim_operations, limit 8", *(r[0] for r in plan), ""]
                    lines += explain_finish_run(conn, app, sid)
            else:
                with contextlib.closing(
                    sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
                ) as conn:
                    for query, params in finish_statements(app, claim_one(app, sid)):
                        plan = conn.execute("EXPLAIN QUERY PLAN " + query, params).fetchall()
                        lines += [f"===== {statement_name(query)}", *(f"  {r[3]}" for r in plan)]
        finally:
            app.close()
    return lines


def postgres_table_state(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT relname, n_live_tup, n_dead_tup, seq_scan, seq_tup_read, last_autovacuum,"
            " last_autoanalyze FROM pg_stat_user_tables"
            " WHERE relname IN ('longops_operations', 'longops_attempts') ORDER BY relname"
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexrelname, pg_relation_size(indexrelid), idx_scan, idx_tup_read"
            " FROM pg_stat_user_indexes"
            " WHERE relname IN ('longops_operations', 'longops_attempts') ORDER BY 1"
        ).fetchall()
    lines = [
        "",
        "table: live rows, dead rows, sequential scans, rows read by them, last autovacuum,"
        " last autoanalyze",
    ]
    lines += [f"  {r[0]}: {r[1]:,}, {r[2]:,}, {r[3]:,}, {r[4]:,}, {r[5]}, {r[6]}" for r in tables]
    lines += ["index: bytes, scans, index entries read (since the database was made)"]
    lines += [f"  {r[0]}: {r[1]:,}, {r[2]:,}, {r[3]:,}" for r in indexes]
    return lines


def numbered(query: str) -> tuple[list[str], str]:
    """``%(name)s`` placeholders to ``$1, $2, ...`` (for PREPARE); returns the names too."""
    names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", query)))
    sql = re.sub(r"%\((\w+)\)s", lambda m: f"${names.index(m[1]) + 1}", query)
    return names, sql


class GenericPlanProbe:
    """What plan a *prepared* finish statement keeps through a drain.

    psycopg prepares a statement after its 5th execution on a connection, and PostgreSQL
    then may switch to a generic plan made once and kept: nothing invalidates it while the
    tables grow (no DDL, and autovacuum has not analysed them yet). This probe prepares the
    store's finish statement with ``plan_cache_mode = force_generic_plan`` on an almost empty
    database, as a worker's connection meets it, and runs it again once the drain has filled
    the tables, beside the same statement planned for its parameters
    (``force_custom_plan``).

    Setting up enqueues, claims and finishes one operation of its own.
    """

    def __init__(self, app: Longops, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.sid = register_session(app)
        app.enqueue(TASK)
        claimed = claim_one(app, self.sid)
        [(query, params)] = finish_statements(app, claimed)[:1]
        self.label = statement_name(query)
        self.names, sql = numbered(query)
        self.conn.execute(f"PREPARE probe AS {sql}")
        self.at_start = self._explain(params, "force_generic_plan", analyze=False)
        result = result_for(
            claimed, RunOutcome(Outcome.SUCCESS), task=None, clock=app.clock, tz=ZoneInfo("UTC")
        )
        app.store.finish_runs([result])

    def _explain(self, params: dict[str, Any], mode: str, *, analyze: bool) -> list[str]:
        cur = psycopg.ClientCursor(self.conn)
        cur.execute(f"SET plan_cache_mode = {mode}")
        values = [params[n] for n in self.names]
        option = "(ANALYZE, BUFFERS) " if analyze else ""
        if analyze:
            cur.execute("BEGIN")
        plan = cur.execute(
            f"EXPLAIN {option}EXECUTE probe({', '.join(['%s'] * len(values))})", values
        ).fetchall()
        if analyze:
            cur.execute("ROLLBACK")
        return [f"----- {self.label}, plan_cache_mode = {mode}", *(r[0] for r in plan)]

    def after_drain(self, app: Longops) -> list[str]:
        app.enqueue(TASK)
        [(_, params)] = finish_statements(app, claim_one(app, self.sid))[:1]
        return [
            "== the finish statement prepared with a generic plan before the drain (as a",
            "   worker's connection prepares it after 5 runs); its plan on the empty tables: ==",
            *self.at_start,
            "",
            "== the same prepared statement run (rolled back) after the drain, with that",
            "   generic plan and then planned for its parameters: ==",
            *self._explain(params, "force_generic_plan", analyze=True),
            *self._explain(params, "force_custom_plan", analyze=True),
            "",
        ]

    def close(self) -> None:
        self.conn.close()


def after_drain_postgres(app: Longops, url: str) -> list[str]:
    """Table and index statistics once the drain is over, and the plan ``finish_run`` gets
    with whatever statistics autovacuum left (one more operation is enqueued and claimed)."""
    lines = ["== PostgreSQL after the drain (statistics as the workers left them) =="]
    lines += postgres_table_state(url)
    app.enqueue(TASK)
    sid = register_session(app)
    with psycopg.connect(url) as conn:
        lines += ["", *explain_finish_run(conn, app, sid), ""]
    return lines


def explain_sqlite(cfg: BenchConfig, out: Path, ready: int) -> None:
    source = source_fingerprint()
    lines: list[str] = []
    with fresh_database("sqlite", "prof_explain", cfg) as url:
        app = make_app(url)
        try:
            sid = seed_ready(app, ready)
            analysed = False
            variants = rewrites(load_queries("sqlite")["claim_operations"], SQLITE_CLAIM_REWRITES)
            store: Any = app.store
            conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            try:
                for stats, (label, query), limit in itertools.product(
                    ("no ANALYZE", "after ANALYZE"), variants.items(), (8, 100)
                ):
                    if stats == "after ANALYZE" and not analysed:
                        conn.execute("ANALYZE")
                        analysed = True
                    params = {
                        "session_id": store.enc_uuid(sid),
                        "queues": store.enc_list(["default"]),
                        "limit": limit,
                        "now": store.enc_ts(app.clock.now()),
                        "companies": None,
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
                        f"===== claim_operations {label}; limit {limit}; {ready} ready rows;"
                        f" {stats}",
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
    lines += explain_mid_drain("sqlite", cfg, ready)
    lines.insert(0, source_line(source) + "\n")
    (out / "explain-claim-sqlite.txt").write_text("\n".join(lines) + "\n")
    print("[sqlite] claim plans written", flush=True)


def what_if_drains(dialect: str, cfg: BenchConfig, out: Path) -> None:
    """The benchmark's drain (no profiler) as shipped and under changes made from outside
    longops: planner statistics taken after the bulk enqueue, and workers started through
    ``whatif_worker.py`` with one tweak each (see its docstring)."""
    source = source_fingerprint()
    launcher = [sys.executable, str(Path(__file__).with_name("whatif_worker.py"))]
    cases: list[tuple[str, bool, dict[str, str] | None]] = [
        ("as shipped", False, None),
        ("ANALYZE after the bulk enqueue, before the workers start", True, None),
    ]
    sqlite_claim = load_queries("sqlite")["claim_operations"]
    if dialect == "sqlite" and len(rewrites(sqlite_claim, SQLITE_CLAIM_REWRITES)) > 1:
        cases.append(
            (
                "claim_operations rewritten (SQLITE_CLAIM_REWRITES), no ANALYZE",
                False,
                {"LONGOPS_BENCH_SQLITE_CLAIM_REWRITE": "1"},
            )
        )
    if dialect == "postgres":
        cases += [
            (
                "finish statement sent unprepared (planned for its parameters each time)",
                False,
                {"LONGOPS_BENCH_UNPREPARED": finish_query_names()},
            ),
            (
                "synchronous_commit = off for the workers (a bound, not a proposal)",
                False,
                {"PGOPTIONS": "-c synchronous_commit=off"},
            ),
        ]
    lines = [
        "",
        f"drain of {cfg.sizes.bulk_total} on {dialect}; each case twice, interleaved, because"
        " other processes on a shared machine move single runs a lot (see other_processes_s)",
        "",
    ]
    for label, analyze, env in cases * 2:
        with fresh_database(dialect, "whatif", cfg) as url:
            app = make_app(url)
            try:
                bench_bulk(app, cfg.sizes)
                if analyze:
                    analyze_database(url)
                r = bench_drain(
                    app, url, cfg, f"whatif-{dialect}", env_extra=env, launcher=launcher
                )
            finally:
                app.close()
        lines.append(
            f"{label}: {r['ops_per_s']:,.0f} ops/s (first start to last end "
            f"{r['steady_ops_per_s']:,.0f}/s; quarters {r['quarter_durations_s']} s; "
            f"CPU s {r['cpu']})"
        )
        print(f"[{dialect}] what-if: {lines[-1]}", flush=True)
    lines[0] = source_line(source)
    (out / f"whatif-drain-{dialect}.txt").write_text("\n".join(lines) + "\n")


def finish_query_names() -> str:
    queries = load_queries("postgres")
    return ",".join(n for n in ("finish_run", "finish_runs") if n in queries)


def analyze_database(url: str) -> None:
    """Planner statistics for every table (``ANALYZE``), on either database."""
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
            conn.execute("ANALYZE")
        return
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="about 1/10 of the sizes")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated subset of {', '.join(PARTS)} (default: all)",
    )
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    if not parts <= set(PARTS):
        parser.error(f"--parts takes {', '.join(PARTS)}")
    sizes: Sizes = QUICK if args.quick else FULL
    dialects = DIALECTS if args.db == "both" else (args.db,)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="longops-profile-") as tmp:
        cfg = BenchConfig(args.pg_admin_url, Path(tmp), sizes)
        for dialect in dialects:
            if "enqueue" in parts:
                profile_enqueue(dialect, cfg, args.out)
            if "explain" in parts:
                explain = explain_postgres if dialect == "postgres" else explain_sqlite
                explain(cfg, args.out, sizes.bulk_total)
            if "drain" in parts:
                profile_drain(dialect, cfg, args.out)
            if "whatif" in parts:
                what_if_drains(dialect, cfg, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
