"""What bounds the PostgreSQL enqueue against PgQueuer's (issue 12): two measurements that the
load of a shared machine moves least, CPU per operation. Run from the project root, under
the bench lock::

    flock /work/wt/bench.lock .venv/bin/python benchmarks/enqueue_split.py gin [ROUNDS]
    flock /work/wt/bench.lock .venv/bin/python benchmarks/enqueue_split.py one [ROUNDS] [N] \\
        [NAME=SRC,...]

- ``gin``: the backend's CPU per COPYed row and per one-by-one insert with the trigram
  search index as migration 0016 has it, and with variants of it (``insert_costs.measure``,
  every variant a database of its own copied from one migrated template, rounds
  interleaved). The rows are the peers benchmark's: task ``peers.noop``, whose description
  is its function's docstring's first line (71 characters), as for any task without one.
- ``one``: ``N`` one-by-one enqueues (default 1,500, after 100 unmeasured), each in a fresh
  database and a process of its own: longops (``Longops.enqueue``) from each ``SRC`` folder
  given (default: this tree's ``src`` as ``longops``) and PgQueuer (``Queries.enqueue``,
  asyncpg, from ``benchmarks/.peers-venv``), rounds interleaved; per call, the wall time,
  the client process's CPU and its backend's CPU (``/proc``).

Findings: ``results/profile-notes.md`` (the enqueue section).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TICK = os.sysconf("SC_CLK_TCK")
WARM_UP = 100
SEARCH = "longops_operations_search"
_EXPR = "lower(coalesce(description, '') || ' ' || task || ' ' || coalesce(last_error, ''))"
GIN_VARIANTS: dict[str, str | None] = {
    "as migrated (fastupdate on, 4 MB pending list)": None,
    "fastupdate off": f"ALTER INDEX {SEARCH} SET (fastupdate = off)",
    "64 MB pending list": f"ALTER INDEX {SEARCH} SET (gin_pending_list_limit = 65536)",
    "without the task in the text": (
        f"DROP INDEX {SEARCH}; CREATE INDEX {SEARCH} ON longops_operations USING gin "
        "((lower(coalesce(description, '') || ' ' || coalesce(last_error, ''))) gin_trgm_ops) "
        "WHERE status <> 'in_process'"
    ),
    "without the description in the text": (
        f"DROP INDEX {SEARCH}; CREATE INDEX {SEARCH} ON longops_operations USING gin "
        "((lower(task || ' ' || coalesce(last_error, ''))) gin_trgm_ops) "
        "WHERE status <> 'in_process'"
    ),
    "no search index": f"DROP INDEX {SEARCH}",
}


def part_gin(rounds: int) -> None:
    sys.path.insert(0, str(HERE))
    import insert_costs as ic
    from longops.store.postgres import PostgresStore

    tag = f"enqueue_split_{os.getpid()}"
    results: dict[str, list[dict[str, float]]] = {}
    with ic.database(f"{tag}_t") as turl:
        store = PostgresStore(turl)
        store.migrate()
        q = store.q
        store.close()
        copy_rows, params, client = ic.rows_and_params(turl)
        print(f"description of the rows: {client.service.registry.get('peers.noop').description!r}")
        client.close()
        for r in range(rounds):
            for i, (label, change) in enumerate(GIN_VARIANTS.items()):
                with ic.database(f"{tag}_{i}", f"{tag}_t") as url:
                    m = ic.measure(url, change, copy_rows, params, q)
                results.setdefault(label, []).append(m)
                print(
                    f"round {r + 1} {label}: bulk {m['bulk server us/row']:.1f} us/row, "
                    f"one {m['one server us/call']:.0f} us/call",
                    flush=True,
                )
    print(f"load average at end: {os.getloadavg()}; {rounds} round(s), medians")
    print("| search index | bulk server us/row | bulk WAL bytes/row | one server us/call |")
    print("|---|---|---|---|")
    for label, rows in results.items():
        bulk = [x["bulk server us/row"] for x in rows]
        print(
            f"| {label} | {statistics.median(bulk):.1f} ({', '.join(f'{v:.0f}' for v in bulk)})"
            f" | {statistics.median(x['bulk WAL bytes/row (server-wide)'] for x in rows):.0f}"
            f" | {statistics.median(x['one server us/call'] for x in rows):.0f} |"
        )


CHILD = """
import json, os, resource, sys, time
TICK = os.sysconf("SC_CLK_TCK")
def backend(pid):
    f = open(f"/proc/{pid}/stat").read().split(")")[1].split()
    return (int(f[11]) + int(f[12])) / TICK
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
system, url, n, warm = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if system == "pgqueuer":
    import asyncio, asyncpg
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.queries import Queries
    async def main():
        conn = await asyncpg.connect(url)
        q = Queries(AsyncpgDriver(conn))
        for i in range(warm):
            await q.enqueue("noop", f"{i} {time.time():.6f}".encode())
        pid = conn.get_server_pid()
        b0, c0, t0 = backend(pid), cpu(), time.perf_counter()
        for i in range(n):
            await q.enqueue("noop", f"{i} {time.time():.6f}".encode())
        out = time.perf_counter() - t0, cpu() - c0, backend(pid) - b0
        await conn.close()
        return out
    wall, client, server = asyncio.run(main())
else:
    import jobs_longops
    app = jobs_longops._client(url)
    for i in range(warm):
        app.enqueue(jobs_longops.TASK, i, time.time())
    with app.store._pool.connection() as conn:
        pid = conn.info.backend_pid
    assert app.store._pool.get_stats().get("pool_size") == 1
    b0, c0, t0 = backend(pid), cpu(), time.perf_counter()
    for i in range(n):
        app.enqueue(jobs_longops.TASK, i, time.time())
    wall, client, server = time.perf_counter() - t0, cpu() - c0, backend(pid) - b0
    app.close()
print(json.dumps({"wall": wall / n * 1e6, "client": client / n * 1e6, "server": server / n * 1e6}))
"""


def part_one(rounds: int, n: int, variants: list[tuple[str, str]]) -> None:
    from bench_peers import PEERS_DIR, PEERS_VENV, ensure_peers_venv, fresh_database, install_schema

    ensure_peers_venv()
    admin = os.environ.get("LONGOPS_BENCH_PG_URL", "postgresql://root@127.0.0.1:5432/postgres")
    work = Path(tempfile.mkdtemp(prefix="enqueue-split-"))
    systems = [*variants, ("pgqueuer", "")]
    results: dict[str, list[dict[str, float]]] = {}
    print(f"load average at start: {os.getloadavg()}", flush=True)
    for r in range(rounds):
        for name, src in systems:
            system = "pgqueuer" if name == "pgqueuer" else "longops"
            with fresh_database("postgres", f"split_{r}", admin, work) as url:
                install_schema(system, url, work)
                env = dict(os.environ, BENCH_MARKS_DIR=str(work), BENCH_URL=url)
                env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PEERS_DIR), src) if p)
                python = PEERS_VENV / "bin" / "python" if system == "pgqueuer" else sys.executable
                out = subprocess.run(
                    [str(python), "-c", CHILD, system, url, str(n), str(WARM_UP)],
                    env=env,
                    cwd=PEERS_DIR,
                    capture_output=True,
                    text=True,
                    check=True,
                )
            m: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
            results.setdefault(name, []).append(m)
            print(
                f"round {r + 1} {name}: wall {m['wall']:.0f} us/call, client CPU "
                f"{m['client']:.0f}, backend CPU {m['server']:.0f}",
                flush=True,
            )
    print(f"load average at end: {os.getloadavg()}; {rounds} round(s) of {n} calls, medians")
    print("| system | wall us/call (calls/s) | client CPU us/call | backend CPU us/call |")
    print("|---|---|---|---|")
    for name, rows in results.items():
        med = {k: statistics.median(x[k] for x in rows) for k in ("wall", "client", "server")}
        each = {k: ", ".join(f"{x[k]:.0f}" for x in rows) for k in ("client", "server")}
        print(
            f"| {name} | {med['wall']:.0f} ({1e6 / med['wall']:.0f}) | {med['client']:.0f} "
            f"({each['client']}) | {med['server']:.0f} ({each['server']}) |"
        )


def main(argv: list[str]) -> int:
    part = argv[0] if argv else "gin"
    rounds = int(argv[1]) if len(argv) > 1 else 3
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    print(f"# benchmarks/enqueue_split.py {' '.join(argv)}, {started}")
    sys.path.insert(0, str(HERE))
    if part == "gin":
        part_gin(rounds)
    elif part == "one":
        n = int(argv[2]) if len(argv) > 2 else 1_500
        given = argv[3] if len(argv) > 3 else f"longops={ROOT / 'src'}"
        part_one(rounds, n, [tuple(v.split("=", 1)) for v in given.split(",")])  # type: ignore[misc]
    else:
        raise SystemExit(f"unknown part {part!r}: gin or one")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
