"""Spans of ``async def`` runs that interleave on the worker's one event loop: each run's
steps stay under its own ``process`` span (the span is per asyncio task, not per thread)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from opentelemetry.trace import SpanKind
from otel_support import Captured

from longops import Longops, RunContext, Status


@pytest.fixture
def app(db_url: str) -> Iterator[Longops]:
    application = Longops(db_url)
    yield application
    application.close()


def test_interleaved_async_runs_keep_their_own_spans(app: Longops, otel: Captured) -> None:
    arrived = 0
    both_in = asyncio.Event()

    @app.task(name="paired")
    async def paired(ctx: RunContext, n: int) -> int:
        nonlocal arrived
        ctx.step(f"First {n}", 1, 2)
        arrived += 1
        if arrived == 2:
            both_in.set()
        # Both runs are inside their first step before either moves on: they interleave.
        await asyncio.wait_for(both_in.wait(), 20)
        ctx.step(f"Second {n}", 2, 2)
        return n

    handles = [app.enqueue("paired", n) for n in (1, 2)]
    worker = app.worker(concurrency=2, poll_interval=0.05, run_services=False)
    worker.start()
    try:
        for h in handles:
            assert h.wait(timeout=30).status is Status.FINISHED
    finally:
        worker.stop(grace=5)

    spans = otel.spans()
    process = {
        (s.attributes or {})["messaging.message.id"]: s
        for s in spans
        if s.kind is SpanKind.CONSUMER
    }
    assert len(process) == 2
    for n, h in zip((1, 2), handles, strict=True):
        parent = process[str(h.id)].context.span_id
        mine = sorted(s.name for s in spans if s.parent is not None and s.parent.span_id == parent)
        assert mine == [f"step First {n}", f"step Second {n}"]
