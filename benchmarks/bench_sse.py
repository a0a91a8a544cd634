"""SSE load benchmark: many live clients on one ``longops serve`` process on PostgreSQL.

Run from the project root::

    .venv/bin/python benchmarks/bench_sse.py            # 200 clients, 1,000 operations
    .venv/bin/python benchmarks/bench_sse.py --quick    # 20 clients, 50 operations (smoke)

What it does:

1. a fresh, migrated PostgreSQL database ``bench_sse_<pid>`` (dropped afterwards); a company
   BENCH, a user with JOBQUEUE-VIEW in it and an API token;
2. one ``longops serve --workers 0`` process (the server under test) and ``--workers``
   worker processes (``longops worker``, progress written every 0.05 s at most), all
   loading ``benchmarks/sse_bench_app.py``;
3. ``--clients`` SSE clients (httpx, one asyncio loop in this process) open the company's
   ``GET /v1/companies/BENCH/operations:stream``; when all have their ``ready`` frame,
   ``--operations`` operations of ``sse.report`` are enqueued (core, in batches of 100);
   each reports progress ``--steps`` times;
4. every client reads until it has seen the terminal event (``attempt_ended`` with status
   finished) of every operation. The run fails (exit 1) when any client misses one, sees
   an event twice or out of id order, or the run takes longer than ``--deadline`` s.

Figures: the server's resident memory (after start, with the clients connected, peak
during the run, sampled every 0.2 s from /proc), its CPU seconds; event lag (from the
event's creation time, ``at``, to the client receiving it; same machine, same clock)
p50/p95/p99/max over every frame every client received; frames delivered per second (all
clients) and timeline events written per second; whether every client received every
event of the timeline. Results: ``benchmarks/results/sse.json`` and ``sse.md``
(``--quick``: ``sse.quick.json`` / ``sse.quick.md``). The machine is noted with them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench_core import DEFAULT_PG_ADMIN_URL, RESULTS, machine_info, percentile, pg_url_for
from longops import Longops
from longops.core.enqueue import EnqueueRequest
from longops.domain.security import PermissionSet
from sse_bench_app import REPORT, report

HERE = Path(__file__).resolve().parent
COMPANY = "BENCH"
TERMINAL = {"finished", "error", "cancelled"}
READY_DEADLINE = 60.0
AT = re.compile(rb'"at":"([^"]+)"')
"""The first ``at`` of a frame's data: the event's creation time (nested data has none)."""
CREATED_AT: dict[int, float] = {}
"""Each event's creation time (``at``), read from the first frame that carried it."""


@dataclass(frozen=True)
class Sizes:
    clients: int
    operations: int
    workers: int
    concurrency: int
    steps: int
    pause: float


FULL = Sizes(clients=200, operations=1000, workers=2, concurrency=16, steps=4, pause=0.08)
QUICK = Sizes(clients=20, operations=50, workers=1, concurrency=8, steps=3, pause=0.02)


class InvalidRunError(Exception):
    """The run's figures cannot be trusted (a client missed an event, a process died...)."""


@dataclass
class ClientResult:
    frames: int = 0
    event_ids: list[int] = field(default_factory=list)
    terminal: set[str] = field(default_factory=set)
    receipts: list[float] = field(default_factory=list)
    """When each of ``event_ids`` was received (time.time())."""
    out_of_order: int = 0
    duplicates: int = 0
    done_at: float | None = None
    error: str | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    name = f"bench_sse_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_url_for(admin_url, name)
    try:
        app = Longops(url)
        app.migrate()
        app.close()
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def set_up(url: str) -> str:
    app = Longops(url)
    try:
        app.companies.add_company(COMPANY)
        app.security.add_user("watcher", grants=[(COMPANY, PermissionSet.VIEW)])
        return app.security.create_token("watcher", name="bench")[1]
    finally:
        app.close()


def env() -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join([str(HERE), out.get("PYTHONPATH", "")])
    return out


def longops_cmd(url: str, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "longops.cli.main", "--app", "sse_bench_app:app",
        "--database-url", url, *args,
    ]  # fmt: skip


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Observer(threading.Thread):
    """Notes when each timeline event first becomes visible in the database (polled every
    20 ms), to split the lag into the writer's part (creation to commit) and the streams'
    part (commit to client)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.visible: dict[int, float] = {}
        self.stop_event = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            low = 0
            while not self.stop_event.wait(0.02):
                rows = conn.execute(
                    "SELECT id FROM longops_operation_events WHERE id > %s ORDER BY id", (low,)
                ).fetchall()
                now = time.time()
                for (number,) in rows:
                    self.visible.setdefault(int(number), now)
                # Ids below the first one not seen yet may still commit: look again.
                known = self.visible
                while low + 1 in known:
                    low += 1


class Sampler(threading.Thread):
    """The server's RSS every 0.2 s; ``peak`` is the highest seen."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = rss_kib(pid)
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(0.2):
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, rss_kib(self.pid))


def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_DEADLINE
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise InvalidRunError(f"serve exited {proc.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise InvalidRunError("the server was not ready within 60 s")


async def client(
    http: httpx.AsyncClient,
    path: str,
    expected: set[str] | None,
    ready: asyncio.Event,
    count_ready: list[int],
    total: int,
    all_known: asyncio.Event,
    result: ClientResult,
) -> None:
    """Reads the company stream until every operation's terminal event was seen."""
    headers = {"Accept": "text/event-stream"}
    last = 0
    buffer = b""
    try:
        async with http.stream("GET", path, headers=headers) as response:
            if response.status_code != 200:
                raise InvalidRunError(f"stream answered {response.status_code}")
            # Frames are cut from raw chunks (cheaper than line iteration, so the clients'
            # own loop adds less to the lag); a frame's receipt time is its chunk's.
            async for chunk in response.aiter_raw():
                received = time.time()
                buffer += chunk
                *complete, buffer = buffer.split(b"\n\n")
                for raw in complete:
                    fields = dict(
                        line.split(b": ", 1) for line in raw.split(b"\n") if b": " in line
                    )
                    event = fields.get(b"event")
                    if event is None:
                        continue  # retry: or a keep-alive comment
                    result.frames += 1
                    if event == b"ready":
                        count_ready[0] += 1
                        if count_ready[0] == total:
                            ready.set()
                        continue
                    if event not in (b"progress", b"status"):
                        continue  # created: the whole operation, not needed here
                    number = int(fields[b"id"].split(b".")[0])
                    if number == last:
                        result.duplicates += 1
                    elif number < last:
                        result.out_of_order += 1
                    last = max(last, number)
                    result.event_ids.append(number)
                    body = fields[b"data"]
                    # Only the creation time is read from most frames (parsing every
                    # frame's JSON would be most of the clients' work).
                    result.receipts.append(received)
                    if number not in CREATED_AT:
                        found = AT.search(body)
                        if found is not None:
                            text = found.group(1).decode()
                            CREATED_AT[number] = datetime.fromisoformat(text).timestamp()
                    if event != b"status" or b'"attempt_ended"' not in body:
                        continue
                    data = json.loads(body)
                    if (
                        data.get("type") == "attempt_ended"
                        and data.get("data", {}).get("status") in TERMINAL
                    ):
                        result.terminal.add(str(data["operation"]).rpartition("/")[2])
                        if all_known.is_set() and result.terminal >= (expected or set()):
                            result.done_at = time.monotonic()
                            return
    except (httpx.HTTPError, InvalidRunError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"


async def run_clients(
    base: str, token: str, sizes: Sizes, url: str, deadline: float
) -> tuple[list[ClientResult], set[str], float, float]:
    limits = httpx.Limits(max_connections=sizes.clients + 10, max_keepalive_connections=0)
    timeout = httpx.Timeout(30.0, read=60.0)
    expected: set[str] = set()
    results = [ClientResult() for _ in range(sizes.clients)]
    ready = asyncio.Event()
    all_known = asyncio.Event()
    count_ready = [0]
    path = f"/v1/companies/{COMPANY}/operations:stream"
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, limits=limits,
        timeout=timeout,
    ) as http:  # fmt: skip
        tasks = [
            asyncio.create_task(
                client(http, path, expected, ready, count_ready, sizes.clients, all_known, r)
            )
            for r in results
        ]
        await asyncio.wait_for(ready.wait(), READY_DEADLINE)
        started = time.monotonic()
        ids = await asyncio.to_thread(enqueue_all, url, sizes)
        expected.update(ids)
        all_known.set()
        for r in results:  # a client may have seen every end before the ids were known
            if r.terminal >= expected and r.done_at is None:
                r.done_at = time.monotonic()
        pending = [t for t, r in zip(tasks, results, strict=True) if r.done_at is None]
        left = deadline - time.monotonic()
        if pending:
            _done, still = await asyncio.wait(pending, timeout=max(left, 1.0))
            for t in still:
                t.cancel()
            if still:
                await asyncio.gather(*still, return_exceptions=True)
        for t in tasks:
            if not t.done():
                t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        finished = time.monotonic()
    return results, expected, started, finished


def enqueue_all(url: str, sizes: Sizes) -> list[str]:
    app = Longops(url)
    app.registry.add(report, name=REPORT)
    try:
        ids: list[str] = []
        for start in range(0, sizes.operations, 100):
            n = min(100, sizes.operations - start)
            batch = [
                EnqueueRequest(
                    task=REPORT,
                    kwargs={"steps": sizes.steps, "pause": sizes.pause},
                    company=COMPANY,
                )
                for _ in range(n)
            ]
            ids += [str(i) for i in app.enqueue_many(batch)]
        return ids
    finally:
        app.close()


def stored_events(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id FROM longops_operation_events WHERE company = %s ORDER BY id", (COMPANY,)
        ).fetchall()
    return [int(r[0]) for r in rows]


def stored_times(url: str) -> tuple[float, float]:
    """First and last event creation times (for events written per second)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM min(at)), extract(epoch FROM max(at))"
            " FROM longops_operation_events WHERE company = %s",
            (COMPANY,),
        ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


def stop(procs: Sequence[subprocess.Popen[bytes]], timeout: float = 60) -> list[int]:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(timeout=timeout))
        except subprocess.TimeoutExpired:
            p.kill()
            codes.append(p.wait())
    return codes


def bench(admin_url: str, sizes: Sizes, deadline_s: float, workdir: Path) -> dict[str, Any]:
    with fresh_database(admin_url) as url:
        token = set_up(url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        serve_log = workdir / "serve.log"
        with serve_log.open("wb") as out:
            server = subprocess.Popen(
                longops_cmd(url, "serve", "--port", str(port), "--log-level", "info"),
                env=env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        workers: list[subprocess.Popen[bytes]] = []
        try:
            wait_ready(base, server, serve_log)
            rss_start = rss_kib(server.pid)
            for n in range(sizes.workers):
                with (workdir / f"worker-{n}.log").open("wb") as out:
                    workers.append(
                        subprocess.Popen(
                            longops_cmd(
                                url,
                                "worker",
                                "--concurrency",
                                str(sizes.concurrency),
                                "--progress-interval",
                                "0.05",
                                "--poll-interval",
                                "0.5",
                                "--log-level",
                                "warning",
                            ),
                            env=env(),
                            stdout=out,
                            stderr=subprocess.STDOUT,
                        )
                    )
            sampler = Sampler(server.pid)
            sampler.start()
            observer = Observer(url)
            observer.start()
            cpu_start = cpu_seconds(server.pid)
            own_start = cpu_seconds(os.getpid())
            deadline = time.monotonic() + deadline_s
            results, expected, started, finished = asyncio.run(
                run_clients(base, token, sizes, url, deadline)
            )
            sampler.stop_event.set()
            sampler.join()
            observer.stop_event.set()
            observer.join()
            cpu_used = cpu_seconds(server.pid) - cpu_start
            client_cpu = cpu_seconds(os.getpid()) - own_start
            rss_end = rss_kib(server.pid)
            stored = stored_events(url)
            first_at, last_at = stored_times(url)
        finally:
            codes = stop([*workers, server])
        log_text = serve_log.read_text(errors="replace")
    return summarise(
        sizes, results, expected, stored, started, finished, first_at, last_at,
        {"start": rss_start, "peak": sampler.peak, "end": rss_end}, cpu_used, client_cpu,
        codes, log_text, observer.visible,
    )  # fmt: skip


def summarise(
    sizes: Sizes,
    results: list[ClientResult],
    expected: set[str],
    stored: list[int],
    started: float,
    finished: float,
    first_at: float,
    last_at: float,
    rss: dict[str, int],
    cpu_used: float,
    client_cpu: float,
    codes: list[int],
    log_text: str,
    visible: dict[int, float],
) -> dict[str, Any]:
    lags: list[float] = []
    to_commit: list[float] = [visible[i] - at for i, at in CREATED_AT.items() if i in visible]
    after_commit: list[float] = []
    for r in results:
        for number, received in zip(r.event_ids, r.receipts, strict=True):
            at = CREATED_AT.get(number)
            if at is not None:
                lags.append(received - at)
            seen = visible.get(number)
            if seen is not None:
                after_commit.append(received - seen)
    frames = sum(len(r.event_ids) for r in results)
    complete = [r.terminal >= expected for r in results]
    every_event = [r.event_ids == stored for r in results]
    duration = finished - started
    problems = []
    if not all(complete):
        missing = [i for i, ok in enumerate(complete) if not ok]
        problems.append(f"{len(missing)} client(s) missed terminal events: {missing[:10]}")
    errors = [r.error for r in results if r.error]
    if errors:
        problems.append(f"client errors: {errors[:3]}")
    if any(r.duplicates or r.out_of_order for r in results):
        problems.append("an event was received twice or out of id order")
    if any(code not in (0,) for code in codes):
        problems.append(f"a process exited badly: {codes}")
    gave_up = log_text.count("gave up waiting for ids")
    return {
        "sizes": asdict(sizes),
        "clients_complete": sum(complete),
        "clients_with_every_event": sum(every_event),
        "terminal_events_expected_per_client": len(expected),
        "timeline_events": len(stored),
        "frames_received_total": frames,
        "run_seconds": round(duration, 2),
        "frames_per_second": round(frames / duration, 1) if duration else None,
        "events_written_per_second": (
            round(len(stored) / (last_at - first_at), 1) if last_at > first_at else None
        ),
        "lag_seconds": spread(lags),
        "lag_creation_to_visible_seconds": spread(to_commit),
        "lag_visible_to_client_seconds": spread(after_commit),
        "server_rss_mib": {k: round(v / 1024, 1) for k, v in rss.items()},
        "server_cpu_seconds": round(cpu_used, 2),
        "clients_cpu_seconds": round(client_cpu, 2),
        "hub_ids_given_up": gave_up,
        "exit_codes": codes,
        "problems": problems,
        "valid": not problems,
    }


def spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "p50": round(percentile(values, 50), 4),
        "p95": round(percentile(values, 95), 4),
        "p99": round(percentile(values, 99), 4),
        "max": round(max(values), 4),
    }


def write_markdown(path: Path, doc: dict[str, Any]) -> None:
    r, m, s = doc["result"], doc["machine"], doc["result"]["sizes"]
    lag = r["lag_seconds"] or {}
    written = r["lag_creation_to_visible_seconds"] or {}
    streamed = r["lag_visible_to_client_seconds"] or {}
    lines = [
        "# SSE load benchmark (`benchmarks/bench_sse.py`)",
        "",
        f"{m['date']} on {m['nproc']} CPU(s), {m['cpu_model']}; {m['platform']}; Python "
        f"{m['python']}; {m['postgresql']}. Load average at start {m['loadavg_at_start']}, "
        f"at end {doc['loadavg_at_end']} (the machine is shared: figures are of this run).",
        "",
        f"One `longops serve` process; {s['clients']} SSE clients on the company stream "
        f"(`operations:stream`, httpx, one asyncio loop); {s['operations']} operations, each "
        f"reporting progress {s['steps']} times, run by {s['workers']} worker process(es) of "
        f"{s['concurrency']} slots.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| clients that saw every terminal event | {r['clients_complete']} / {s['clients']} |",
        f"| clients that saw every timeline event, in order, once | "
        f"{r['clients_with_every_event']} / {s['clients']} |",
        f"| timeline events written | {r['timeline_events']} "
        f"({r['events_written_per_second']} /s) |",
        f"| frames delivered (all clients) | {r['frames_received_total']} "
        f"({r['frames_per_second']} /s) |",
        f"| run (first enqueue to last client done) | {r['run_seconds']} s |",
        f"| event lag p50 / p95 / p99 / max | {lag.get('p50')} / {lag.get('p95')} / "
        f"{lag.get('p99')} / {lag.get('max')} s |",
        f"| of which creation to visible in the database (worker, PostgreSQL) | "
        f"{written.get('p50')} / {written.get('p95')} / {written.get('p99')} / "
        f"{written.get('max')} s |",
        f"| of which visible to received (hub, server, clients' loop) | "
        f"{streamed.get('p50')} / {streamed.get('p95')} / {streamed.get('p99')} / "
        f"{streamed.get('max')} s |",
        f"| server RSS after start / peak / end | {r['server_rss_mib']['start']} / "
        f"{r['server_rss_mib']['peak']} / {r['server_rss_mib']['end']} MiB |",
        f"| CPU during the run: server / the clients' process | {r['server_cpu_seconds']} / "
        f"{r['clients_cpu_seconds']} s |",
        f"| ids the hub gave up on (never committed) | {r['hub_ids_given_up']} |",
        f"| valid | {r['valid']} {'; '.join(r['problems'])} |",
        "",
        "Lag is from the event's creation time (`at`, written by the worker) to the client "
        "reading its frame: it includes the hub's poll (0.2 s when idle), the wait for "
        "lower ids to commit (in id order), and queueing in the one server process.",
        "",
    ]
    path.write_text("\n".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 clients, 50 operations")
    parser.add_argument("--clients", type=int, help="SSE clients")
    parser.add_argument("--operations", type=int, help="operations")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds for the run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get("LONGOPS_BENCH_PG_URL", DEFAULT_PG_ADMIN_URL),
        help="a role that may CREATE DATABASE",
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.clients or args.operations:
        sizes = Sizes(
            clients=args.clients or sizes.clients,
            operations=args.operations or sizes.operations,
            workers=sizes.workers,
            concurrency=sizes.concurrency,
            steps=sizes.steps,
            pause=sizes.pause,
        )
    args.out.mkdir(parents=True, exist_ok=True)
    machine = machine_info(args.pg_admin_url)
    workdir = args.out / ("sse-logs.quick" if args.quick else "sse-logs")
    workdir.mkdir(exist_ok=True)
    try:
        result = bench(args.pg_admin_url, sizes, args.deadline, workdir)
    except InvalidRunError as exc:
        print(f"invalid run: {exc}", file=sys.stderr)
        return 1
    doc = {
        "benchmark": "sse",
        "machine": machine,
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "result": result,
    }
    stem = "sse.quick" if args.quick else "sse"
    (args.out / f"{stem}.json").write_text(json.dumps(doc, indent=2) + "\n")
    write_markdown(args.out / f"{stem}.md", doc)
    print((args.out / f"{stem}.md").read_text())
    if not result["valid"]:
        print(f"invalid run: {result['problems']}", file=sys.stderr)
        return 1
    # Logs are kept only when the run failed.
    for p in workdir.iterdir():
        p.unlink()
    workdir.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
