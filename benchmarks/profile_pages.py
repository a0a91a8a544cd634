"""Where one Job Queue Entries request spends its time, in Python and in SQL.

Run from the project root, on a database ``bench_pages.py --database NAME`` seeded::

    flock /work/wt/bench.lock .venv/bin/python benchmarks/profile_pages.py \\
        --database bench_pages_list [--requests 30] [--top 30] PATH [PATH ...]

Each PATH (``/c/CRONUS/entries?...``) is requested in-process (as ``bench_pages.py`` does)
3 times to warm up, then ``--requests`` times with ``cProfile`` on in the thread that runs
the route (FastAPI runs a sync route in a worker thread): prints the functions with the
most cumulative time, and the request's own time against its SQL statements' time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fastapi.routing

from bench_core import DEFAULT_PG_ADMIN_URL, pg_url_for
from bench_pages import Recorder, _one_line, asgi_app, instrument, running, sign_in
from longops import Longops

PROFILE = cProfile.Profile()


def _patch_threadpool() -> None:
    """Profile the sync endpoints where they run (a worker thread of the threadpool)."""
    original = fastapi.routing.run_in_threadpool

    async def profiled(func: Any, *args: Any, **kwargs: Any) -> Any:
        def call(*a: Any, **kw: Any) -> Any:
            PROFILE.enable()
            try:
                return func(*a, **kw)
            finally:
                PROFILE.disable()

        return await original(call, *args, **kwargs)

    fastapi.routing.run_in_threadpool = profiled  # type: ignore[attr-defined]


async def _profile(url: str, paths: list[str], requests: int, top: int) -> None:
    lib = Longops(url)
    recorder = Recorder()
    instrument(lib.store, recorder)
    try:
        app = asgi_app(lib)
        async with running(app) as client:
            await sign_in(client)
            for path in paths:
                for _ in range(3):
                    await client.get(path)
                PROFILE.clear()  # type: ignore[attr-defined]
                recorder.statements.clear()
                recorder.on = True
                started = time.perf_counter()
                for _ in range(requests):
                    answer = await client.get(path)
                    assert answer.status_code == 200, answer.status_code
                wall = (time.perf_counter() - started) * 1000 / requests
                recorder.on = False
                sql = sum(s.seconds for s in recorder.statements) * 1000 / requests
                count = len(recorder.statements) / requests
                out = io.StringIO()
                stats = pstats.Stats(PROFILE, stream=out)
                stats.sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(top)
                print(f"== {path}: {wall:.1f} ms a request, {count:.0f} statements, {sql:.1f} ms")
                per: dict[str, list[float]] = {}
                for st in recorder.statements:
                    per.setdefault(_one_line(st.sql)[:150], []).append(st.seconds * 1000)
                for text, times in sorted(per.items(), key=lambda kv: -sum(kv[1]))[:top]:
                    print(
                        f"  {len(times) / requests:4.1f}x {sum(times) / requests:7.2f} ms  {text}"
                    )
                print(out.getvalue())
    finally:
        lib.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--database", required=True)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--pg-admin-url", default=os.environ.get("LONGOPS_BENCH_PG_URL", DEFAULT_PG_ADMIN_URL)
    )
    args = parser.parse_args()
    _patch_threadpool()
    asyncio.run(
        _profile(pg_url_for(args.pg_admin_url, args.database), args.paths, args.requests, args.top)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
