"""The fleet's /metrics (Prometheus text format) scraped and parsed with prometheus_client's
parser while 1,000 operations drain through a worker process: the counts match the database."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from live import OWN, TASK, Live
from prometheus_client.parser import text_string_to_metric_families

from longops import EnqueueRequest
from longops.core import sessions as core_sessions
from longops.store.base import OperationQuery
from procs import APPS, stop_workers

QUEUE = "metrics-drain"
COUNT = 1000


def scrape(live: Live) -> dict[str, list[tuple[dict[str, str], float]]]:
    with live.client("SUPER") as http:
        response = http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        families[family.name] = [(s.labels, s.value) for s in family.samples]
    return families


def by_status(families: dict[str, list[tuple[dict[str, str], float]]]) -> dict[str, int]:
    return {
        labels["status"]: int(value)
        for labels, value in families["longops_operations"]
        if labels["company"] == OWN and labels["queue"] == QUEUE
    }


def in_database(live: Live) -> dict[str, int]:
    counts = live.app.read_models.status_counts(OWN, query=OperationQuery(queue=QUEUE))
    return {s.value: n for s, n in counts.items() if n}


def test_metrics_while_a_thousand_operations_drain(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core_sessions, "METRICS_FRESH_FOR", 0.0)
    with live.client("JOBQUEUE-USER") as http:
        assert http.get("/metrics").status_code == 403  # the fleet is SUPER's to see
    with live.client() as http:
        assert http.get("/metrics").status_code == 401
    # The second half waits on hold until the first half has drained: a scrape then sees the
    # drain half way through however fast the worker is (no timing between two scrapes).
    half = COUNT // 2
    requests = [
        EnqueueRequest(task=TASK, kwargs={"n": i}, company=OWN, queue=QUEUE, on_hold=i >= half)
        for i in range(COUNT)
    ]
    ids = live.app.service.enqueue_many(requests)
    before = scrape(live)
    assert by_status(before) == in_database(live) == {"ready": half, "on_hold": COUNT - half}
    ages = [
        v for labels, v in before["longops_oldest_ready_age_seconds"] if labels["queue"] == QUEUE
    ]
    assert len(ages) == 1
    assert ages[0] >= 0

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), env.get("PYTHONPATH", "")])
    cmd = [
        sys.executable, "-m", "longops.cli.main", "--app", "telemetry_app:app",
        "--database-url", live.app.database_url, "worker", "--queue", QUEUE,
        "--concurrency", "4", "--poll-interval", "0.1", "--heartbeat-interval", "0.5",
    ]  # fmt: skip
    worker = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen: list[dict[str, int]] = []
    alive = []
    pause = threading.Event()
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            families = scrape(live)
            statuses = by_status(families)
            seen.append(statuses)
            alive.append(int(families["longops_sessions_alive"][0][1]))
            # One statement: every scrape is a consistent snapshot of the thousand.
            assert sum(statuses.values()) == COUNT, statuses
            if statuses.get("finished") == COUNT or worker.poll() is not None:
                break
            if statuses == {"finished": half, "on_hold": COUNT - half}:
                for operation_id in ids[half:]:
                    live.app.service.set_ready(operation_id, company=OWN)
            pause.wait(0.2)
    finally:
        codes = stop_workers([worker])
    assert seen[-1].get("finished") == COUNT, seen[-1]
    assert codes == [0]
    assert {"finished": half, "on_hold": COUNT - half} in seen, "no scrape saw the drain"
    assert max(alive) >= 1
    after = scrape(live)
    assert by_status(after) == in_database(live) == {"finished": COUNT}
    assert not [s for s in after["longops_oldest_ready_age_seconds"] if s[0]["queue"] == QUEUE]
    assert int(after["longops_sessions_alive"][0][1]) == 0


def test_metrics_are_cached(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core_sessions, "METRICS_FRESH_FOR", 60.0)
    first = scrape(live)
    live.app.service.enqueue(EnqueueRequest(task=TASK, company=OWN, queue="cached"))
    assert scrape(live) == first  # within the period: the same figures, no query
    monkeypatch.setattr(core_sessions, "METRICS_FRESH_FOR", 0.0)
    fresh = scrape(live)
    assert any(labels["queue"] == "cached" for labels, _ in fresh["longops_operations"])
