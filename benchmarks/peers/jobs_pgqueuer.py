"""PgQueuer side: the factory ``pgq run jobs_pgqueuer:create`` loads, and the client calls
(asyncpg, PgQueuer's own driver; ``Queries.enqueue`` with scalars, then with lists)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator

import asyncpg
from marks import mark, paced_async
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job
from pgqueuer.queries import Queries

ENTRYPOINT = "noop"


@contextlib.asynccontextmanager
async def create() -> AsyncIterator[PgQueuer]:
    """The worker's factory, as in PgQueuer's README (an async context manager)."""
    connection = await asyncpg.connect(os.environ["BENCH_URL"])
    pgq = PgQueuer(AsyncpgDriver(connection))

    @pgq.entrypoint(ENTRYPOINT)
    async def noop(job: Job) -> None:
        n, t = (job.payload or b"-1 0").split()
        mark(int(n), float(t))

    try:
        yield pgq
    finally:
        await connection.close()


def prepare(url: str) -> None:
    """``pgq install`` is run by the driver; nothing else to do."""


async def _one(url: str, first: int, count: int, spacing: float) -> float:
    conn = await asyncpg.connect(url)
    try:
        queries = Queries(AsyncpgDriver(conn))
        await queries.queue_size()  # warm-up
        started = time.perf_counter()
        async for i in paced_async(count, spacing):
            await queries.enqueue(ENTRYPOINT, f"{first + i} {time.time():.6f}".encode())
        return time.perf_counter() - started
    finally:
        await conn.close()


async def _bulk(url: str, first: int, count: int, batch: int) -> float:
    conn = await asyncpg.connect(url)
    try:
        queries = Queries(AsyncpgDriver(conn))
        await queries.queue_size()
        started = time.perf_counter()
        for low in range(first, first + count, batch):
            ns = range(low, min(low + batch, first + count))
            now = time.time()
            payloads: list[bytes | None] = [f"{n} {now:.6f}".encode() for n in ns]
            await queries.enqueue([ENTRYPOINT] * len(ns), payloads, [0] * len(ns))
        return time.perf_counter() - started
    finally:
        await conn.close()


def one_by_one(url: str, first: int, count: int, spacing: float) -> float:
    return asyncio.run(_one(url, first, count, spacing))


def bulk(url: str, first: int, count: int, batch: int) -> float:
    return asyncio.run(_bulk(url, first, count, batch))
