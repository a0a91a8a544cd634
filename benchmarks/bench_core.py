"""Core throughput and latency benchmark for longops, on SQLite and PostgreSQL.

Run from the project root::

    .venv/bin/python benchmarks/bench_core.py [--db sqlite|postgres|both] [--quick]

Figures (per database; see benchmarks/README.md for what each one means):

1. enqueue one-by-one: ``app.enqueue("bench.noop")`` in a loop, operations/s;
2. bulk enqueue: ``app.enqueue_many([...])`` in batches, operations/s;
3. drain: the bulk-enqueued operations run by 2 worker processes (``longops ... worker``),
   operations/s from starting the workers to the moment every operation is finished;
4. enqueue->start latency: operations enqueued one at a time, ~20 ms apart, onto 2 idle
   workers; ``attempt.started_at - operation.created_at``, p50/p95/p99 in ms.

Every phase runs on its own fresh, migrated database (PostgreSQL: ``bench_<phase>_<pid>``,
dropped afterwards; SQLite: a file in a temporary folder). Results go to
``benchmarks/results/core-<dialect>.json`` and ``benchmarks/results/core.md``. Targets are
recorded as met or missed, never asserted; an invalid run (a missing attempt row, a run
that did not succeed, a worker that died) stops the benchmark with an error instead.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import platform
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import psycopg

import longops
from bench_app import TASK, make_app
from longops import EnqueueRequest, Longops, Status

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
RESULTS = HERE / "results"
DEFAULT_PG_ADMIN_URL = "postgresql://root@127.0.0.1:5432/postgres"
DIALECTS = ("sqlite", "postgres")

POLL_INTERVAL = 0.005
"""Shortest pause between two ``count_operations()`` reads while waiting for work to end."""
MAX_POLL_INTERVAL = 0.2
PHASE_TIMEOUT = 240.0
"""A phase that has not finished in this many seconds is reported as a failure."""
WARMUP_ENQUEUES = 20
LATENCY_WARMUP = 10


@dataclass(frozen=True, slots=True)
class Sizes:
    enqueue_one: int
    bulk_total: int
    bulk_batch: int
    latency_ops: int
    latency_spacing_s: float = 0.02
    workers: int = 2
    concurrency: int = 8


FULL = Sizes(enqueue_one=2_000, bulk_total=20_000, bulk_batch=5_000, latency_ops=300)
QUICK = Sizes(enqueue_one=200, bulk_total=2_000, bulk_batch=500, latency_ops=30)


@dataclass(frozen=True, slots=True)
class Target:
    figure: str
    key: str
    op: str  # ">=" or "<="
    value: float
    unit: str


TARGETS: dict[str, list[Target]] = {
    "postgres": [
        Target("drain", "drain.ops_per_s", ">=", 5_000, "ops/s"),
        Target("bulk enqueue", "bulk_enqueue.ops_per_s", ">=", 30_000, "ops/s"),
        Target("enqueue->start p50", "latency.p50_ms", "<=", 5, "ms"),
    ],
    "sqlite": [
        Target("drain", "drain.ops_per_s", ">=", 3_000, "ops/s"),
        Target("enqueue->start p50", "latency.p50_ms", "<=", 50, "ms"),
    ],
}


class InvalidRunError(RuntimeError):
    """The run cannot be trusted (missing attempts, failed runs, a dead worker)."""


# -- helpers ------------------------------------------------------------------------------------
def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (the same definition as numpy's default)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(samples_s: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "min_ms": round(min(ms), 3),
        "p50_ms": round(percentile(ms, 50), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(max(ms), 3),
        "mean_ms": round(sum(ms) / len(ms), 3),
    }


def as_utc(value: Any) -> datetime:
    """A timestamp read straight from either database (SQLite stores UTC text)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def sql_rows(url: str, query: str) -> list[tuple[Any, ...]]:
    """Run a read-only query on the database behind ``url``, outside longops."""
    if url.startswith("sqlite:"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            return list(conn.execute(query).fetchall())
    with psycopg.connect(url) as conn:
        return list(conn.execute(query).fetchall())


@dataclass
class BenchConfig:
    pg_admin_url: str
    workdir: Path
    sizes: Sizes


@contextlib.contextmanager
def fresh_database(dialect: str, tag: str, cfg: BenchConfig) -> Iterator[str]:
    """A new, migrated database for one phase; yields its URL and removes it afterwards."""
    if dialect == "sqlite":
        path = cfg.workdir / f"{tag}.db"
        url = f"sqlite:///{path}"
        app = Longops(url)
        app.migrate()
        app.close()
        try:
            yield url
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    name = f"bench_{tag}_{os.getpid()}"
    with psycopg.connect(cfg.pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_url_for(cfg.pg_admin_url, name)
    try:
        app = Longops(url)
        app.migrate()
        app.close()
        yield url
    finally:
        with psycopg.connect(cfg.pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_url_for(admin_url: str, dbname: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{dbname}"


# -- worker processes ---------------------------------------------------------------------------
def longops_command() -> str:
    beside = Path(sys.executable).parent / "longops"
    if beside.exists():
        return str(beside)
    return str(PROJECT / ".venv" / "bin" / "longops")


@dataclass
class WorkerGroup:
    procs: list[subprocess.Popen[bytes]]
    logs: list[Path]
    log_files: Sequence[TextIO]
    started_wall: float
    started: float

    def check_alive(self) -> None:
        for proc, log in zip(self.procs, self.logs, strict=True):
            if proc.poll() is not None:
                raise InvalidRunError(
                    f"worker pid {proc.pid} exited with {proc.returncode} before the work was "
                    f"done; its log ends:\n{tail(log)}"
                )


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_workers(
    url: str,
    count: int,
    concurrency: int,
    logdir: Path,
    tag: str,
    extra: Sequence[str] = (),
    env_extra: dict[str, str] | None = None,
    launcher: Sequence[str] | None = None,
) -> WorkerGroup:
    """``count`` worker processes; ``launcher`` replaces the ``longops`` command (for
    experiments, see ``whatif_worker.py``), ``env_extra`` adds environment variables."""
    env = dict(os.environ) | (env_extra or {})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p)
    command = [
        *(launcher or [longops_command()]),
        "--app",
        "bench_app:app",
        "--database-url",
        url,
        "worker",
        "--concurrency",
        str(concurrency),
        *extra,
    ]
    logs = [logdir / f"{tag}-worker{i}.log" for i in range(count)]
    files = [log.open("w") for log in logs]
    started_wall = time.time()
    started = time.perf_counter()
    procs = [
        subprocess.Popen(command, env=env, cwd=HERE, stdout=f, stderr=subprocess.STDOUT)
        for f in files
    ]
    return WorkerGroup(procs, logs, files, started_wall, started)


def stop_workers(group: WorkerGroup, timeout: float = 60.0) -> list[int]:
    """SIGTERM every worker (a graceful drain) and wait; kill any that outlives ``timeout``."""
    for proc in group.procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    codes: list[int] = []
    deadline = time.monotonic() + timeout
    for proc in group.procs:
        try:
            codes.append(proc.wait(timeout=max(deadline - time.monotonic(), 0.1)))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes.append(proc.wait())
    for f in group.log_files:
        f.close()
    return codes


def wait_finished(app: Longops, expected: int, group: WorkerGroup | None) -> float:
    """Poll until ``expected`` operations are finished; returns ``perf_counter()`` then.

    The returned time is taken after the count that saw the last one came back, so it is
    an upper bound on the moment the work was done. A count reads every row (4-6 ms for
    20,000 on this machine), so polling at a fixed short interval would take a large share
    of a core from the workers: the pause follows the observed rate instead, long while
    much work remains and down to ``POLL_INTERVAL`` near the end.
    """
    started = time.perf_counter()
    deadline = started + PHASE_TIMEOUT
    base: int | None = None
    while True:
        counts = app.store.count_operations()
        now = time.perf_counter()
        failed = counts[Status.ERROR] + counts[Status.CANCELLED]
        if failed:
            raise InvalidRunError(f"{failed} operation(s) ended in error or cancelled: {counts}")
        finished = counts[Status.FINISHED]
        if finished >= expected:
            return now
        if group is not None:
            group.check_alive()
        if now > deadline:
            raise InvalidRunError(f"not done after {PHASE_TIMEOUT:g} s: {counts}")
        if base is None:
            base = finished
        progress = finished - base
        if progress > 0:
            eta = (expected - finished) * (now - started) / progress
            pause = min(max(eta / 4, POLL_INTERVAL), MAX_POLL_INTERVAL)
        else:
            pause = 2 * POLL_INTERVAL
        time.sleep(pause)


def wait_sessions(app: Longops, count: int, group: WorkerGroup) -> float:
    """Wait until ``count`` worker sessions are registered and active."""
    deadline = time.perf_counter() + 60
    while True:
        active = [s for s in app.store.list_sessions(active_only=True) if s.state.value == "active"]
        if len(active) >= count:
            return time.perf_counter()
        group.check_alive()
        if time.perf_counter() > deadline:
            raise InvalidRunError(f"only {len(active)} of {count} workers came up in 60 s")
        time.sleep(POLL_INTERVAL)


# -- CPU accounting (Linux) -------------------------------------------------------------------
def postgres_cpu() -> dict[int, tuple[float, float]]:
    """CPU seconds (user, system) of every ``postgres`` process on this machine, by pid."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[float, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(entry.name)] = (int(fields[11]) / ticks, int(fields[12]) / ticks)
    return out


def cpu_delta(
    before: dict[int, tuple[float, float]], after: dict[int, tuple[float, float]]
) -> tuple[float, float]:
    """(user, system) seconds used between two ``postgres_cpu()`` readings."""
    user = sum(u - before.get(pid, (0.0, 0.0))[0] for pid, (u, _) in after.items())
    system = sum(s - before.get(pid, (0.0, 0.0))[1] for pid, (_, s) in after.items())
    return user, system


def machine_busy() -> float:
    """CPU seconds all processes on the machine have used (``/proc/stat``, non-idle)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> tuple[float, float]:
    """(user, system) CPU seconds of the child processes waited for so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime, r.ru_stime


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# -- the phases ---------------------------------------------------------------------------------
def bench_enqueue_one(url: str, sizes: Sizes) -> dict[str, Any]:
    """N single ``app.enqueue`` calls, each its own transaction (and NOTIFY on PostgreSQL)."""
    app = make_app(url)
    try:
        for _ in range(WARMUP_ENQUEUES):  # open the pool, fill the company cache
            app.enqueue(TASK)
        calls: list[float] = []
        started = time.perf_counter()
        for _ in range(sizes.enqueue_one):
            t = time.perf_counter()
            app.enqueue(TASK)
            calls.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - started
        ready = app.store.count_operations()[Status.READY]
    finally:
        app.close()
    if ready != sizes.enqueue_one + WARMUP_ENQUEUES:
        raise InvalidRunError(f"expected {sizes.enqueue_one + WARMUP_ENQUEUES} ready, got {ready}")
    return {
        "operations": sizes.enqueue_one,
        "elapsed_s": round(elapsed, 4),
        "ops_per_s": round(sizes.enqueue_one / elapsed, 1),
        "per_call": summary_ms(calls),
    }


def bench_bulk(app: Longops, sizes: Sizes) -> dict[str, Any]:
    """``enqueue_many`` in batches (COPY on PostgreSQL, one transaction per batch on SQLite)."""
    batch = [EnqueueRequest(task=TASK)] * sizes.bulk_batch
    app.service.build(batch[0])  # warm-up: opens the store, fills the company cache
    batches: list[float] = []
    started = time.perf_counter()
    done = 0
    while done < sizes.bulk_total:
        part = batch[: min(sizes.bulk_batch, sizes.bulk_total - done)]
        t = time.perf_counter()
        app.enqueue_many(part)
        batches.append(time.perf_counter() - t)
        done += len(part)
    elapsed = time.perf_counter() - started
    ready = app.store.count_operations()[Status.READY]
    if ready != sizes.bulk_total:
        raise InvalidRunError(f"expected {sizes.bulk_total} ready after bulk, got {ready}")
    return {
        "operations": sizes.bulk_total,
        "batch_size": sizes.bulk_batch,
        "elapsed_s": round(elapsed, 4),
        "ops_per_s": round(sizes.bulk_total / elapsed, 1),
        "per_batch_s": [round(b, 4) for b in batches],
    }


def bench_drain(
    app: Longops,
    url: str,
    cfg: BenchConfig,
    tag: str,
    env_extra: dict[str, str] | None = None,
    launcher: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The bulk-enqueued operations, run by worker processes until every one is finished."""
    sizes = cfg.sizes
    expected = sizes.bulk_total
    is_pg = url.startswith("postgres")
    pg_before = postgres_cpu() if is_pg else {}
    children_before = children_cpu()
    self_before = self_cpu()
    machine_before = machine_busy()
    group = start_workers(
        url, sizes.workers, sizes.concurrency, cfg.workdir, tag, env_extra=env_extra,
        launcher=launcher,
    )  # fmt: skip
    try:
        finished_at = wait_finished(app, expected, group)
        pg_after = postgres_cpu() if is_pg else {}
        machine_after = machine_busy()
    finally:
        codes = stop_workers(group)
    elapsed = finished_at - group.started
    children_after = children_cpu()
    worker_user = children_after[0] - children_before[0]
    worker_sys = children_after[1] - children_before[1]
    driver_cpu = self_cpu() - self_before
    if any(codes):
        raise InvalidRunError(f"worker exit codes {codes}; log:\n{tail(group.logs[0])}")

    # The benchmark is valid only if every operation left exactly one successful attempt.
    outcomes = dict(
        sql_rows(url, "SELECT outcome, count(*) FROM longops_attempts GROUP BY outcome")
    )
    attempts = sum(outcomes.values())
    assert attempts == expected, f"{attempts} attempt rows for {expected} operations: {outcomes}"
    assert outcomes.get("success") == expected, f"not every attempt succeeded: {outcomes}"
    [(first_start, last_end, sessions)] = sql_rows(
        url,
        "SELECT min(started_at), max(ended_at), count(DISTINCT session_id) FROM longops_attempts",
    )
    span = (as_utc(last_end) - as_utc(first_start)).total_seconds()
    starts = [as_utc(r[0]) for r in sql_rows(url, "SELECT started_at FROM longops_attempts")]
    quarters = quarter_durations(sorted(starts))
    startup = as_utc(first_start).timestamp() - group.started_wall
    cpu: dict[str, float] = {
        "workers_s": round(worker_user + worker_sys, 2),
        "workers_system_s": round(worker_sys, 2),
        "driver_s": round(driver_cpu, 2),
    }
    ours = worker_user + worker_sys + driver_cpu
    if is_pg:
        pg_user, pg_sys = cpu_delta(pg_before, pg_after)
        cpu["postgres_s"] = round(pg_user + pg_sys, 2)
        cpu["postgres_system_s"] = round(pg_sys, 2)
        ours += pg_user + pg_sys
    ncpu = len(os.sched_getaffinity(0))
    busy = machine_after - machine_before
    # Workers' CPU is counted until they exit (a little after the end), the machine's until
    # the end: "other" is what processes outside the benchmark took, roughly.
    cpu["other_processes_s"] = round(max(busy - ours, 0.0), 2)
    cpu["machine_utilisation"] = round(busy / (elapsed * ncpu), 3)
    return {
        "operations": expected,
        "workers": sizes.workers,
        "concurrency": sizes.concurrency,
        "elapsed_s": round(elapsed, 4),
        "ops_per_s": round(expected / elapsed, 1),
        "worker_startup_s": round(startup, 3),
        "first_start_to_last_end_s": round(span, 4),
        "steady_ops_per_s": round(expected / span, 1) if span > 0 else None,
        "attempts": attempts,
        "attempt_outcomes": outcomes,
        "sessions": int(sessions),
        "quarter_durations_s": quarters,
        "cpu": cpu,
        "worker_exit_codes": codes,
    }


def quarter_durations(starts: Sequence[datetime]) -> list[float]:
    """Seconds each quarter of the runs took to start (in start order): a per-run cost that
    grows or shrinks as the drain goes on shows up as uneven quarters."""
    n = len(starts)
    marks = [starts[min(n * q // 4, n - 1)] for q in range(5)]
    return [round((b - a).total_seconds(), 3) for a, b in itertools.pairwise(marks)]


def bench_latency(url: str, cfg: BenchConfig, tag: str) -> dict[str, Any]:
    """Enqueue one at a time onto idle workers; started_at - created_at per operation."""
    sizes = cfg.sizes
    app = make_app(url)
    group = start_workers(url, sizes.workers, sizes.concurrency, cfg.workdir, tag)
    try:
        wait_sessions(app, sizes.workers, group)
        for _ in range(LATENCY_WARMUP):  # connections, code paths; not measured
            app.enqueue(TASK)
            time.sleep(sizes.latency_spacing_s)
        wait_finished(app, LATENCY_WARMUP, group)
        ids = []
        started = time.perf_counter()
        for i in range(sizes.latency_ops):
            # Pace the enqueues; the events measured are ordered by the database, not sleeps.
            pause = started + i * sizes.latency_spacing_s - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            ids.append(app.enqueue(TASK).id)
        wait_finished(app, LATENCY_WARMUP + sizes.latency_ops, group)
        samples: list[float] = []
        for oid in ids:
            op = app.service.get(oid)
            attempts = app.service.attempts(oid)
            if len(attempts) != 1:
                raise InvalidRunError(f"operation {oid} has {len(attempts)} attempts")
            samples.append((attempts[0].started_at - op.created_at).total_seconds())
    finally:
        codes = stop_workers(group)
        app.close()
    if any(codes):
        raise InvalidRunError(f"worker exit codes {codes}; log:\n{tail(group.logs[0])}")
    return {
        "operations": sizes.latency_ops,
        "spacing_ms": sizes.latency_spacing_s * 1000,
        "workers": sizes.workers,
        **summary_ms(samples),
    }


def run_dialect(dialect: str, cfg: BenchConfig) -> dict[str, Any]:
    results: dict[str, Any] = {}
    t0 = time.perf_counter()
    with fresh_database(dialect, "enqueue", cfg) as url:
        results["enqueue_one"] = bench_enqueue_one(url, cfg.sizes)
    log(dialect, "enqueue one-by-one", f"{results['enqueue_one']['ops_per_s']:,.0f} ops/s")
    with fresh_database(dialect, "drain", cfg) as url:
        app = make_app(url)
        try:
            results["bulk_enqueue"] = bench_bulk(app, cfg.sizes)
            log(dialect, "bulk enqueue", f"{results['bulk_enqueue']['ops_per_s']:,.0f} ops/s")
            results["drain"] = bench_drain(app, url, cfg, f"{dialect}-drain")
        finally:
            app.close()
    log(dialect, "drain", f"{results['drain']['ops_per_s']:,.0f} ops/s")
    with fresh_database(dialect, "latency", cfg) as url:
        results["latency"] = bench_latency(url, cfg, f"{dialect}-latency")
    lat = results["latency"]
    log(dialect, "enqueue->start", f"p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms")
    results["wall_s"] = round(time.perf_counter() - t0, 1)
    return results


HEADLINES = {
    "enqueue_one": "ops_per_s",
    "bulk_enqueue": "ops_per_s",
    "drain": "ops_per_s",
    "latency": "p50_ms",
}


def median_of(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per figure, the repetition with the median headline value (all its details kept),
    plus every repetition's headline value under ``runs``."""
    out: dict[str, Any] = {}
    for figure, key in HEADLINES.items():
        ordered = sorted(runs, key=lambda r: float(r[figure][key]))
        chosen = ordered[(len(ordered) - 1) // 2]
        out[figure] = {**chosen[figure], "runs": [r[figure][key] for r in runs]}
    out["repeat"] = len(runs)
    out["wall_s"] = round(sum(r["wall_s"] for r in runs), 1)
    return out


def log(dialect: str, figure: str, text: str) -> None:
    print(f"[{dialect:8}] {figure:20} {text}", flush=True)


# -- reporting ----------------------------------------------------------------------------------
def lookup(results: dict[str, Any], key: str) -> float:
    value: Any = results
    for part in key.split("."):
        value = value[part]
    return float(value)


def evaluate(dialect: str, results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for t in TARGETS[dialect]:
        actual = lookup(results, t.key)
        met = actual >= t.value if t.op == ">=" else actual <= t.value
        out.append(
            {
                "figure": t.figure,
                "key": t.key,
                "target": f"{t.op} {t.value:g} {t.unit}",
                "actual": actual,
                "met": met,
            }
        )
    return out


def machine_info(pg_admin_url: str | None) -> dict[str, Any]:
    cpu_model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    pg_version = None
    if pg_admin_url:
        with contextlib.suppress(psycopg.Error), psycopg.connect(pg_admin_url) as conn:
            row = conn.execute("SELECT version()").fetchone()
            pg_version = row[0] if row else None
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_version,
        "psycopg": psycopg.__version__,
        "longops": getattr(longops, "__version__", None) or _dist_version(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "source": source_fingerprint(),
    }


def source_fingerprint() -> str:
    """Which longops code ran: a hash of ``src/longops`` (.py and .sql) and its newest file's
    time. Other work changes the code under the benchmark; results name the version."""
    root = PROJECT / "src" / "longops"
    digest = hashlib.sha256()
    newest = 0.0
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".sql") and path.is_file():
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
            newest = max(newest, path.stat().st_mtime)
    changed = datetime.fromtimestamp(newest, UTC).isoformat(timespec="seconds")
    return f"sha256:{digest.hexdigest()[:16]} (newest file {changed})"


def _dist_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("longops")
    except PackageNotFoundError:
        return None


def fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


def write_markdown(path: Path, docs: dict[str, dict[str, Any]]) -> None:
    any_doc = next(iter(docs.values()))
    m = any_doc["machine"]
    lines = [
        "# longops core benchmark",
        "",
        f"- date: {m['date']}" + (" (quick run: 1/10 sizes)" if any_doc["quick"] else ""),
        f"- each figure is the median of {any_doc['results'].get('repeat', 1)} repetitions"
        " (all listed); the drain's details are those of the median run",
        f"- machine: {m['nproc']} CPUs, {m['cpu_model']}, {m['platform']}",
        f"- Python {m['python']}, SQLite {m['sqlite']}, psycopg {m['psycopg']}",
        f"- PostgreSQL: {m['postgresql'] or 'n/a'}",
        f"- longops source: {m.get('source', 'n/a')}",
        "- workers and database on the same machine; every attempt is logged",
        "- produced by `benchmarks/bench_core.py`; see `benchmarks/README.md`",
        "",
        "| figure | " + " | ".join(docs) + " |",
        "|---|" + "---|" * len(docs),
    ]

    def row(label: str, key: str, unit: str = "") -> None:
        cells = []
        for doc in docs.values():
            value: Any = doc["results"]
            try:
                for part in key.split("."):
                    value = value[part]
            except (KeyError, TypeError):
                cells.append("n/a")
                continue
            if isinstance(value, list):
                cells.append(" / ".join(fmt(v) for v in value) + unit)
            else:
                cells.append(fmt(float(value)) + unit)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    row("enqueue one-by-one (ops/s)", "enqueue_one.ops_per_s")
    row("  every repetition", "enqueue_one.runs")
    row("  per call p50 (ms)", "enqueue_one.per_call.p50_ms")
    row("bulk enqueue (ops/s)", "bulk_enqueue.ops_per_s")
    row("  every repetition", "bulk_enqueue.runs")
    shape = {(d["sizes"]["workers"], d["sizes"]["concurrency"]) for d in docs.values()}
    slots = " / ".join(f"{w} workers x {c}" for w, c in sorted(shape))
    row(f"drain, {slots} (ops/s)", "drain.ops_per_s")
    row("  every repetition", "drain.runs")
    row("  drain wall time (s)", "drain.elapsed_s")
    row("  worker start-up (s)", "drain.worker_startup_s")
    row("  first start -> last end (ops/s)", "drain.steady_ops_per_s")
    row("  each quarter of the runs (s)", "drain.quarter_durations_s")
    row("  CPU s: workers", "drain.cpu.workers_s")
    row("    of which system (kernel)", "drain.cpu.workers_system_s")
    row("  CPU s: postgres", "drain.cpu.postgres_s")
    row("    of which system (kernel)", "drain.cpu.postgres_system_s")
    row("  CPU s: driver (polling)", "drain.cpu.driver_s")
    row("  CPU s: other processes", "drain.cpu.other_processes_s")
    row("  machine CPU utilisation", "drain.cpu.machine_utilisation")
    row("enqueue->start p50 (ms)", "latency.p50_ms")
    row("  every repetition", "latency.runs")
    row("enqueue->start p95 (ms)", "latency.p95_ms")
    row("enqueue->start p99 (ms)", "latency.p99_ms")
    lines += ["", "## Targets (2-core machine, workers and database on the same box)", ""]
    lines += ["| database | figure | target | actual | met |", "|---|---|---|---|---|"]
    for dialect, doc in docs.items():
        for t in doc["targets"]:
            verdict = "yes" if t["met"] else "**no**"
            lines.append(
                f"| {dialect} | {t['figure']} | {t['target']} | {fmt(t['actual'])} | {verdict} |"
            )
    lines += [
        "",
        "Targets are recorded, not asserted. Bottlenecks behind missed targets: "
        "`profile-notes.md`.",
        "",
    ]
    path.write_text("\n".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="about 1/10 of the sizes")
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="repetitions of every phase; each figure is the median (default 3, --quick 1)",
    )
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get("LONGOPS_BENCH_PG_URL", DEFAULT_PG_ADMIN_URL),
        help="a PostgreSQL URL allowed to CREATE/DROP DATABASE (default %(default)s)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=FULL.concurrency,
        help="slots per worker process (default %(default)s); results of another value are "
        "written with a -c<N> suffix",
    )
    args = parser.parse_args(argv)
    dialects = DIALECTS if args.db == "both" else (args.db,)
    sizes = replace(QUICK if args.quick else FULL, concurrency=args.concurrency)
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    suffix = ".quick" if args.quick else ""
    if args.concurrency != FULL.concurrency:
        suffix = f"-c{args.concurrency}{suffix}"
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="longops-bench-"))
    machine = machine_info(args.pg_admin_url if "postgres" in dialects else None)
    print(f"longops core benchmark: {', '.join(dialects)}; sizes {asdict(sizes)}", flush=True)
    print(f"machine: {machine['nproc']} CPUs, {machine['cpu_model']}", flush=True)
    cfg = BenchConfig(args.pg_admin_url, workdir, sizes)
    try:
        for dialect in dialects:
            runs = []
            for i in range(args.repeat):
                if args.repeat > 1:
                    print(f"[{dialect:8}] repetition {i + 1} of {args.repeat}", flush=True)
                runs.append(run_dialect(dialect, cfg))
            results = median_of(runs)
            doc = {
                "dialect": dialect,
                "quick": args.quick,
                "sizes": asdict(sizes),
                "machine": machine,
                "results": results,
                "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
                "targets": evaluate(dialect, results),
            }
            (args.out / f"core-{dialect}{suffix}.json").write_text(json.dumps(doc, indent=2))
    except BaseException:
        print(f"worker logs kept in {workdir}", file=sys.stderr)
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    # The summary covers both databases: a dialect not run now keeps its last results.
    docs = {}
    for dialect in DIALECTS:
        path = args.out / f"core-{dialect}{suffix}.json"
        if path.exists():
            docs[dialect] = json.loads(path.read_text())
    write_markdown(args.out / f"core{suffix}.md", docs)
    for dialect, doc in docs.items():
        for t in doc["targets"]:
            state = "met" if t["met"] else "MISSED"
            print(f"target {dialect} {t['figure']} {t['target']}: {fmt(t['actual'])} -> {state}")
    print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
