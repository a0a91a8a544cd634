"""Issue 17 (pages v2), the stale texts left after fix-races, on both databases:

- a row's Cancel of a running operation ("asked to stop") carried to the list or the
  Overview says what happened once the run has ended, when the page is drawn or from its
  live stream (as the card does);
- a page takes the hub's position before it reads anything, so an event the hub hands
  out during the page's reads reaches its stream (taken at the render, it was neither in
  the page nor sent)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import pytest
from test_live import Events, stream
from web_support import SECRET, Browser

from longops import Longops, RunContext
from longops.cli.serve import Server
from longops.domain.status import Status
from longops.testing import Runner
from longops.web.pages import Pages
from longops.web.session import COOKIE, CookieSigner, SessionData
from procs import wait_for

Make = Callable[[str | None], Browser]
LIST = "/c/CRONUS/entries"
OVERVIEW = "/c/CRONUS/"
NOTICE_RE = re.compile(r'<div id="notice"[^>]*><p class="notice" role="status">([^<]*)')


def cancel_while_it_runs(
    app: Longops, b: Browser, back: str, while_running: Callable[[str], None] | None = None
) -> tuple[str, int]:
    """Run an operation that is cancelled from a page (the row's Cancel, posted while it
    runs, back to ``back``: "asked to stop") and then stops; ``while_running(id)`` is
    called after the Cancel, while it still runs. The operation's id and entry number."""
    posted: list[int] = []

    @app.task(name="stopped_from_a_page")
    def stopped_from_a_page(ctx: RunContext) -> None:
        answer = b.post(f"/c/CRONUS/entries/{ctx.operation_id}/cancel", {"next": back})
        posted.append(answer.status_code)
        assert answer.headers.get("location") == back
        if while_running is not None:
            while_running(str(ctx.operation_id))
        ctx.request_stop("cancelled")  # what the worker's monitor does on a cancel
        ctx.check_cancelled()

    b.get(LIST)  # a CSRF token for the Cancel
    op = app.as_user("alice").enqueue("stopped_from_a_page", company="CRONUS")
    Runner(app).run_until_idle()
    assert posted == [303]
    assert app.service.get(op.id).status is Status.CANCELLED
    return str(op.id), op.operation.entry_no


def notice_of(page: str) -> str:
    found = NOTICE_RE.search(page)
    assert found is not None, page[-2000:]
    return found.group(1)


def stream_url(page: str) -> str:
    found = re.search(r'sse-connect="([^"]+)"', page)
    assert found is not None
    return html.unescape(found.group(1))


@pytest.mark.parametrize("back", [LIST, OVERVIEW], ids=["list", "overview"])
def test_a_stop_notice_carried_to_a_page_drawn_after_the_run_ended_says_it_was_cancelled(
    app: Longops, browser: Make, back: str
) -> None:
    # The run was cancelled between the Cancel's redirect and the page's read: the page
    # says what happened, not "asked to stop" (no transition is left for its stream).
    b = browser("alice")
    answered: list[SessionData | None] = []
    op_id, entry_no = cancel_while_it_runs(
        app,
        b,
        back,
        lambda _: answered.append(CookieSigner(SECRET).load(b.client.cookies.get(COOKIE))),
    )
    said = answered[0]
    assert said is not None
    assert said.notice is not None
    assert "asked to stop" in said.notice, "the Cancel said the run stops soon"
    assert said.about == op_id
    page = b.get(back).text
    assert notice_of(page) == f"Operation {entry_no} (stopped_from_a_page) is now Cancelled."
    assert "asked to stop" not in page
    assert "notice=" not in stream_url(page), "nothing left for the stream to replace"
    if back == LIST:
        assert f'<tr id="op-{op_id}" data-operation-id="{op_id}" data-status="cancelled"' in page


@pytest.mark.parametrize("back", [LIST, OVERVIEW], ids=["list", "overview"])
def test_a_stop_notice_on_a_page_is_replaced_when_the_run_ends(
    app: Longops, browser: Make, back: str
) -> None:
    # The page is drawn and its stream open while the run still runs; the run's end
    # reaches the stream, which says what happened in place of "asked to stop".
    b = browser("alice")
    with ExitStack() as stack:
        opened: list[Events] = []
        drawn: list[str] = []

        def draw_and_listen(op_id: str) -> None:
            page = b.get(back).text
            drawn.append(page)
            url = stream_url(page)
            assert f"notice={op_id}" in url
            opened.append(stack.enter_context(stream(b, url)))

        _, entry_no = cancel_while_it_runs(app, b, back, draw_and_listen)
        assert "asked to stop" in notice_of(drawn[0])
        notice = opened[0].next_matching("notice", timeout=20)
    assert f"Operation {entry_no} (stopped_from_a_page) is now Cancelled." in notice


def test_a_stop_notice_on_the_list_is_replaced_when_the_run_ends_before_the_stream_subscribes(
    app: Longops, server: Server, browser: Make
) -> None:
    # The list was drawn while the run still ran ("asked to stop"), and the run ended
    # before the page's stream subscribed, the hub already past its end (a stream served
    # by another process, say): the stream reads the operation as it subscribes.
    b = browser("alice")
    drawn: list[str] = []
    op_id, entry_no = cancel_while_it_runs(app, b, LIST, lambda _: drawn.append(b.get(LIST).text))
    url = stream_url(drawn[0])
    assert f"notice={op_id}" in url
    end = app.store.last_event_id()
    wait_for(lambda: server.hub.watermark >= end, timeout=20, what="the hub to pass the end")
    url = re.sub(r"since=\d+", f"since={server.hub.watermark}", url)
    with stream(b, url) as events:
        notice = events.next_matching("notice", timeout=10)
    assert f"Operation {entry_no} (stopped_from_a_page) is now Cancelled." in notice


def pages_of(server: Server) -> Pages:
    found: Pages = server.pages.state.pages
    return found


@pytest.fixture
def changed_before_the_render(
    app: Longops, server: Server, monkeypatch: pytest.MonkeyPatch
) -> list[Callable[[], None]]:
    """Put a change (a callable) in the list returned: the next page drawn makes it after
    its reads, just before it renders, and waits until the hub has handed it out."""
    pages = pages_of(server)
    real = pages.render
    pending: list[Callable[[], None]] = []

    def render(name: str, *args: Any, **kw: Any) -> Any:
        if pending and name in ("entries.html", "entry.html"):
            pending.pop()()
            top = app.store.last_event_id()
            wait_for(lambda: server.hub.watermark >= top, timeout=20, what="the hub to pass it")
        return real(name, *args, **kw)

    monkeypatch.setattr(pages, "render", render)
    return pending


@pytest.mark.parametrize("view", ["list", "card"])
def test_a_change_during_the_pages_reads_reaches_its_stream(
    app: Longops, browser: Make, changed_before_the_render: list[Callable[[], None]], view: str
) -> None:
    # The operation is put on hold after the page read it (Ready) and before it renders,
    # and the hub hands the hold out before the render: the stream must still send it.
    alice = app.as_user("alice")
    op = alice.enqueue("report", company="CRONUS", description="Changes unseen").id
    b = browser("alice")
    changed_before_the_render.append(lambda: alice.service.hold(op))
    page = b.get(LIST if view == "list" else f"/c/CRONUS/entries/{op}").text
    assert not changed_before_the_render, "the change was made during the page"
    shown = 'data-status="ready"'
    assert shown in page, "drawn as read, before the hold"
    assert app.service.get(op).status is Status.ON_HOLD
    with stream(b, stream_url(page)) as events:
        sent = events.next_matching(f"row-{op}" if view == "list" else "card", timeout=10)
    assert 'data-status="on_hold"' in sent


def test_the_stream_of_a_page_starts_where_the_hub_stood_before_its_reads(
    app: Longops, server: Server, browser: Make, changed_before_the_render: list[Any]
) -> None:
    alice = app.as_user("alice")
    op = alice.enqueue("report", company="CRONUS").id
    b = browser("alice")
    before = server.hub.watermark
    changed_before_the_render.append(lambda: alice.service.hold(op))
    url = stream_url(b.get(LIST).text)
    since = int(re.search(r"since=(\d+)", url).group(1))  # type: ignore[union-attr]
    assert before <= since < server.hub.watermark
