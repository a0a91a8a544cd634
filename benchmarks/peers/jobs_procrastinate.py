"""procrastinate side: ``App`` with ``PsycopgConnector`` (the worker runs
``procrastinate --app jobs_procrastinate.app worker``), ``defer_async`` and
``batch_defer_async`` for the client."""

from __future__ import annotations

import asyncio
import os
import time

import procrastinate
from marks import mark, paced_async

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=os.environ.get("BENCH_URL", ""))
)


@app.task(name="noop")
async def noop(n: int, t: float) -> None:
    mark(n, t)


def prepare(url: str) -> None:
    """``procrastinate schema --apply`` is run by the driver."""


async def _one(first: int, count: int, spacing: float) -> float:
    async with app.open_async():
        await app.job_manager.list_queues_async()  # warm-up: the pool is open
        started = time.perf_counter()
        async for i in paced_async(count, spacing):
            await noop.defer_async(n=first + i, t=time.time())
        return time.perf_counter() - started


async def _bulk(first: int, count: int, batch: int) -> float:
    async with app.open_async():
        await app.job_manager.list_queues_async()
        started = time.perf_counter()
        for low in range(first, first + count, batch):
            now = time.time()
            await noop.batch_defer_async(
                *({"n": n, "t": now} for n in range(low, min(low + batch, first + count)))
            )
        return time.perf_counter() - started


def one_by_one(url: str, first: int, count: int, spacing: float) -> float:
    return asyncio.run(_one(first, count, spacing))


def bulk(url: str, first: int, count: int, batch: int) -> float:
    return asyncio.run(_bulk(first, count, batch))
