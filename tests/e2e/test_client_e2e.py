"""The Python client (``longops.client``) against ``longops serve`` subprocesses on
PostgreSQL: enqueue, ``watch()`` progress (resuming with ``Last-Event-ID`` when the server is
killed and restarted under it), cancel one operation, read the result of another.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_support import COMPANY, Deployment
from sse_frames import timeline

from longops.client import ApiError, AsyncClient, Client, Event
from procs import start_worker, stop_workers, wait_for

pytestmark = pytest.mark.postgres

OPS = f"/v1/companies/{COMPANY}/operations"


def go(folder: Path, step: int, item: int) -> None:
    (folder / f"go-{step}-{item}").write_text("")


def stored_ids(dep: Deployment, op_id: str) -> list[int]:
    with httpx.Client(
        base_url=dep.url, headers={"Authorization": f"Bearer {dep.user_token}"}
    ) as client:
        return [int(e["id"]) for e in timeline(client, OPS, op_id)]


@pytest.fixture
def worker(served_api_only: Deployment) -> Iterator[subprocess.Popen[bytes]]:
    """A worker process of its own: the run goes on while the API server restarts."""
    proc = start_worker(
        served_api_only.db_url,
        str(served_api_only.folder / "unused-marks"),
        app="tracking_app:app",
        extra=("--progress-interval", "0.1"),
    )
    yield proc
    assert stop_workers([proc]) == [0]


def check_watched(dep: Deployment, op_id: str, events: list[Event]) -> None:
    """The watched events are the stored timeline after the snapshot, each once, in order,
    then ``done``."""
    assert events[0].event == "snapshot"
    # A reconnect without Last-Event-ID would start over with a second snapshot.
    assert [e.event for e in events].count("snapshot") == 1
    assert events[-1].event == "done"
    assert [e.event for e in events].count("done") == 1
    start = int(events[0].id or 0)
    ids = [int(e.id or 0) for e in events if e.event in ("progress", "status")]
    assert len(ids) == len(set(ids)), "an event was seen twice"
    assert ids == sorted(ids)
    assert ids == [i for i in stored_ids(dep, op_id) if i > start]


def test_watch_resumes_after_the_server_is_killed_and_restarted(
    served_api_only: Deployment, worker: subprocess.Popen[bytes]
) -> None:
    dep, folder = served_api_only, served_api_only.folder
    with Client(dep.url, dep.user_token, company=COMPANY) as lo:
        op = lo.enqueue("track.paced", kwargs={"folder": str(folder), "steps": 1, "items": 3})
        assert op["status"] == "NotStarted"
        events: list[Event] = []
        watching = lo.watch(op["id"])
        go(folder, 1, 1)
        for event in watching:
            events.append(event)
            if event.event == "progress" and event.data.get("completed") == 1:
                break
        dep.server.restart()  # SIGKILL: the stream breaks mid-run
        go(folder, 1, 2)
        go(folder, 1, 3)
        events += list(watching)
        assert dep.server.starts == 2
        check_watched(dep, op["id"], events)
        assert any(e.event == "progress" for e in events)
        assert events[-1].data["percentComplete"] == 100.0
        assert events[-1].data["status"] == "Succeeded"
        assert lo.get(op["id"])["result"] == "paced"


def test_async_client_enqueues_watches_cancels_and_reads_results(served: Deployment) -> None:
    folder = served.folder

    async def scenario() -> None:
        async with AsyncClient(served.url, served.user_token, company=COMPANY) as lo:
            doomed = await lo.enqueue("track.until_cancelled", kwargs={"folder": str(folder)})
            counted = await lo.enqueue("track.count", kwargs={"n": 40})
            watched = await lo.enqueue(
                "track.paced", kwargs={"folder": str(folder), "steps": 2, "items": 2}
            )

            async def watch() -> list[Event]:
                got = []
                released = set()
                async for event in lo.watch(watched["id"]):
                    got.append(event)
                    step = (event.data.get("step") or {}).get("index")
                    if event.event == "progress" and step not in released:
                        # Each step is watched starting: let its items go.
                        released.add(step)
                        go(folder, step, 1)
                        go(folder, step, 2)
                return got

            watching = asyncio.create_task(watch())
            await asyncio.to_thread(
                wait_for, (folder / "started").exists, timeout=60, what="doomed started"
            )
            cancelled = await lo.cancel(doomed["id"], reason="wrong month")
            assert cancelled["metadata"]["cancelRequested"] is True
            final = await lo.wait(doomed["id"], timeout=60)
            assert final["status"] == "Canceled"
            assert final["metadata"]["cancelRequest"]["reason"] == "wrong month"
            assert "result" not in final

            result = await lo.wait(counted["id"], timeout=60)
            assert result["status"] == "Succeeded"
            assert result["result"] == 40
            assert result["response"] == 40
            assert result["percentComplete"] == 100.0

            events = await asyncio.wait_for(watching, 120)
            check_watched(served, watched["id"], events)
            assert events[-1].data["status"] == "Succeeded"
            steps = {(e.data.get("step") or {}).get("name") for e in events}
            assert steps >= {"phase 1", "phase 2"}

            listed = [op["id"] async for op in lo.list(status="Succeeded", page_size=1)]
            assert sorted(listed) == sorted([counted["id"], watched["id"]])
            with pytest.raises(ApiError) as refused:
                await lo.delete(doomed["id"] + "0")
            assert refused.value.status in (400, 404)

    asyncio.run(scenario())


def test_async_watch_resumes_after_the_server_is_killed(
    served_api_only: Deployment, worker: subprocess.Popen[bytes]
) -> None:
    dep, folder = served_api_only, served_api_only.folder

    async def scenario() -> list[Event]:
        async with AsyncClient(dep.url, dep.user_token, company=COMPANY) as lo:
            op = await lo.enqueue(
                "track.paced", kwargs={"folder": str(folder), "steps": 1, "items": 2}
            )
            events: list[Event] = []
            go(folder, 1, 1)
            async for event in lo.watch(op["id"]):
                events.append(event)
                if event.event == "progress" and event.data.get("completed") == 1:
                    await asyncio.to_thread(dep.server.restart)
                    go(folder, 1, 2)
            check_watched(dep, op["id"], events)
            return events

    events = asyncio.run(scenario())
    assert dep.server.starts == 2
    assert events[-1].data["status"] == "Succeeded"


def test_another_company_is_not_found_through_the_client(served: Deployment) -> None:
    with Client(served.url, served.other_token, company=COMPANY) as lo:
        with pytest.raises(ApiError) as refused:
            lo.enqueue("track.quick")
        assert refused.value.status == 404
        assert refused.value.code == "CompanyNotFound"
