"""The server CPU of the API benchmark's two requests, one at a time, in-process: a single
operation's poll and the first page of 20, through the whole ASGI application of ``longops
serve`` (``Server``: the API's middlewares, the fast path, the thread hand-off, the store),
without uvicorn's HTTP parsing. Counts the database statements per request too, and
optionally profiles them (cProfile).

Run from the project root::

    .venv/bin/python benchmarks/profile_poll.py [--requests 2000] [--profile single|page]
        [--concurrency 25]

It seeds a fresh PostgreSQL database as ``bench_api.py`` does (1,000 operations, half done,
half ready for tomorrow), then sends each request ``--requests`` times and prints the CPU
microseconds per request (``time.process_time``, this process: the event loop and its
threads) and the statements per request. Quiet-machine figures are the only meaningful
absolute ones; under load compare two trees in the same session.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_api  # noqa: E402
from longops.cli.serve import Server  # noqa: E402


class Statements:
    """Counts the statements psycopg sends (``Cursor.execute`` and ``Connection.execute``)."""

    def __init__(self) -> None:
        self.count = 0
        cursor_execute = psycopg.Cursor.execute
        conn_execute = psycopg.Connection.execute

        def counted_cursor(cur: Any, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return cursor_execute(cur, *args, **kwargs)

        def counted_conn(conn: Any, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return conn_execute(conn, *args, **kwargs)

        psycopg.Cursor.execute = counted_cursor  # type: ignore[method-assign]
        psycopg.Connection.execute = counted_conn  # type: ignore[method-assign]


async def request(app: Any, path: str, query: bytes, token: str) -> tuple[int, bytes]:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": query, "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000),
        "headers": [(b"host", b"127.0.0.1:8000"), (b"authorization", f"Bearer {token}".encode())],
        "state": {},
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return status, body


async def run(
    app: Any, kind: str, n: int, token: str, ids: list[str], concurrency: int = 1
) -> float:
    """CPU seconds per request of ``n`` requests of ``kind`` (``mix``: four polls to a
    page, as the load benchmark), ``concurrency`` of them in flight at a time (as under
    load: the thread hand-offs' wake-ups are shared)."""
    base = f"/v1/companies/{bench_api.COMPANY}/operations"

    async def client(count: int) -> None:
        for i in range(count):
            if kind == "single" or (kind == "mix" and i % 5 != 4):
                status, _ = await request(app, f"{base}/{random.choice(ids)}", b"", token)
            else:
                status, _ = await request(app, base, b"pageSize=20", token)
            assert status == 200, status

    began = time.process_time()
    each = n // concurrency
    await asyncio.gather(*(client(each) for _ in range(concurrency)))
    return (time.process_time() - began) / (each * concurrency)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--profile", choices=("single", "page"))
    parser.add_argument(
        "--concurrency",
        type=int,
        default=0,
        help="also the mix (4 polls : 1 page) with this many requests in flight",
    )
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--pg-admin-url", default=bench_api.DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    src = bench_api.PROJECT / "src"
    name = f"profile_poll_{os.getpid()}"
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines: list[str] = [
        f"# server CPU per request, in-process ({when})",
        "load average before: " + " / ".join(f"{x:.1f}" for x in os.getloadavg()),
        "",
    ]
    with bench_api.database(args.pg_admin_url, name) as url:
        data = bench_api.seed(url, src)
        from bench_app import make_app

        longops = make_app(url)
        for op_id in data["ids"][1::2]:  # the due half done, as the server's worker would
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(
                    "UPDATE longops_operations SET status = 'finished', ended_at = now(), "
                    "started_at = now() WHERE id = %s",
                    (op_id,),
                )
        server = Server(longops)
        counter = Statements()

        async def all_of_it() -> None:
            await server.hub.start()
            try:
                for kind in ("single", "page"):
                    await run(server, kind, 50, data["token"], data["ids"])  # warm
                    before = counter.count
                    cpu = await run(server, kind, args.requests, data["token"], data["ids"])
                    statements = (counter.count - before) / args.requests
                    lines.append(
                        f"{kind}: {cpu * 1e6:.0f} us CPU per request, "
                        f"{statements:.2f} statements per request"
                    )
                if args.concurrency:
                    n = args.concurrency
                    for kind in ("mix", "single", "page"):
                        await run(server, kind, 5 * n, data["token"], data["ids"], n)  # warm
                        cpu = await run(server, kind, args.requests, data["token"], data["ids"], n)
                        lines.append(f"{kind}, {n} in flight: {cpu * 1e6:.0f} us CPU per request")
                if args.profile:
                    # The thread's work in this thread, where cProfile sees it.
                    async def inline(fn: Any, /, *a: Any, **k: Any) -> Any:
                        return fn(*a, **k)

                    asyncio.to_thread = inline  # type: ignore[assignment]
                    prof = cProfile.Profile(time.process_time)
                    prof.enable()
                    await run(server, args.profile, args.requests, data["token"], data["ids"])
                    prof.disable()
                    stats = pstats.Stats(prof, stream=Out(lines))
                    stats.sort_stats("tottime").print_stats(args.top)
                    stats.sort_stats("cumulative").print_stats(args.top)
            finally:
                await server.hub.stop()

        asyncio.run(all_of_it())
        longops.close()
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


class Out:
    """pstats' stream: its text, appended to ``lines``."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text
        *done, self.text = self.text.split("\n")
        self.lines.extend(done)


if __name__ == "__main__":
    raise SystemExit(main())
