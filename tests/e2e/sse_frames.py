"""A small SSE reader for the tests (independent of longops.client's, so each checks the
other), and the stored timeline to compare streams with."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

TERMINAL = {"finished", "error", "cancelled"}


@dataclass(frozen=True)
class Frame:
    event: str
    id: str | None
    data: dict[str, Any]

    @property
    def event_id(self) -> int | None:
        """The timeline event id (the first part of a company stream's cursor)."""
        return None if self.id is None else int(self.id.split(".")[0])

    @property
    def ends(self) -> bool:
        """A status frame that ends a run for good (its operation is done)."""
        return (
            self.event == "status"
            and self.data.get("type") in ("attempt_ended", "status_changed")
            and self.data.get("data", {}).get("status") in TERMINAL
        )

    @property
    def operation(self) -> str | None:
        if self.event == "created":
            return str(self.data["id"])
        name = self.data.get("operation")
        return None if name is None else str(name).rpartition("/")[2]


def frames(response: httpx.Response) -> Iterator[Frame]:
    event, data, last_id = "message", [], None
    for line in response.iter_lines():
        if line == "":
            if data:
                yield Frame(event, last_id, json.loads("\n".join(data)))
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            last_id = value


@contextmanager
def stream(
    client: httpx.Client, path: str, last_event_id: str | None = None
) -> Iterator[Iterator[Frame]]:
    """Frames of one connection; leaving the block closes it (a client going away)."""
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    # The read timeout is the deadline for each frame: keep-alives come every 15 s.
    with client.stream("GET", path, headers=headers, timeout=httpx.Timeout(30, read=40)) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        yield frames(r)


def read_until(source: Iterator[Frame], stop: Callable[[list[Frame]], bool]) -> list[Frame]:
    """Frames until ``stop(frames so far)`` holds (each frame has the read timeout)."""
    got: list[Frame] = []
    for f in source:
        got.append(f)
        if stop(got):
            return got
    raise AssertionError(f"the stream ended before the condition held: {got[-5:]}")


def timeline(client: httpx.Client, ops_path: str, operation_id: str) -> list[dict[str, Any]]:
    """Every stored event of the operation (the JSON timeline, all pages)."""
    out: list[dict[str, Any]] = []
    params: dict[str, Any] = {"pageSize": 1000}
    while True:
        r = client.get(f"{ops_path}/{operation_id}/events", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        out.extend(page["events"])
        if not page["nextPageToken"]:
            return out
        params["pageToken"] = page["nextPageToken"]
