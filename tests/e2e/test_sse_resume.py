"""SSE resume against ``longops serve`` on PostgreSQL: a client that goes away mid-run and
comes back with ``Last-Event-ID`` receives every event of the timeline exactly once, in id
order, ending with the terminal event; on an operation's stream and on the company's
``operations:stream``.

To make ids commit out of order (as concurrent transactions do), the test holds a
transaction open that has taken an event id, lets the worker commit later ids, and commits
the held one afterwards: the stream must still hand the events out in id order and miss
none.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from e2e_support import COMPANY, Deployment
from sse_frames import Frame, read_until, stream, timeline

from procs import wait_for

pytestmark = pytest.mark.postgres

OPS = f"/v1/companies/{COMPANY}/operations"


def http(dep: Deployment, token: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=dep.url, headers={"Authorization": f"Bearer {token or dep.user_token}"}
    )


def enqueue(client: httpx.Client, task: str, **kwargs: Any) -> str:
    r = client.post(f"/v1/companies/{COMPANY}/tasks/{task}:enqueue", json={"kwargs": kwargs})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def go(folder: Path, step: int, item: int) -> None:
    (folder / f"go-{step}-{item}").write_text("")


def stored_ids(client: httpx.Client, op_id: str) -> list[int]:
    return [int(e["id"]) for e in timeline(client, OPS, op_id)]


@contextmanager
def held_event(db_url: str, op_id: str) -> Iterator[tuple[int, psycopg.Connection[Any]]]:
    """An event of the operation inserted in a transaction left open: its id is taken now,
    and it becomes visible only when the caller commits (after later ids did)."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "INSERT INTO longops_operation_events (operation_id, company, at, type, run_no, data)"
            " VALUES (%s, %s, now(), 'checkpoint', 1, '{\"held\": true}') RETURNING id",
            (op_id, COMPANY),
        ).fetchone()
        assert row is not None
        yield int(row[0]), conn


def hub_has_read(client: httpx.Client, observer: Iterator[Frame]) -> tuple[str, list[Frame]]:
    """Wait until the server's event hub has read everything committed so far: it reads
    new operations before events, so once it announces an operation enqueued now, its
    read of the timeline came after every earlier commit. Returns the new operation and
    the frames read from ``observer``."""
    marker = enqueue(client, "track.quick")
    got = read_until(
        observer, lambda got: got[-1].event == "created" and got[-1].operation == marker
    )
    return marker, got


def events_only(got: list[Frame]) -> list[Frame]:
    return [f for f in got if f.event in ("progress", "status")]


def test_operation_stream_resumes_with_every_event_once(served: Deployment) -> None:
    folder = served.folder
    with http(served) as client:
        op = enqueue(client, "track.paced", folder=str(folder), steps=2, items=3)
        first: list[Frame] = []
        with (
            stream(client, f"{OPS}:stream") as observer,
            stream(client, f"{OPS}/{op}/events") as source,
        ):
            [snapshot] = read_until(source, lambda got: True)
            assert snapshot.event == "snapshot"
            start = snapshot.event_id
            assert start is not None
            go(folder, 1, 1)
            first += read_until(source, lambda got: any(f.event == "progress" for f in got))
            with held_event(served.db_url, op) as (held, conn):
                # The worker commits ids above the held one while it is open.
                go(folder, 1, 2)
                go(folder, 1, 3)
                wait_for(
                    lambda: max(stored_ids(client, op)) > held,
                    timeout=60,
                    what="the worker commits events after the held id",
                )
                # The hub has seen the later ids with the held one missing: it must hold
                # them back (sending them now would put them before the held one).
                hub_has_read(client, observer)
                conn.commit()
            first += read_until(source, lambda got: any((f.event_id or 0) > held for f in got[1:]))
        # The client is gone; the run goes on without it.
        for item in (1, 2, 3):
            go(folder, 2, item)
        wait_for(lambda: client.get(f"{OPS}/{op}").json()["done"], timeout=60, what="op finished")
        resume_from = first[-1].id
        assert resume_from is not None
        with stream(client, f"{OPS}/{op}/events", last_event_id=resume_from) as source:
            second = read_until(source, lambda got: got[-1].event == "done")
        received = [f.event_id for f in events_only(first) + events_only(second)]
        stored = [i for i in stored_ids(client, op) if i > start]

    assert held in received
    assert received == sorted(received), "events out of id order"
    assert len(received) == len(set(received)), "an event was sent twice"
    assert received == stored, "the stream and the stored timeline differ"
    last = events_only(second)[-1]
    assert last.ends
    assert last.data["data"]["status"] == "finished"
    done = second[-1]
    assert done.data["status"] == "Succeeded"
    assert done.data["done"] is True


def test_resume_from_zero_replays_the_whole_timeline(served: Deployment) -> None:
    with http(served) as client:
        op = enqueue(client, "track.count", n=50)
        wait_for(lambda: client.get(f"{OPS}/{op}").json()["done"], timeout=60, what="done")
        with stream(client, f"{OPS}/{op}/events", last_event_id="0") as source:
            got = read_until(source, lambda got: got[-1].event == "done")
        ids = [f.event_id for f in events_only(got)]
        assert ids == stored_ids(client, op)
        assert events_only(got)[-1].ends
        # Resuming after the end: nothing again, only the final operation.
        with stream(client, f"{OPS}/{op}/events", last_event_id=got[-1].id) as source:
            again = read_until(source, lambda got: got[-1].event == "done")
        assert events_only(again) == []


def test_company_stream_resumes_with_every_event_once(served: Deployment) -> None:
    folder = served.folder
    with http(served) as client:
        with stream(client, f"{OPS}:stream") as source:
            [ready] = read_until(source, lambda got: True)
            assert ready.event == "ready"
            assert ready.id is not None
            start_event = int(ready.id.split(".")[0])
            paced = enqueue(client, "track.paced", folder=str(folder), steps=1, items=2)
            counts = [enqueue(client, "track.count", n=20) for _ in range(3)]
            mine = {paced, *counts}
            first = read_until(
                source, lambda got: sum(f.ends for f in got if f.operation in counts) >= 1
            )
            with held_event(served.db_url, paced) as (held, conn):
                go(folder, 1, 1)
                wait_for(
                    lambda: max(stored_ids(client, paced)) > held,
                    timeout=60,
                    what="the worker commits events after the held id",
                )
                marker, seen = hub_has_read(client, source)
                first += seen
                mine.add(marker)
                conn.commit()
            first += read_until(source, lambda got: any((f.event_id or 0) > held for f in got))
        go(folder, 1, 2)
        for op in mine:
            wait_for(lambda op=op: client.get(f"{OPS}/{op}").json()["done"], timeout=60)
        resume_from = first[-1].id
        assert resume_from is not None
        with stream(client, f"{OPS}:stream", last_event_id=resume_from) as source:
            second = read_until(
                source, lambda got: {f.operation for f in got if f.ends} >= mine - ended(first)
            )
        stored = sorted(i for op in mine for i in stored_ids(client, op) if i > start_event)

    frames_all = first + second
    received = [f.event_id for f in events_only(frames_all)]
    assert held in received
    assert received == sorted(received), "events out of id order"
    assert len(received) == len(set(received)), "an event was sent twice"
    assert received == stored, "the stream and the stored timeline differ"
    created = [f.operation for f in frames_all if f.event == "created"]
    assert sorted(created) == sorted(mine), "each new operation is announced once"
    assert ended(frames_all) == mine
    # The cursor's parts only grow.
    cursors = [tuple(map(int, f.id.split("."))) for f in frames_all if f.id]
    assert cursors == sorted(cursors)


def ended(got: list[Frame]) -> set[str | None]:
    return {f.operation for f in got if f.ends}


def test_another_company_stream_is_not_found(served: Deployment) -> None:
    with http(served, served.other_token) as client:
        r = client.get(f"{OPS}:stream", headers={"Accept": "text/event-stream"})
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "CompanyNotFound"


@pytest.mark.parametrize("bad", ["x", "-1", "1.x"])
def test_a_malformed_last_event_id_is_bad_input(served: Deployment, bad: str) -> None:
    with http(served) as client:
        r = client.get(
            f"{OPS}:stream", headers={"Accept": "text/event-stream", "Last-Event-ID": bad}
        )
        assert r.status_code == 400
        assert r.json()["error"]["target"] == "Last-Event-ID"


def test_company_stream_passes_an_entry_number_burned_by_a_repeated_enqueue(
    served: Deployment,
) -> None:
    """A repeated Operation-Id takes an entry number that never commits (PostgreSQL's
    ON CONFLICT DO NOTHING): the stream gives up on it after the gap timeout and goes on,
    announcing each operation once."""
    path = f"/v1/companies/{COMPANY}/tasks/track.quick:enqueue"
    with http(served) as client, stream(client, f"{OPS}:stream") as source:
        read_until(source, lambda got: got[-1].event == "ready")
        key = {"Operation-Id": "0190d2a4-4b8e-7000-8000-000000000001"}
        first = client.post(path, json={"kwargs": {"x": 1}}, headers=key)
        again = client.post(path, json={"kwargs": {"x": 1}}, headers=key)
        assert first.status_code == again.status_code == 202
        assert first.json()["id"] == again.json()["id"]
        later = enqueue(client, "track.quick", x=2)
        got = read_until(
            source, lambda got: any(f.event == "created" and f.operation == later for f in got)
        )
    created = [f.operation for f in got if f.event == "created"]
    assert created == [first.json()["id"], later]
    entries = [int(f.id.split(".")[1]) for f in got if f.event == "created" and f.id]
    assert entries[1] > entries[0] + 1, "no entry number was burned: the gap is not tested"
