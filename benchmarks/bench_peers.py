"""longops beside its Python peers (procrastinate, PgQueuer, Huey) in one run.

Run from the project root::

    .venv/bin/python benchmarks/bench_peers.py [--quick] [--repeat N] [--jobs N]
        [--only longops,pgqueuer,procrastinate,huey] [--db postgres|sqlite|both]
        [--figures enqueue,drain,latency]

The peers are installed from PyPI into a venv of their own, ``benchmarks/.peers-venv``
(created on first use, git-ignored); longops runs from the project's venv. Every system runs
the same no-op job, which leaves a mark (``peers/marks.py``: its job number and start time
appended to a file of its process), with the same worker resources: 2 worker processes,
once with one job in flight per process and once with each system's recommended settings.
Every phase gets a fresh database (PostgreSQL: ``CREATE DATABASE``; SQLite: a new file) and
each system's schema set up the way its docs say. After a drain the marks are checked:
exactly N, no job twice, none missing; otherwise the run fails.

Figures: PostgreSQL one-by-one enqueue, bulk enqueue, drain (both settings), enqueue->start
p50 (idle workers, paced enqueues); SQLite (longops against ``SqliteHuey``) one-by-one
enqueue, drain, enqueue->start p50. Each figure is the median of ``--repeat`` repetitions.
Results: ``benchmarks/results/peers.md`` and ``peers.json`` (``peers.quick.*`` with
``--quick``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_api import database
from bench_core import machine_info, percentile

HERE = Path(__file__).resolve().parent
PEERS_DIR = HERE / "peers"
PROJECT = HERE.parent
RESULTS = HERE / "results"
PEERS_VENV = HERE / ".peers-venv"
PEER_PACKAGES = ("procrastinate", "pgqueuer", "huey", "psycopg[binary]", "asyncpg")
DEFAULT_PG_ADMIN_URL = "postgresql://root@127.0.0.1:5432/postgres"
SYSTEMS = ("longops", "pgqueuer", "procrastinate", "huey")
BEFORE = "longops-before"
"""longops from another source tree (``--before-src``): the code before a change, run
beside it in the same run (the same venv, that tree's ``src`` first on ``PYTHONPATH``)."""
LONGOPS_LIKE = ("longops", BEFORE)
WORKERS = 2
LONGOPS_RECOMMENDED = 8
"""longops's recommended slots per worker process (``--concurrency 8``): what
``docs/deploy.md`` ("How many slots and how many processes") tells users, not a setting
tuned for this benchmark."""
PHASE_TIMEOUT = 300.0
BULK_BATCH = 5_000
LATENCY_WARMUP = 10
LATENCY_SPACING_S = 0.02


class InvalidRunError(RuntimeError):
    """A result that cannot be trusted: a job lost or run twice, a dead worker, a timeout."""


@dataclass(frozen=True, slots=True)
class Sizes:
    drain: int
    enqueue_one: int
    latency: int


def sizes_for(jobs: int, quick: bool) -> Sizes:
    if quick:
        return Sizes(drain=jobs, enqueue_one=min(jobs, 200), latency=20)
    return Sizes(drain=jobs, enqueue_one=max(jobs // 10, 200), latency=200)


# -- the systems --------------------------------------------------------------------------------
def python_of(system: str) -> str:
    return sys.executable if system in LONGOPS_LIKE else str(PEERS_VENV / "bin" / "python")


def bin_of(system: str, name: str) -> str:
    folder = Path(sys.executable).parent if system in LONGOPS_LIKE else PEERS_VENV / "bin"
    return str(folder / name)


def worker_command(system: str, setting: str, url: str) -> list[list[str]]:
    """The worker processes' command lines (one list per process started by the driver).

    ``setting`` is ``one`` (one job in flight per process) or ``recommended``."""
    if system in LONGOPS_LIKE:
        slots = "1" if setting == "one" else str(LONGOPS_RECOMMENDED)
        cmd = [
            bin_of(system, "longops"),
            "--app",
            "jobs_longops:app",
            "--database-url",
            url,
            "worker",
            "--concurrency",
            slots,
        ]
        return [cmd] * WORKERS
    if system == "pgqueuer":
        # Its least: it refuses a task limit under twice the batch size.
        extra = ["--batch-size", "1", "--max-concurrent-tasks", "2"] if setting == "one" else []
        # What `pgq run` calls (its CLI fails on start in pgqueuer 1.6.0: see pgq_run.py).
        run = [python_of(system), str(PEERS_DIR / "pgq_run.py"), "jobs_pgqueuer:create"]
        return [[*run, *extra]] * WORKERS
    if system == "procrastinate":
        # Its default is one job at a time per worker; that is also its recommended setting.
        cmd = [
            bin_of(system, "procrastinate"),
            "--app",
            "jobs_procrastinate.app",
            "worker",
            "--concurrency",
            "1",
        ]
        return [cmd] * WORKERS
    if system == "huey":
        # One consumer with two worker processes (its master process only schedules).
        return [
            [bin_of(system, "huey_consumer"), "jobs_huey.huey", "-w", str(WORKERS), "-k", "process"]
        ]
    raise ValueError(f"unknown system {system!r}")


SOURCES: dict[str, Path] = {}
"""The ``src`` folder a longops system runs when not this tree's: ``longops-before``'s
(``--before-src``), and ``longops``'s with ``--longops-src`` (a snapshot, so that editing
the tree during a long run changes nothing)."""


def system_env(url: str, marks: Path, system: str = "") -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PEERS_DIR)
    if system in SOURCES:
        env["PYTHONPATH"] += os.pathsep + str(SOURCES[system])
    env["BENCH_MARKS_DIR"] = str(marks)
    env["BENCH_URL"] = url
    if url.startswith("sqlite:"):
        env["BENCH_SQLITE_PATH"] = url.removeprefix("sqlite:///")
    return env


def client(
    system: str, action: str, url: str, marks: Path, first: int, count: int, arg: float
) -> float:
    """Run one client action in the system's venv; seconds it reported."""
    out = subprocess.run(
        [
            python_of(system),
            str(PEERS_DIR / "client.py"),
            system,
            action,
            url,
            str(first),
            str(count),
            str(arg),
        ],
        env=system_env(url, marks, system),
        cwd=PEERS_DIR,
        capture_output=True,
        text=True,
        timeout=PHASE_TIMEOUT,
    )
    if out.returncode != 0:
        raise InvalidRunError(f"{system} {action} failed:\n{out.stderr[-3000:]}")
    return float(json.loads(out.stdout.strip().splitlines()[-1])["elapsed_s"])


def install_schema(system: str, url: str, marks: Path) -> None:
    """Each system's schema, the way its docs say."""
    env = system_env(url, marks, system)
    if system == "pgqueuer":
        cmd = [bin_of(system, "pgq"), "--pg-dsn", url, "install"]
    elif system == "procrastinate":
        cmd = [
            bin_of(system, "procrastinate"),
            "--app",
            "jobs_procrastinate.app",
            "schema",
            "--apply",
        ]
    else:
        client(system, "prepare", url, marks, 0, 0, 0)
        return
    out = subprocess.run(cmd, env=env, cwd=PEERS_DIR, capture_output=True, text=True)
    if out.returncode != 0:
        raise InvalidRunError(f"{system} schema failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")


def compile_sources(trees: Sequence[Path]) -> None:
    """Byte-compile the longops source trees (and the jobs' modules) before anything is
    timed, as installing a package does. The peers arrive from PyPI compiled by pip; longops
    runs from its source tree (an editable install), whose modules a process otherwise
    compiles at every start where ``PYTHONDONTWRITEBYTECODE`` is set (it is on the machines
    these runs were measured on): about 0.5 s of CPU per worker process, paid again by every
    worker start of every drain."""
    for tree in trees:
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", "-j", "0", str(tree)],
            check=True,
            stdout=subprocess.DEVNULL,
        )


def ensure_peers_venv() -> None:
    """Create ``benchmarks/.peers-venv`` with the peers from PyPI, once."""
    if (PEERS_VENV / "bin" / "pgq").exists() and (PEERS_VENV / "bin" / "huey_consumer").exists():
        return
    print(f"installing {', '.join(PEER_PACKAGES)} into {PEERS_VENV}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    subprocess.run([str(PEERS_VENV / "bin" / "pip"), "install", "-q", *PEER_PACKAGES], check=True)


def peer_versions() -> dict[str, str]:
    if not (PEERS_VENV / "bin" / "python").exists():
        return {}
    code = (
        "import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in "
        "('procrastinate', 'pgqueuer', 'huey', 'psycopg', 'asyncpg')}))"
    )
    out = subprocess.run(
        [str(PEERS_VENV / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True
    )
    versions: dict[str, str] = json.loads(out.stdout)
    return versions


# -- databases and marks ------------------------------------------------------------------------
@contextlib.contextmanager
def fresh_database(dialect: str, tag: str, admin_url: str, workdir: Path) -> Iterator[str]:
    if dialect == "sqlite":
        path = workdir / f"{tag}.db"
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    with database(admin_url, f"peers_{tag}_{os.getpid()}") as url:
        yield url


class Marks:
    """The marks the jobs left in one folder, read incrementally (new bytes only)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.offsets: dict[Path, int] = {}
        self.partial: dict[Path, bytes] = {}
        self.seen: list[tuple[int, float, float]] = []

    def poll(self) -> int:
        for path in self.folder.glob("*.txt"):
            with path.open("rb") as f:
                f.seek(self.offsets.get(path, 0))
                data = self.partial.pop(path, b"") + f.read()
                self.offsets[path] = f.tell()
            *lines, rest = data.split(b"\n")
            if rest:
                self.partial[path] = rest
            for line in lines:
                n, enqueued, started = line.split()
                self.seen.append((int(n), float(enqueued), float(started)))
        return len(self.seen)

    def started(self, first: int, count: int) -> dict[int, tuple[float, float]]:
        """(enqueue, start) time of each job in ``first .. first+count-1``; fails unless
        each ran exactly once."""
        self.poll()
        wanted = [(n, (e, s)) for n, e, s in self.seen if first <= n < first + count]
        times = dict(wanted)
        if len(wanted) != count or len(times) != count:
            twice = len(wanted) - len(times)
            raise InvalidRunError(
                f"expected each of {count} jobs once: {len(times)} distinct ran, {twice} twice"
            )
        return times


@dataclass
class Workers:
    procs: list[subprocess.Popen[bytes]]
    logs: list[Path]
    started: float

    def check_alive(self) -> None:
        for proc, log in zip(self.procs, self.logs, strict=True):
            if proc.poll() is not None:
                text = log.read_text(errors="replace")[-3000:]
                raise InvalidRunError(f"worker exited with {proc.returncode}:\n{text}")


def start_workers(
    system: str, setting: str, url: str, marks: Path, logdir: Path, tag: str
) -> Workers:
    env = system_env(url, marks, system)
    logs = [logdir / f"{tag}-{i}.log" for i, _ in enumerate(worker_command(system, setting, url))]
    started = time.perf_counter()
    procs = []
    for cmd, log in zip(worker_command(system, setting, url), logs, strict=True):
        with log.open("wb") as out:
            procs.append(
                subprocess.Popen(
                    cmd,
                    env=env,
                    cwd=PEERS_DIR,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    return Workers(procs, logs, started)


def stop_workers(workers: Workers) -> list[int]:
    """SIGTERM (each system's graceful stop), then SIGKILL after 20 s."""
    for proc in workers.procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    codes = []
    for proc in workers.procs:
        try:
            codes.append(proc.wait(timeout=20))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            codes.append(proc.wait())
    return codes


def wait_marks(marks: Marks, expected: int, workers: Workers) -> float:
    """Poll until ``expected`` marks are in; ``perf_counter()`` when the last was seen."""
    deadline = time.perf_counter() + PHASE_TIMEOUT
    while True:
        if marks.poll() >= expected:
            return time.perf_counter()
        workers.check_alive()
        if time.perf_counter() > deadline:
            raise InvalidRunError(f"{len(marks.seen)} of {expected} marks after {PHASE_TIMEOUT} s")
        time.sleep(0.002)


# -- the phases ---------------------------------------------------------------------------------
@dataclass
class Ctx:
    admin_url: str
    workdir: Path
    sizes: Sizes


def phase_enqueue_one(ctx: Ctx, system: str, dialect: str) -> dict[str, Any]:
    marks = Path(tempfile.mkdtemp(dir=ctx.workdir))
    with fresh_database(dialect, f"{system}_one", ctx.admin_url, ctx.workdir) as url:
        install_schema(system, url, marks)
        elapsed = client(system, "one", url, marks, 0, ctx.sizes.enqueue_one, 0.0)
    return {
        "jobs": ctx.sizes.enqueue_one,
        "elapsed_s": round(elapsed, 4),
        "jobs_per_s": round(ctx.sizes.enqueue_one / elapsed, 1),
    }


def phase_drain(ctx: Ctx, system: str, dialect: str, setting: str) -> dict[str, Any]:
    """Bulk-fill N jobs (timed: the bulk figure), then start the workers and time them
    until the N-th mark; every job checked run exactly once."""
    n = ctx.sizes.drain
    marks_dir = Path(tempfile.mkdtemp(dir=ctx.workdir))
    tag = f"{system}_{setting}"
    with fresh_database(dialect, tag, ctx.admin_url, ctx.workdir) as url:
        install_schema(system, url, marks_dir)
        bulk_s = client(system, "bulk", url, marks_dir, 0, n, BULK_BATCH)
        marks = Marks(marks_dir)
        workers = start_workers(system, setting, url, marks_dir, ctx.workdir, f"{dialect}-{tag}")
        try:
            done = wait_marks(marks, n, workers)
        finally:
            codes = stop_workers(workers)
        starts = sorted(s for _, s in marks.started(0, n).values())
    elapsed = done - workers.started
    span = starts[-1] - starts[0]
    return {
        "jobs": n,
        "workers": worker_command(system, setting, "URL")[0][1:],
        "elapsed_s": round(elapsed, 4),
        "jobs_per_s": round(n / elapsed, 1),
        "first_to_last_start_jobs_per_s": round(n / span, 1) if span > 0 else None,
        "bulk_jobs_per_s": round(n / bulk_s, 1),
        "verified": f"{n} jobs, each run exactly once",
        "worker_exit_codes": codes,
    }


def phase_latency(ctx: Ctx, system: str, dialect: str) -> dict[str, Any]:
    """Idle workers (recommended settings), paced one-by-one enqueues; per job,
    mark time - the enqueue's ``time.time()`` just before the call."""
    marks_dir = Path(tempfile.mkdtemp(dir=ctx.workdir))
    m = ctx.sizes.latency
    with fresh_database(dialect, f"{system}_lat", ctx.admin_url, ctx.workdir) as url:
        install_schema(system, url, marks_dir)
        marks = Marks(marks_dir)
        workers = start_workers(
            system, "recommended", url, marks_dir, ctx.workdir, f"{dialect}-{system}-latency"
        )
        try:
            # Warm-up jobs prove the workers are up and listening; not measured.
            client(system, "one", url, marks_dir, 0, LATENCY_WARMUP, LATENCY_SPACING_S)
            wait_marks(marks, LATENCY_WARMUP, workers)
            client(system, "one", url, marks_dir, 1_000_000, m, LATENCY_SPACING_S)
            wait_marks(marks, LATENCY_WARMUP + m, workers)
        finally:
            stop_workers(workers)
        started = marks.started(1_000_000, m)
    waits_ms = [(s - e) * 1000 for e, s in started.values()]
    return {
        "jobs": m,
        "spacing_ms": LATENCY_SPACING_S * 1000,
        "p50_ms": round(percentile(waits_ms, 50), 2),
        "p95_ms": round(percentile(waits_ms, 95), 2),
        "p99_ms": round(percentile(waits_ms, 99), 2),
    }


@dataclass(frozen=True, slots=True)
class Figure:
    key: str
    dialect: str
    kind: str  # enqueue, drain, latency
    label: str
    headline: str  # the value compared
    higher_is_better: bool
    systems: tuple[str, ...]
    setting: str = "recommended"


PG_PEERS = ("longops", "pgqueuer", "procrastinate")
FIGURES = (
    Figure(
        "pg_enqueue_one",
        "postgres",
        "enqueue",
        "PostgreSQL one-by-one enqueue (jobs/s)",
        "jobs_per_s",
        True,
        PG_PEERS,
    ),
    Figure(
        "pg_drain_one",
        "postgres",
        "drain",
        "PostgreSQL drain, 2 processes x 1 job in flight (jobs/s)",
        "jobs_per_s",
        True,
        PG_PEERS,
        "one",
    ),
    Figure(
        "pg_bulk",
        "postgres",
        "drain",
        "PostgreSQL bulk enqueue (jobs/s)",
        "bulk_jobs_per_s",
        True,
        PG_PEERS,
        "one",
    ),
    Figure(
        "pg_drain_recommended",
        "postgres",
        "drain",
        "PostgreSQL drain, 2 processes, each system's recommended settings (jobs/s)",
        "jobs_per_s",
        True,
        ("longops", "pgqueuer"),
    ),
    Figure(
        "pg_latency",
        "postgres",
        "latency",
        "PostgreSQL enqueue->start p50 (ms)",
        "p50_ms",
        False,
        PG_PEERS,
    ),
    Figure(
        "sqlite_enqueue_one",
        "sqlite",
        "enqueue",
        "SQLite one-by-one enqueue (jobs/s)",
        "jobs_per_s",
        True,
        ("longops", "huey"),
    ),
    Figure(
        "sqlite_drain",
        "sqlite",
        "drain",
        "SQLite drain, 2 worker processes (jobs/s)",
        "jobs_per_s",
        True,
        ("longops", "huey"),
        "one",
    ),
    Figure(
        "sqlite_latency",
        "sqlite",
        "latency",
        "SQLite enqueue->start p50 (ms)",
        "p50_ms",
        False,
        ("longops", "huey"),
    ),
)


def run_once(ctx: Ctx, figures: Sequence[Figure], only: Sequence[str]) -> dict[str, Any]:
    """One repetition of every selected figure; ``{figure: {system: details}}``."""
    out: dict[str, dict[str, Any]] = {}
    drains: dict[tuple[str, str, str], dict[str, Any]] = {}
    for fig in figures:
        for system in fig.systems:
            if system not in only:
                continue
            if fig.kind == "enqueue":
                result = phase_enqueue_one(ctx, system, fig.dialect)
            elif fig.kind == "drain":
                # The bulk figure is the fill of the "one in flight" drain: one phase, two figures.
                cache = (system, fig.dialect, fig.setting)
                if cache not in drains:
                    drains[cache] = phase_drain(ctx, system, fig.dialect, fig.setting)
                result = drains[cache]
            else:
                result = phase_latency(ctx, system, fig.dialect)
            out.setdefault(fig.key, {})[system] = result
            print(f"  {fig.label:75} {system:14} {result[fig.headline]:>10,}", flush=True)
    return out


def medians(runs: Sequence[dict[str, Any]], figures: Sequence[Figure]) -> dict[str, Any]:
    """Per figure and system: the repetition with the median headline (details kept) and
    every repetition's headline under ``runs``."""
    out: dict[str, Any] = {}
    for fig in figures:
        for system in fig.systems:
            values = [r[fig.key][system] for r in runs if system in r.get(fig.key, {})]
            if not values:
                continue
            ordered = sorted(values, key=lambda v: float(v[fig.headline]))
            chosen = dict(ordered[(len(ordered) - 1) // 2])
            headlines = [v[fig.headline] for v in values]
            chosen["median"] = statistics.median(headlines)
            chosen["runs"] = headlines
            out.setdefault(fig.key, {})[system] = chosen
    return out


def ratios(results: dict[str, Any], figures: Sequence[Figure]) -> list[dict[str, Any]]:
    rows = []
    for fig in figures:
        per = results.get(fig.key, {})
        if "longops" not in per:
            continue
        ours = float(per["longops"]["median"])
        for system, peer in per.items():
            if system == "longops":
                continue
            theirs = float(peer["median"])
            ratio = ours / theirs if theirs else float("inf")
            ahead = ratio > 1 if fig.higher_is_better else ratio < 1
            rows.append(
                {
                    "figure": fig.key,
                    "label": fig.label,
                    "peer": system,
                    "longops": ours,
                    "peer_value": theirs,
                    "longops_over_peer": round(ratio, 3),
                    "longops_ahead": ahead,
                }
            )
    return rows


def fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


def write_markdown(path: Path, doc: dict[str, Any], figures: Sequence[Figure]) -> None:
    m = doc["machine"]
    lines = [
        "# longops beside its Python peers",
        "",
        f"- date: {m['date']}" + (" (quick run: small N, smoke test only)" if doc["quick"] else ""),
        f"- **machine: {m['nproc']} CPUs ({m['cpu_model']}), shared; load average at start "
        f"{m['loadavg_at_start']}, at end {doc['loadavg_at_end']}** -- absolute figures depend "
        "on the load, compare the ratios of the same run",
        f"- jobs per drain: {doc['sizes']['drain']:,}; one-by-one enqueue: "
        f"{doc['sizes']['enqueue_one']:,}; latency: {doc['sizes']['latency']} paced "
        f"{LATENCY_SPACING_S * 1000:g} ms apart after {LATENCY_WARMUP} warm-up jobs",
        f"- each figure is the median of {doc['repeat']} repetition(s) (of "
        f"{doc['repeat_asked']} asked), all listed",
        f"- Python {m['python']}, SQLite {m['sqlite']}, PostgreSQL: {m['postgresql'] or 'n/a'}",
        f"- longops source: {m['source']}; peers (PyPI): "
        + ", ".join(f"{k} {v}" for k, v in doc["peer_versions"].items()),
        "- the same no-op job everywhere, leaving a mark (job number, enqueue and start time) in a "
        "file of its process; after every drain each job is checked run exactly once",
        "- worker settings: 2 worker processes per system. One job in flight: longops "
        "`worker --concurrency 1`, PgQueuer `pgq run --batch-size 1 --max-concurrent-tasks 2` "
        "(its least; its calls, `peers/pgq_run.py`), "
        f"procrastinate `worker --concurrency 1`. Recommended: longops `worker --concurrency "
        f"{LONGOPS_RECOMMENDED}`, PgQueuer `pgq run` defaults (batch 10, no task limit), "
        "procrastinate its default (one job at a time, listen/notify). SQLite: longops "
        "`--concurrency 1` x 2 processes (latency: `--concurrency 8`) against `huey_consumer "
        "-w 2 -k process` (defaults otherwise, polling from 100 ms)",
        "- longops claims ahead while runs are short (`worker/session.py` `_prefetch`): in "
        "batches of 32 runs (or `--concurrency`, if more), the next claimed while a batch still "
        "waits, so up to 64 wait in a worker's queue beyond its slots, "
        "claimed and with their attempt rows written; the jobs in flight stay at "
        "`--concurrency`. PgQueuer with its defaults fetches 10 per batch the same way; at "
        "`--batch-size 1` it fetches one at a time",
        "- longops's source tree is byte-compiled before the run (`compile_sources`), as "
        "an installed package is; the peers come compiled from PyPI",
        "- produced by `benchmarks/bench_peers.py`; see `benchmarks/README.md`",
        "",
        "| figure | system | median | every repetition |",
        "|---|---|---|---|",
    ]
    for fig in figures:
        for system, res in doc["results"].get(fig.key, {}).items():
            runs = " / ".join(fmt(float(v)) for v in res["runs"])
            lines.append(f"| {fig.label} | {system} | {fmt(float(res['median']))} | {runs} |")
    lines += [
        "",
        "## Ratios (longops / peer, medians of the same run)",
        "",
        "| figure | peer | longops | peer | longops / peer | longops ahead |",
        "|---|---|---|---|---|---|",
    ]
    for r in doc["ratios"]:
        lines.append(
            f"| {r['label']} | {r['peer']} | {fmt(r['longops'])} | {fmt(r['peer_value'])} | "
            f"{r['longops_over_peer']:.2f}x | {'yes' if r['longops_ahead'] else 'no'} |"
        )
    lines += [
        "",
        "For latency (ms) lower is better: a ratio below 1 means longops starts jobs sooner.",
        "",
    ]
    path.write_text("\n".join(lines))


def report(
    args: argparse.Namespace,
    machine: dict[str, Any],
    sizes: Sizes,
    only: Sequence[str],
    figures: Sequence[Figure],
    runs: Sequence[dict[str, Any]],
    repeat: int,
) -> dict[str, Any]:
    results = medians(runs, figures)
    return {
        "quick": args.quick,
        "repeat": len(runs),
        "repeat_asked": repeat,
        "sizes": asdict(sizes),
        "systems": list(only),
        "machine": machine,
        "peer_versions": peer_versions(),
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "longops_recommended_concurrency": LONGOPS_RECOMMENDED,
        "results": results,
        "ratios": ratios(results, figures),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small N, 1 repetition")
    parser.add_argument("--repeat", type=int, default=None, help="default 3, --quick 1")
    parser.add_argument("--jobs", type=int, default=None, help="jobs per drain (20000; quick 500)")
    parser.add_argument("--only", default=",".join(SYSTEMS), help="systems, comma-separated")
    parser.add_argument("--db", choices=("postgres", "sqlite", "both"), default="both")
    parser.add_argument(
        "--figures", default="enqueue,drain,latency", help="kinds of figure, comma-separated"
    )
    parser.add_argument(
        "--pg-admin-url", default=os.environ.get("LONGOPS_BENCH_PG_URL", DEFAULT_PG_ADMIN_URL)
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--before-src",
        type=Path,
        default=None,
        help="also run longops from this src folder (the code before a change) as "
        f"{BEFORE}, in the same run",
    )
    parser.add_argument(
        "--longops-src",
        type=Path,
        default=None,
        help="run longops from this src folder instead of this tree's",
    )
    parser.add_argument(
        "--name", default=None, help="result file stem (default peers, or peers.quick)"
    )
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    jobs = args.jobs or (500 if args.quick else 20_000)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    kinds = {k.strip() for k in args.figures.split(",")}
    unknown = set(only) - set(SYSTEMS)
    if unknown or repeat < 1 or jobs < 1 or not kinds <= {"enqueue", "drain", "latency"}:
        parser.error(
            f"--only must name {SYSTEMS}; --repeat and --jobs >= 1; --figures of "
            "enqueue, drain, latency"
        )
    dialects = ("postgres", "sqlite") if args.db == "both" else (args.db,)
    if args.longops_src is not None:
        SOURCES["longops"] = args.longops_src.resolve()
    if args.before_src is not None:
        SOURCES[BEFORE] = args.before_src.resolve()
        only.append(BEFORE)
    figures = [
        dataclasses.replace(f, systems=(f.systems[0], BEFORE, *f.systems[1:]))
        if args.before_src is not None
        else f
        for f in FIGURES
        if f.dialect in dialects and f.kind in kinds and any(s in only for s in f.systems)
    ]
    if any(s not in LONGOPS_LIKE for s in only):
        ensure_peers_venv()
    compile_sources([PROJECT / "src", *SOURCES.values(), PEERS_DIR])
    sizes = sizes_for(jobs, args.quick)
    machine = machine_info(args.pg_admin_url if "postgres" in dialects else None)
    print(
        f"peers benchmark: {only}, {asdict(sizes)}, repeat {repeat}; "
        f"load {machine['loadavg_at_start']}",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="longops-peers-"))
    ctx = Ctx(args.pg_admin_url, workdir, sizes)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.name or ("peers.quick" if args.quick else "peers")
    try:
        runs: list[dict[str, Any]] = []
        for i in range(repeat):
            print(f"repetition {i + 1} of {repeat}", flush=True)
            runs.append(run_once(ctx, figures, only))
            # Written after every repetition: a long run stopped early keeps what it measured.
            doc = report(args, machine, sizes, only, figures, runs, repeat)
            (args.out / f"{stem}.json").write_text(json.dumps(doc, indent=2))
            write_markdown(args.out / f"{stem}.md", doc, figures)
    except BaseException:
        print(f"worker logs kept in {workdir}", file=sys.stderr)
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    for r in doc["ratios"]:
        print(f"{r['label']}: longops / {r['peer']} = {r['longops_over_peer']:.2f}x")
    print(f"results in {args.out / stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
