"""Fairness across companies with real worker processes, on both databases.

Company A has a backlog of 10,000 ready operations, enqueued first; company B then enqueues
10. With two worker processes claiming, all of B's operations start within the first 50
claims (attempts are numbered in claim order), instead of after A's whole backlog.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from longops import EnqueueRequest, Longops, Status
from procs import start_worker, stop_workers, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def app(db_url: str) -> Iterator[Longops]:
    from apps.stress_app import tasks_into

    application = tasks_into(Longops(db_url))
    application.add_company("A")
    application.add_company("B")
    yield application
    application.close()


def claim_order(app: Longops, first: int) -> list[str]:
    with app.store._read() as cur:  # type: ignore[attr-defined]
        cur.execute(f"SELECT company FROM longops_attempts ORDER BY entry_no LIMIT {first}")
        return [r["company"] for r in cur.fetchall()]


def test_a_backlog_in_one_company_does_not_starve_another(app: Longops, db_url: str) -> None:
    # The queue is paused until both workers are up, so both claim from the first claim on
    # (and neither is stopped while still starting).
    app.companies.pause_queue("default")
    for _ in range(2):
        app.enqueue_many([EnqueueRequest(task="stress.noop", company="A")] * 5_000)
    app.enqueue_many([EnqueueRequest(task="stress.noop", company="B")] * 10)
    assert app.service.count_operations("A")[Status.READY] == 10_000
    workers = [start_worker(db_url, "unused", concurrency=4) for _ in range(2)]
    try:
        wait_for(
            lambda: len(app.sessions.list_sessions(active_only=True)) == 2,
            timeout=60,
            what="both worker sessions",
        )
        app.companies.resume_queue("default")
        wait_for(
            lambda: app.service.count_operations("B")[Status.FINISHED] == 10,
            timeout=120,
            what="B's ten operations finished",
        )
    finally:
        codes = stop_workers(workers)
    assert codes == [0, 0]
    order = claim_order(app, 50)
    positions = [i + 1 for i, company in enumerate(order) if company == "B"]
    assert len(positions) == 10, f"B's operations started at claims {positions} of the first 50"
    # The workers kept claiming A's backlog meanwhile: B was not simply alone in the queue.
    assert app.service.count_operations("A")[Status.READY] < 10_000


def test_a_worker_serves_only_its_companies(app: Longops, db_url: str) -> None:
    a = app.enqueue_many([EnqueueRequest(task="stress.noop", company="A")] * 5)
    b = app.enqueue_many([EnqueueRequest(task="stress.noop", company="B")] * 5)
    worker = start_worker(db_url, "unused", concurrency=2, extra=("--company", "B"))
    try:
        wait_for(
            lambda: app.sessions.list_sessions(active_only=True), timeout=60, what="the session"
        )
        wait_for(
            lambda: app.service.count_operations("B")[Status.FINISHED] == len(b),
            timeout=60,
            what="B's operations finished",
        )
        [session] = app.sessions.list_sessions(active_only=True)
        assert session.companies == ("B",)
    finally:
        assert stop_workers([worker]) == [0]
    assert app.service.count_operations("A")[Status.READY] == len(a)
