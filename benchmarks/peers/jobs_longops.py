"""longops side of the peers benchmark: the marking no-op task and the client calls."""

from __future__ import annotations

import time

from marks import mark, paced

from longops import EnqueueRequest, Longops

TASK = "peers.noop"
app = Longops()


def noop(n: int, t: float) -> None:
    """Leave the mark; ``t`` (the enqueue time) travels like any argument would."""
    mark(n, t)


app.task(name=TASK)(noop)


def _client(url: str) -> Longops:
    client = Longops(url)
    client.task(name=TASK)(noop)
    return client


def prepare(url: str) -> None:
    """The schema, the way the docs say: ``migrate()``."""
    client = Longops(url)
    client.migrate()
    client.close()


def one_by_one(url: str, first: int, count: int, spacing: float) -> float:
    """``count`` enqueues, each its own transaction, ``spacing`` s apart; seconds taken."""
    client = _client(url)
    try:
        client.enqueue(TASK, -1, 0.0, on_hold=True)  # opens the pool; never runs
        started = time.perf_counter()
        for i in paced(count, spacing):
            client.enqueue(TASK, first + i, time.time())
        return time.perf_counter() - started
    finally:
        client.close()


def bulk(url: str, first: int, count: int, batch: int) -> float:
    """``enqueue_many`` in batches of ``batch`` (COPY on PostgreSQL); seconds taken."""
    client = _client(url)
    try:
        client.service.build(EnqueueRequest(task=TASK, args=(-1, 0.0)))  # warm-up
        started = time.perf_counter()
        for low in range(first, first + count, batch):
            high = min(low + batch, first + count)
            now = time.time()
            client.enqueue_many(
                [EnqueueRequest(task=TASK, args=(n, now)) for n in range(low, high)]
            )
        return time.perf_counter() - started
    finally:
        client.close()
