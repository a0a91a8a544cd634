"""REST API load benchmark: concurrent API clients reading operations from ``longops serve
--workers 2`` on PostgreSQL, the code of a baseline ref against this tree, measured in the
same run so the ratio holds on a loaded machine.

Run from the project root::

    .venv/bin/python benchmarks/bench_api.py              # 50 clients, 30 s a variant, 2 rounds
    .venv/bin/python benchmarks/bench_api.py --sse 200    # the same with 200 SSE clients attached
    .venv/bin/python benchmarks/bench_api.py --quick      # 10 clients, 5 s, 1 round (smoke)

What it does, per variant (``baseline``: the ``--baseline`` git ref's ``src/`` exported to a
temporary folder; ``current``: this tree), alternating A/B for ``--rounds`` rounds:

1. a fresh, migrated PostgreSQL database ``bench_api_<pid>_<variant>`` (dropped afterwards)
   with a company BENCH, 1,000 operations of ``bench.noop`` (half to run now, half scheduled
   for tomorrow: ready, so their wait reason is derived on every read), a user with
   JOBQUEUE-VIEW in BENCH and an API token, all made by the variant's own code;
   ``ANALYZE`` once the server's worker has run the due ones (statistics, as a database
   in service has them);
2. one ``longops serve --workers W`` (``--workers``, default 2: a worker session with that
   many slots in the server, as the issue asks) on loopback, a free port; the measurement
   starts once the worker has run the operations due now;
3. ``--clients`` keep-alive connections (``wrk`` when installed, else httpx on asyncio) for
   ``--seconds``: four in five requests ``GET /v1/companies/BENCH/operations/{id}`` of a
   random operation, one in five the first page of ``GET .../operations?pageSize=20``.

``--processes N`` (default 2) adds a variant ``current-Np``: this tree with
``longops serve --processes N`` (N server processes on the port). ``--sse N`` keeps N SSE
clients on the company's live stream while the load runs (results then ``api.sse<N>.*``).

Figures: requests/s, latency p50/p95/p99 (wrk's, or the client's own), non-2xx answers,
the server's CPU milliseconds per request and the cores it used (CPU seconds / wall
seconds), the load generator's CPU seconds (wrk's, from its rusage; with httpx, this
process's), the machine's load average when the variant started. Results:
``benchmarks/results/api.json`` and ``api.md`` (``--quick``: ``api.quick.*``), with the
ratios current/baseline per round.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import resource
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
RESULTS = HERE / "results"
DEFAULT_PG_ADMIN_URL = "postgresql://root@127.0.0.1:5432/postgres"
COMPANY = "BENCH"
OPERATIONS = 1000
WRK_SCRIPT = """
local ids = {}
for line in io.lines(os.getenv("BENCH_IDS")) do ids[#ids + 1] = line end
local auth = "Bearer " .. os.getenv("BENCH_TOKEN")
local n = 0
request = function()
  n = n + 1
  local path = "/v1/companies/BENCH/operations?pageSize=20"
  if n % 5 ~= 0 then path = "/v1/companies/BENCH/operations/" .. ids[math.random(#ids)] end
  return wrk.format("GET", path, {["Authorization"] = auth})
end
done = function(summary, latency, requests)
  io.write(string.format(
    "BENCH {\\"requests\\":%d,\\"duration_us\\":%d,\\"non_2xx\\":%d,\\"socket_errors\\":%d," ..
    "\\"p50_ms\\":%.3f,\\"p95_ms\\":%.3f,\\"p99_ms\\":%.3f,\\"max_ms\\":%.3f}\\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
"""

SEED = """
import json, sys
from longops import Longops
try:
    from longops.core.enqueue import EnqueueRequest
except ImportError:  # a baseline from before core was split by noun
    from longops.core.service import EnqueueRequest
from longops.domain.security import PermissionSet
app = Longops(sys.argv[1])
app.task(name="bench.noop")(lambda: None)
app.migrate()
app.add_company("BENCH")
from datetime import datetime, timedelta, UTC
later = datetime.now(UTC) + timedelta(days=1)
n = int(sys.argv[2])
ids = app.enqueue_many([EnqueueRequest(task="bench.noop", company="BENCH",
                                       earliest_start_at=None if i % 2 else later)
                        for i in range(n)])
app.security.add_user("reader", grants=[("BENCH", PermissionSet.VIEW)])
_, token = app.security.create_token("reader", name="bench")
print(json.dumps({"token": token, "ids": [str(i) for i in ids]}))
app.close()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pg_url_for(admin_url: str, dbname: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{dbname}"


@contextlib.contextmanager
def database(admin_url: str, name: str) -> Iterator[str]:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_url_for(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def export_src(ref: str, into: Path) -> Path:
    """The ``src/`` of git ``ref``, written under ``into`` (the baseline's code)."""
    archive = subprocess.run(
        ["git", "-C", str(PROJECT), "archive", "--format=tar", ref, "src"],
        check=True,
        capture_output=True,
    ).stdout
    tar_path = into / "src.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def env_for(src: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LONGOPS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(src), str(HERE)])
    return env


def seed(url: str, src: Path) -> dict[str, Any]:
    """Fill ``url`` with the benchmark's operations (SEED, run from ``src``); what it reports."""
    out = subprocess.run(
        [sys.executable, "-c", SEED, url, str(OPERATIONS)],
        env=env_for(src), capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    data: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return data


def children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in found.read_text().split()] if found.exists() else []


def cpu_seconds(pid: int, reaped: bool = False) -> float:
    """A process's CPU seconds (with ``reaped``, its reaped children's too); 0 once gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except FileNotFoundError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def backend_pids(url: str) -> list[int]:
    """The PostgreSQL backends connected to the benchmark's database (the server's pool)."""
    dbname = url.rpartition("/")[2]
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        ).fetchall()
    return [int(r[0]) for r in rows]


def connection_split(port: str) -> list[int]:
    """Established connections on the server's port per server process, largest first."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
    ).stdout
    counts: dict[str, int] = {}
    for found in re.finditer(r"pid=(\d+)", out):
        counts[found.group(1)] = counts.get(found.group(1), 0) + 1
    return sorted(counts.values(), reverse=True)


def server_cpu(pid: int) -> float:
    """The server's CPU seconds: the process, its children now, and those it reaped (a
    server process that uvicorn's supervisor replaced under load still counts)."""
    return cpu_seconds(pid, reaped=True) + sum(cpu_seconds(c) for c in children(pid))


@contextlib.contextmanager
def serving(
    src: Path, url: str, processes: int = 1, workers: int = 2
) -> Iterator[tuple[str, list[int]]]:
    port = free_port()
    cmd = [sys.executable, "-m", "longops.cli.main", "--app", "bench_app:app",
           "--database-url", url, "serve", "--port", str(port), "--workers", str(workers),
           "--log-level", "warning"]  # fmt: skip
    if processes > 1:
        cmd += ["--processes", str(processes)]
    proc = subprocess.Popen(cmd, env=env_for(src), stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"longops serve exited: {proc.communicate()[1]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                break
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("longops serve did not answer in 60 s")
        time.sleep(0.1)
    try:
        yield base, [proc.pid, *children(proc.pid)]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def run_wrk(base: str, clients: int, seconds: float, token: str, ids_file: Path) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    env = {**os.environ, "BENCH_TOKEN": token, "BENCH_IDS": str(ids_file)}
    threads = min(2, clients)
    proc = subprocess.Popen(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(clients),
            "-d",
            f"{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            script.name,
            base,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The generator's own CPU: it must not be what bounds the figure (wrk is C, two threads);
    # wrk is the only child reaped meanwhile.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out, errors = proc.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    os.unlink(script.name)
    if proc.returncode != 0:
        raise SystemExit(f"wrk failed: {errors}")
    found = re.search(r"^BENCH (\{.*\})$", out, re.MULTILINE)
    if found is None:
        raise SystemExit(f"wrk said: {out}")
    data: dict[str, Any] = json.loads(found.group(1))
    data["seconds"] = data.pop("duration_us") / 1e6
    data["client"] = "wrk"
    data["generator_cpu_s"] = (after.ru_utime + after.ru_stime) - (
        before.ru_utime + before.ru_stime
    )
    return data


def run_httpx(
    base: str, clients: int, seconds: float, token: str, ids: list[str]
) -> dict[str, Any]:
    latencies: list[float] = []
    bad = 0

    async def one() -> None:
        nonlocal bad
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as http:
            n = 0
            while time.monotonic() < end:
                n += 1
                path = f"/v1/companies/{COMPANY}/operations"
                path += "?pageSize=20" if n % 5 == 0 else f"/{random.choice(ids)}"
                started = time.perf_counter()
                answer = await http.get(path)
                latencies.append(time.perf_counter() - started)
                bad += not answer.is_success

    async def all_of_them() -> None:
        await asyncio.gather(*(one() for _ in range(clients)))

    began = time.monotonic()
    end = began + seconds
    cpu_before = time.process_time()
    asyncio.run(all_of_them())
    took = time.monotonic() - began
    cpu = time.process_time() - cpu_before
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] * 1000

    return {"requests": len(ordered), "seconds": took, "non_2xx": bad, "socket_errors": 0,
            "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99), "max_ms": ordered[-1] * 1000,
            "client": "httpx", "generator_cpu_s": cpu}  # fmt: skip


class Listeners:
    """``count`` SSE clients on the company's live stream, in a thread of their own, for
    as long as the ``with`` block lasts (each counted once its ``ready`` frame came)."""

    def __init__(self, base: str, token: str, count: int) -> None:
        self.base, self.token, self.count = base, token, count
        self.ready = 0
        self.frames = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._all()), daemon=True)

    async def _one(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
        url = f"{self.base}/v1/companies/{COMPANY}/operations:stream"
        timeout = httpx.Timeout(10, read=None)  # a live stream is quiet for long
        async with (
            httpx.AsyncClient(timeout=timeout) as http,
            http.stream("GET", url, headers=headers) as answer,
        ):
            async for line in answer.aiter_lines():
                if line == "event: ready":
                    self.ready += 1
                elif line.startswith("data:"):
                    self.frames += 1
                if self._stop.is_set():
                    return

    async def _all(self) -> None:
        tasks = [asyncio.create_task(self._one()) for _ in range(self.count)]
        while not self._stop.is_set():
            await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> Listeners:
        self._thread.start()
        deadline = time.monotonic() + 120
        while self.ready < self.count:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {self.ready} of {self.count} SSE clients were ready")
            time.sleep(0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def measure(
    variant: str,
    src: Path,
    admin_url: str,
    clients: int,
    seconds: float,
    work: Path,
    processes: int = 1,
    sse: int = 0,
    workers: int = 2,
) -> dict[str, Any]:
    name = f"bench_api_{os.getpid()}_{variant.replace('-', '_')}"
    with database(admin_url, name) as url:
        data = seed(url, src)
        ids_file = work / f"ids-{variant}.txt"
        ids_file.write_text("\n".join(data["ids"]) + "\n")
        with serving(src, url, processes, workers) as (base, pids):
            if workers:
                due_ones_done(url)
            analyze(url)
            load = os.getloadavg()[0]
            # A short warm-up (imports, connections in the pool) that is not measured.
            run_httpx(base, 2, 1.0, data["token"], data["ids"])
            with Listeners(base, data["token"], sse) if sse else contextlib.nullcontext():
                cpu_before = server_cpu(pids[0])
                backends = {b: cpu_seconds(b) for b in backend_pids(url)}
                split: list[list[int]] = []
                sampler = threading.Thread(
                    target=lambda: (time.sleep(min(5.0, seconds / 2)),
                                    split.append(connection_split(base.rpartition(":")[2]))),
                    daemon=True,
                )  # fmt: skip
                sampler.start()
                if os.environ.get("BENCH_CLIENT") != "httpx" and shutil_which("wrk"):
                    result = run_wrk(base, clients, seconds, data["token"], ids_file)
                else:
                    result = run_httpx(base, clients, seconds, data["token"], data["ids"])
                cpu = server_cpu(pids[0]) - cpu_before
                # Backends opened meanwhile count from 0; one closed meanwhile is lost (rare:
                # the pool keeps its connections for minutes).
                after = {b: cpu_seconds(b) for b in backend_pids(url)}
                db_cpu = sum(max(0.0, v - backends.get(b, 0.0)) for b, v in after.items())
                sampler.join(5)
    result.update(
        variant=variant,
        sse_clients=sse,
        workers=workers,
        processes=processes,
        load_average_1m=load,
        requests_per_s=result["requests"] / result["seconds"],
        server_cpu_ms_per_request=1000 * cpu / max(1, result["requests"]),
        server_cores_used=cpu / result["seconds"],
        db_cpu_ms_per_request=1000 * db_cpu / max(1, result["requests"]),
        connections_per_process=split[0] if split else [],
    )
    return result


def analyze(url: str) -> None:
    """Give the planner the statistics a database in service has (autovacuum analyzes a
    table a minute or so after it changed; the load would otherwise start on a table just
    filled, never analyzed): without them PostgreSQL listed the first page by reading
    every operation of the company and sorting them, about 2 ms of its CPU a page instead
    of about 0.5, and whether autovacuum came by during a run decided the figures."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")


def due_ones_done(url: str, timeout: float = 120.0) -> None:
    """Wait until the server's worker has run every operation that was due (the ones
    scheduled for tomorrow stay ready)."""
    deadline = time.monotonic() + timeout
    query = (
        "SELECT count(*) FROM longops_operations "
        "WHERE status IN ('ready', 'in_process') AND earliest_start_at <= now()"
    )
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            row = conn.execute(query).fetchone()
            if row is not None and row[0] == 0:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"the worker left {row[0] if row else '?'} due operations")
            time.sleep(0.2)


def uptime() -> str:
    """The machine's ``uptime`` line (its load), as the result files record it."""
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def shutil_which(name: str) -> str | None:
    import shutil

    return shutil.which(name)


def write(results: list[dict[str, Any]], args: argparse.Namespace, quick: bool) -> None:
    RESULTS.mkdir(exist_ok=True)
    stem = args.stem or ("api.quick" if quick else "api")
    stem += f".sse{args.sse}" if args.sse else ""
    meta = {
        "workers": args.workers,
        "clients": args.clients,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "baseline": args.baseline,
        "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "current": args.current or "this tree",
        "load_before": args.load_before,
        "load_after": os.getloadavg(),
        "uptime_before": args.uptime_before,
        "uptime_after": uptime(),
    }
    (RESULTS / f"{stem}.json").write_text(json.dumps({"meta": meta, "runs": results}, indent=2))
    lines = [
        f"# REST API under load ({stem}.json)",
        "",
        f"{args.clients} keep-alive clients (wrk, 2 threads) for {args.seconds} s a variant "
        f"against `longops serve --workers {args.workers}` on PostgreSQL (1,000 operations: "
        "half run by the server's worker before the load starts, half scheduled for tomorrow, "
        "whose wait reason every read derives; 4/5 single reads, 1/5 first pages of 20), "
        f"`baseline` = `{args.baseline}`, `current` = this tree, `current-Np` = this tree with "
        f"`--processes N`; {os.cpu_count()} CPUs shared with the load generator, PostgreSQL "
        f"and other work. SSE clients attached meanwhile: {args.sse}. Run {meta['when']}"
        + (f"; `current` = `{args.current}`" if args.current else "")
        + ". Load average (1/5/15 min) before: "
        + " / ".join(f"{x:.1f}" for x in args.load_before)
        + ", after: "
        + " / ".join(f"{x:.1f}" for x in meta["load_after"])
        + ".",
        "",
        f"`uptime` before: `{args.uptime_before}`; after: `{meta['uptime_after']}`. Under load "
        "only the ratios of variants measured in the same run mean anything.",
        "",
        "| round | variant | req/s | p50 ms | p95 ms | p99 ms | non-2xx | server CPU ms/req "
        "| PostgreSQL CPU ms/req | server cores used | generator CPU s | connections per "
        "process | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    per_round = len({r["variant"] for r in results})
    for i, r in enumerate(results):
        lines.append(
            f"| {i // per_round + 1} | {r['variant']} | {r['requests_per_s']:.0f} "
            f"| {r['p50_ms']:.1f} "
            f"| {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['non_2xx'] + r['socket_errors']} "
            f"| {r['server_cpu_ms_per_request']:.2f} "
            f"| {r.get('db_cpu_ms_per_request', 0):.2f} | {r.get('server_cores_used', 0):.2f} "
            f"| {r.get('generator_cpu_s', 0):.1f} "
            f"| {'/'.join(str(n) for n in r.get('connections_per_process', [])) or '-'} "
            f"| {r['load_average_1m']:.1f} |"
        )
    lines += ["", "Ratios current / baseline per round (same run, same load):", ""]
    by_round = [results[i : i + per_round] for i in range(0, len(results), per_round)]
    for i, runs in enumerate(by_round):
        for cur in runs:
            if not cur["variant"].startswith("current"):
                continue
            twin = cur["variant"].replace("current", "baseline")
            base = next((r for r in runs if r["variant"] == twin), None)
            base = base or next((r for r in runs if r["variant"] == "baseline"), None)
            if base is None:
                continue
            cpu = cur["server_cpu_ms_per_request"] / base["server_cpu_ms_per_request"]
            lines.append(
                f"- round {i + 1}, {cur['variant']} / {base['variant']}: throughput "
                f"x{cur['requests_per_s'] / base['requests_per_s']:.2f}, "
                f"p50 x{cur['p50_ms'] / base['p50_ms']:.2f}, "
                f"p95 x{cur['p95_ms'] / base['p95_ms']:.2f}, server CPU per request x{cpu:.2f}"
            )
    lines += [
        "",
        "What bounds these figures, with a profile of the server under this load: "
        "[api-notes.md](api-notes.md).",
    ]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--clients", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--baseline", default="main", help="git ref of the baseline code")
    parser.add_argument("--only", choices=("baseline", "current"))
    parser.add_argument(
        "--current", help="git ref of the current code (default: this tree's src/ as it is)"
    )
    parser.add_argument(
        "--pairs",
        action="store_true",
        help="only baseline-Np and current-Np (both with --processes N), alternating",
    )
    parser.add_argument("--stem", help="result file names (default api, api.quick)")
    parser.add_argument(
        "--sse", type=int, default=0, help="SSE clients attached to the live stream meanwhile"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="worker slots of the server's own worker session (longops serve --workers)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="also measure this tree with `longops serve --processes N` (1: not)",
    )
    parser.add_argument(
        "--pg-admin-url", default=os.environ.get("LONGOPS_BENCH_PG_URL", DEFAULT_PG_ADMIN_URL)
    )
    args = parser.parse_args()
    args.clients = args.clients or (10 if args.quick else 50)
    args.seconds = args.seconds or (5.0 if args.quick else 30.0)
    args.rounds = args.rounds or (1 if args.quick else 2)
    args.load_before = os.getloadavg()
    args.uptime_before = uptime()
    with tempfile.TemporaryDirectory(prefix="bench_api_") as tmp:
        work = Path(tmp)
        variants = {"current": PROJECT / "src"}
        if args.current:
            (work / "current").mkdir()
            variants["current"] = export_src(args.current, work / "current")
        if args.only != "current":
            (work / "baseline").mkdir()
            variants["baseline"] = export_src(args.baseline, work / "baseline")
        if args.only == "baseline":
            del variants["current"]
        plan = [(v, src, 1) for v, src in sorted(variants.items())]
        if args.pairs:
            plan = [(f"{v}-{args.processes}p", src, args.processes) for v, src, _ in plan]
        elif args.processes > 1 and "current" in variants:
            plan.append((f"current-{args.processes}p", variants["current"], args.processes))
        results = []
        for _ in range(args.rounds):
            for variant, src, processes in plan:
                print(f"{variant}: {args.clients} clients, {args.seconds} s ...", flush=True)
                results.append(measure(variant, src, args.pg_admin_url, args.clients,
                                       args.seconds, work, processes, args.sse,
                                       args.workers))  # fmt: skip
        write(results, args, args.quick)


if __name__ == "__main__":
    main()
