"""The wire format a real ``longops serve`` sends, end to end: the operation resource as
docs/api.md shows it (the example there is checked key by key against a running
operation), camelCase throughout (AIP-140) for progress, events and attempts, full resource
names, and the client's ``Event`` reading every kind of event alike."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import COMPANY, Deployment

from longops.client import Client
from procs import wait_for

pytestmark = pytest.mark.postgres

DOCS = Path(__file__).parents[2] / "docs" / "api.md"
OPS = f"/v1/companies/{COMPANY}/operations"


def go(folder: Path, step: int, item: int) -> None:
    (folder / f"go-{step}-{item}").write_text("")


def documented_operation() -> dict[str, Any]:
    """The JSON example under "The operation resource" in docs/api.md."""
    text = DOCS.read_text()
    section = text.split("### The operation resource", 1)[1]
    block = re.search(r"```json\n(.*?)\n```", section, re.DOTALL)
    assert block is not None, "docs/api.md shows no operation"
    return dict(json.loads(block.group(1)))


def differences(shown: Any, real: Any, where: str = "") -> list[str]:
    """Where the documented value differs in shape from the real one: other keys, or
    another kind of value (null matches anything: a documented rate may be null in a
    run and the other way round)."""
    if shown is None or real is None:
        return []
    if isinstance(shown, dict) and isinstance(real, dict):
        out = [f"{where}.{k}: not sent" for k in shown.keys() - real.keys()]
        out += [f"{where}.{k}: not documented" for k in real.keys() - shown.keys()]
        for k in shown.keys() & real.keys():
            out += differences(shown[k], real[k], f"{where}.{k}")
        return out
    number = (int, float)
    if isinstance(shown, number) and isinstance(real, number):
        return [] if isinstance(shown, bool) == isinstance(real, bool) else [where]
    return [] if type(shown) is type(real) else [f"{where}: {shown!r} vs {real!r}"]


def keys_of(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_of(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_of(v)}
    return set()


def snake(keys: set[str]) -> set[str]:
    return {k for k in keys if "_" in k}


def test_the_wire_format_is_the_documented_one(served: Deployment) -> None:
    folder = served.folder
    auth = {"Authorization": f"Bearer {served.user_token}"}
    with httpx.Client(base_url=served.url, headers=auth, timeout=30) as http:
        r = http.post(
            f"/v1/companies/{COMPANY}/tasks/track.paced:enqueue",
            json={"kwargs": {"folder": str(folder), "steps": 2, "items": 2}},
            headers={"Operation-Id": "nov-invoices"},
        )
        assert r.status_code == 202, r.text
        op_id = r.json()["id"]
        url = f"{OPS}/{op_id}"
        go(folder, 1, 1)

        def running() -> dict[str, Any] | None:
            body = dict(http.get(url).json())
            progress = body["metadata"].get("progress") or {}
            return body if progress.get("completed") == 1 else None

        body = wait_for(running, timeout=30, what="the first item to be done")
        with Client(served.url, served.user_token, company=COMPANY) as api:
            watching = api.watch(op_id)
            events = [next(watching)]  # connected: the snapshot of the running operation
            for step, item in ((1, 2), (2, 1), (2, 2)):
                go(folder, step, item)
            events += list(watching)
        listed = http.get(f"{url}/events").json()
        attempts = http.get(f"{url}/attempts").json()

    # The documented operation is a real one: the same keys, nested, and kinds of value.
    assert differences(documented_operation(), body) == []
    assert body["name"] == f"companies/{COMPANY}/operations/{op_id}"
    assert r.headers["Operation-Location"].endswith(f"/v1/{body['name']}")

    # camelCase throughout (labels would be the caller's own keys; there are none here).
    assert snake(keys_of(body)) == set()
    assert snake(keys_of(listed)) == set()
    assert snake(keys_of(attempts)) == set()
    assert snake(keys_of([e.data for e in events])) == set()
    [attempt] = attempts["attempts"]
    assert {"operationId", "startTime", "endTime", "durationSeconds"} <= set(attempt)
    assert attempt["name"] == f"{body['name']}/attempts/1"
    assert {"operationId", "runNo"} <= set(listed["events"][0])

    # Every kind of event reads alike through the client.
    kinds = {e.event for e in events}
    assert {"snapshot", "progress", "status", "done"} <= kinds
    for e in events:
        assert e.summary, e
        if e.event in ("snapshot", "progress", "done"):
            assert e.percent is not None, e
    progress = [e for e in events if e.event == "progress"]
    assert all(e.progress is not None and "%" in e.summary for e in progress)
    assert any("Step 1 of 2: phase 1" in e.summary for e in progress)
    assert (events[-1].percent, events[-1].summary) == (100.0, "Succeeded")
    assert next(e for e in events if e.event == "status").summary.startswith(
        ("attempt_", "status_", "checkpoint", "progress")
    )
