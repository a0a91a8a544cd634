"""The ETA of a multi-step operation learned from its task's finished runs (issue 17), read
through core on both databases: before any rate from the task's usual duration ("history"),
then from each step's share in the past runs ("steps", "from past runs" on the pages)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from longops import Longops, RunContext
from longops.domain.status import Status


@pytest.fixture
def app(db_url: str) -> Iterator[Longops]:
    application = Longops(db_url)

    @application.task(name="uneven", progress_interval=0.05)
    def uneven(ctx: RunContext, items: int = 10, pause: float = 0.02) -> int:
        # A quick first step, a long second one, a short last one.
        for index, (name, share) in enumerate([("scan", 1), ("load", 6), ("close", 1)], 1):
            ctx.step(name, index, 3)
            ctx.progress(0, total=items * share)
            for _ in range(items * share):
                time.sleep(pause)
                ctx.advance()
        return items

    yield application
    application.close()


def test_a_step_eta_is_learned_from_the_tasks_finished_runs(app: Longops) -> None:
    worker = app.worker(concurrency=1, poll_interval=0.05, run_services=False)
    worker.start()
    try:
        for _ in range(2):
            assert app.enqueue("uneven").wait(timeout=60).status is Status.FINISHED
        handle = app.enqueue("uneven")
        sources = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            op = handle.refresh()
            if op.done:
                break
            reading = app.service.estimated([op]).get(op.id)
            if reading is not None and reading.eta_at is not None:
                sources.add(reading.eta_source)
            time.sleep(0.05)
        assert handle.refresh().status is Status.FINISHED
    finally:
        worker.stop(grace=5)
    assert "steps" in sources, sources
