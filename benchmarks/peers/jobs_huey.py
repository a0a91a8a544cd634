"""Huey side: ``SqliteHuey`` on ``$BENCH_SQLITE_PATH`` (the consumer runs
``huey_consumer jobs_huey.huey -w 2 -k process``); calling the task enqueues it."""

from __future__ import annotations

import os
import time

from huey import SqliteHuey
from marks import mark, paced

huey = SqliteHuey(filename=os.environ.get("BENCH_SQLITE_PATH", "huey.db"))


@huey.task()
def noop(n: int, t: float) -> None:
    mark(n, t)


def prepare(url: str) -> None:
    """SqliteHuey creates its tables when it first connects."""
    huey.storage.enqueued_items(1)


def one_by_one(url: str, first: int, count: int, spacing: float) -> float:
    huey.storage.enqueued_items(1)  # warm-up: the connection is open
    started = time.perf_counter()
    for i in paced(count, spacing):
        noop(first + i, time.time())
    return time.perf_counter() - started


def bulk(url: str, first: int, count: int, batch: int) -> float:
    """Huey has no bulk enqueue: one by one (used only to fill the queue for the drain)."""
    return one_by_one(url, first, count, 0.0)
