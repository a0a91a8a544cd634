"""The pages' live stream over a real server: changed rows, the entry card, the toast and
the background indicator arrive as HTML fragments without a reload."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
from web_support import Browser

from longops import Longops
from longops.testing import Runner
from longops.web import stream as live_stream

Make = Callable[[str | None], Browser]


class Events:
    """An open SSE stream, read event by event."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()

    def next_matching(
        self, name: str, *, timeout: float = 20.0, also: dict[str, str] | None = None
    ) -> str:
        """The data of the next event called ``name``; the events before it are skipped
        (or noted in ``also``)."""
        deadline = time.monotonic() + timeout
        event, data = "", []
        for line in self.lines:
            if time.monotonic() > deadline:
                break
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "":
                if event == name:
                    return "\n".join(data)
                if also is not None and event:
                    also[event] = "\n".join(data)
                event, data = "", []
        raise AssertionError(f"no {name} event within {timeout} s")

    def until(self, *names: str, timeout: float = 20.0) -> dict[str, str]:
        """The latest data of each event named, once every one has arrived."""
        deadline = time.monotonic() + timeout
        seen: dict[str, str] = {}
        event, data = "", []
        for line in self.lines:
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "":
                if event:
                    seen[event] = "\n".join(data)
                if all(n in seen for n in names):
                    return seen
                event, data = "", []
            if time.monotonic() > deadline:
                break
        missing = [n for n in names if n not in seen]
        raise AssertionError(f"no {missing} events within {timeout} s (saw {sorted(seen)})")


@contextmanager
def stream(b: Browser, url: str) -> Iterator[Events]:
    with b.client.stream("GET", url, timeout=httpx.Timeout(30.0)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = Events(response)
        first = next(events.lines)
        assert first.startswith("retry: "), "the stream opened (and subscribed)"
        yield events


def test_a_changed_row_arrives_as_html(app: Longops, browser: Make) -> None:
    op = app.as_user("alice").enqueue("report", company="CRONUS", description="Row A").id
    hidden = app.as_user("alice").enqueue("report", company="CRONUS", description="Row B").id
    b = browser("alice")
    page = b.get("/c/CRONUS/entries").text
    assert f"rows={hidden}%2C{op}" in page, "the page names the rows it shows"
    url = f"/c/CRONUS/stream?view=list&rows={op}&next=/c/CRONUS/entries"
    with stream(b, url) as events:
        app.as_user("alice").service.hold(hidden)  # not on this page: never read, never sent
        app.as_user("alice").service.hold(op)
        seen = events.until(f"row-{op}")
        row = seen[f"row-{op}"]
        # Whatever the first hold would have sent comes before the next row of op.
        app.as_user("alice").service.set_ready(op)
        later = events.next_matching(f"row-{op}", also=seen)
    assert f"row-{hidden}" not in seen
    assert 'data-status="ready"' in later
    assert f'<tr id="op-{op}" data-operation-id="{op}" data-status="on_hold"' in row
    assert f'sse-swap="row-{op}"' in row, "the new row listens again"
    assert "Set Ready</button>" in row
    assert f'name="csrf_token" value="{b.csrf}"' in row, "its forms post with the session's token"


def test_a_viewers_rows_carry_no_controls(app: Longops, browser: Make) -> None:
    op = app.as_user("alice").enqueue("report", company="CRONUS").id
    viewer = browser("viewer")
    with stream(viewer, f"/c/CRONUS/stream?view=list&rows={op}") as events:
        app.as_user("alice").service.hold(op)
        row = events.next_matching(f"row-{op}")
    assert 'data-status="on_hold"' in row
    assert "<button" not in row
    assert 'name="ids"' not in row


def test_the_card_toast_and_indicator_follow_a_run(app: Longops, browser: Make) -> None:
    op = app.as_user("alice").enqueue("report", company="CRONUS", description="Nightly report").id
    b = browser("alice")
    b.get(f"/c/CRONUS/entries/{op}")
    with stream(b, f"/c/CRONUS/stream?view=card&op={op}") as events:
        Runner(app).run_until_idle()
        seen = events.until("toast", "card", "indicator", "card-details")
    toast, card, indicator = seen["toast"], seen["card"], seen["indicator"]
    details = seen["card-details"]
    assert 'id="card-details"' in details
    assert 'outcome-success">success</span>' in details, "the attempt's outcome, no reload"
    assert 'class="toast toast-succeeded" role="status"' in toast
    assert "Succeeded" in toast
    assert "Nightly report" in toast
    assert 'id="card-live"' in card
    assert 'id="background-indicator"' in indicator
    assert "0 of yours running" in indicator
    assert 'data-status="finished"' in card
    assert app.service.get(op).status.value == "finished"


def test_another_users_toast_is_not_sent(app: Longops, browser: Make) -> None:
    app.as_user("bob").enqueue("report", company="CRONUS", description="For Bob")
    mine = app.as_user("alice").enqueue("boom", company="CRONUS", description="For Alice")
    b = browser("alice")
    with stream(b, "/c/CRONUS/stream") as events:
        Runner(app).run_until_idle()
        toast = events.next_matching("toast")
    assert "For Alice" in toast, "the first toast is alice's own"
    assert "Failed" in toast
    assert app.service.get(mine.id).status.value == "error"


def test_a_stream_needs_a_signed_in_user_of_the_company(browser: Make) -> None:
    assert browser(None).client.get("/c/CRONUS/stream").status_code == 401
    assert browser("fabrikam").client.get("/c/CRONUS/stream").status_code == 404


def test_a_stream_ends_when_its_user_is_disabled(
    app: Longops, browser: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_stream, "RECHECK_EVERY", 0.0)
    op = app.as_user("bob").enqueue("report", company="CRONUS").id
    b = browser("alice")
    with stream(b, f"/c/CRONUS/stream?view=list&rows={op}") as events:
        app.as_user("bob").service.hold(op)
        assert 'data-status="on_hold"' in events.next_matching(f"row-{op}")
        app.security.disable_user("alice")
        app.as_user("bob").service.set_ready(op)  # wakes the stream, which checks alice
        # The server ends the stream; left open, it would go on with keep-alives.
        deadline = time.monotonic() + 20
        for _ in events.lines:
            assert time.monotonic() < deadline, "the stream is still open"
    assert b.get("/c/CRONUS/entries").status_code == 303, "signed out"
