"""What the pages say around Cancel: a task that ignores it (cancel overdue), the bulk
notice, the Cancelled line, the toasts and a stale tab's Cancel (route tests, both
databases)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from test_live import stream
from web_support import Browser

from longops import Longops, RunContext
from longops.domain.status import Status
from longops.store.base import ClaimParams
from longops.testing import Runner, active_session

Make = Callable[[str | None], Browser]


def live_part(page: str) -> str:
    start = page.index('id="card-live"')
    return html.unescape(re.sub(r"<[^>]+>", " ", page[start : page.index("</section>", start)]))


def test_a_task_that_ignores_cancel_is_said_so_and_its_eta_is_hidden(
    app: Longops, browser: Make
) -> None:
    drawn: dict[str, str] = {}
    b = browser("admin")

    @app.task(name="ignores_cancel", description="Ignore the cancel")
    def ignores_cancel(ctx: RunContext) -> None:
        card = f"/c/CRONUS/entries/{ctx.operation_id}"
        b.get(card)
        assert b.post(f"{card}/cancel", {"next": card}).status_code == 303
        drawn["asked"] = b.get(card).text
        op = app.service.get(ctx.operation_id)
        assert op.lease_token is not None
        app.store.mark_cancel_overdue(op.id, op.lease_token, app.clock.now(), {})
        drawn["overdue"] = b.get(card).text
        assert b.post(f"{card}/force-cancel", {"next": card}).status_code == 303
        drawn["forced"] = b.get(card).text

    app.as_user("admin").enqueue("ignores_cancel", company="CRONUS")
    Runner(app).run_until_idle()
    asked = live_part(drawn["asked"])
    assert "it stops when its task next checks" in asked
    assert "ETA" not in asked  # no "overdue by 12 s" count while Cancelling
    assert "/force-cancel" in drawn["asked"], "Force cancel stays offered while Cancelling"
    overdue = live_part(drawn["overdue"])
    assert "it stops when its task next checks" not in overdue
    assert "did not stop when asked" in overdue
    assert "marked Cancelled and its result is discarded" in overdue
    assert "Nothing more can be done" not in overdue
    forced = live_part(drawn["forced"])
    # The force's own time, not the first request's with "(by force)".
    assert re.search(r"Cancel requested\s+[\d-]+ [\d:]+ by admin; forced [\d-]+ [\d:]+", forced)
    assert "(by force)" not in forced
    assert "did not stop when asked" in forced
    assert "Nothing more can be done from here" in forced


def test_a_bulk_cancel_says_which_were_cancelled_and_which_only_asked_to_stop(
    app: Longops, browser: Make
) -> None:
    alice = app.as_user("alice")
    running = [alice.enqueue("report", company="CRONUS", description=f"run {i}").id for i in (1, 2)]
    session = active_session(app.clock.now(), ("default",))
    app.store.register_session(session)
    claimed = app.store.claim(
        ClaimParams(session_id=session.id, queues=("default",), limit=2, now=app.clock.now())
    )
    assert sorted(r.operation.id for r in claimed) == sorted(running)
    ready = alice.enqueue("report", company="CRONUS", description="run 3").id
    b = browser("alice")
    b.get("/c/CRONUS/entries")
    b.post(
        "/c/CRONUS/entries/bulk",
        {"action": "cancel", "ids": [str(i) for i in [*running, ready]], "confirmed": "1"},
    )
    assert app.service.get(ready).status is Status.CANCELLED
    assert all(app.service.get(i).cancelling for i in running)
    listing = b.get("/c/CRONUS/entries").text
    assert "Cancelled 1 operation; asked 2 running operations to stop." in listing


def test_a_cancel_toast_names_the_entry_number(app: Longops, browser: Make) -> None:
    alice = app.as_user("alice")
    first = alice.enqueue("report", company="CRONUS", description="Year-end report").operation
    b = browser("alice")
    b.get("/c/CRONUS/entries")
    with stream(b, "/c/CRONUS/stream") as events:
        alice.service.cancel(first.id)
        toast = events.next_matching("toast")
    assert "toast-cancelled" in toast
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", toast)).split())
    assert f"Cancelled: #{first.entry_no} Year-end report" in text


def test_a_stale_tabs_action_on_an_ended_operation_goes_back_with_a_notice(
    app: Longops, browser: Make
) -> None:
    alice = app.as_user("alice")
    op = alice.enqueue("report", company="CRONUS", description="Year-end report").operation
    b = browser("alice")
    b.get("/c/CRONUS/entries")  # the tab is drawn; the operation is cancelled elsewhere
    alice.service.cancel(op.id)
    for action in ("cancel", "hold", "run-now"):
        answer = b.post(f"/c/CRONUS/entries/{op.id}/{action}", {"next": "/c/CRONUS/entries"})
        assert answer.status_code == 303, answer.text[-300:]
        assert answer.headers["location"].startswith("/c/CRONUS/entries")
        listing = html.unescape(b.get(answer.headers["location"]).text)
        assert f"Operation {op.entry_no} (Year-end report) is already Cancelled." in listing


def test_the_cards_stream_says_so_when_cancel_turns_overdue(app: Longops, browser: Make) -> None:
    op = app.as_user("alice").enqueue("report", company="CRONUS", description="Spin").operation
    session = active_session(app.clock.now(), ("default",))
    app.store.register_session(session)
    [run] = app.store.claim(
        ClaimParams(session_id=session.id, queues=("default",), limit=1, now=app.clock.now())
    )
    app.as_user("alice").service.cancel(op.id)
    b = browser("alice")
    b.get(f"/c/CRONUS/entries/{op.id}")
    with stream(b, f"/c/CRONUS/stream?view=card&op={op.id}") as events:
        app.store.mark_cancel_overdue(op.id, run.lease_token, app.clock.now(), {})
        card = events.next_matching("card")
    assert "did not stop when asked" in card
    assert "its result is discarded" in card
