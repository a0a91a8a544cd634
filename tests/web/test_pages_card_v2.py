"""Issue 17 (Pages v2), the card, the Overview and the shared layout, through HTTP on both
databases: each bug the operator's trial found has a test here that failed before its fix
(or in tests/browser/test_browser_card_v2.py where only a browser shows it)."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable

from test_live import stream
from web_support import SECRET, Browser

from longops import Longops, RunContext
from longops.cli.serve import Server
from longops.domain.status import Status
from longops.testing import Runner
from longops.web.session import COOKIE, CookieSigner, SessionData
from procs import wait_for

Make = Callable[[str | None], Browser]


def test_the_header_says_whose_running_operations_it_counts(app: Longops, browser: Make) -> None:
    page = browser("root").get("/c/CRONUS/").text
    indicator = page[page.index('id="background-indicator"') :][:600]
    assert "0 of yours running" in indicator
    assert "the Overview counts everyone" in indicator


def test_a_required_argument_left_blank_is_refused_naming_it(app: Longops, browser: Make) -> None:
    @app.task(name="post_batch")
    def post_batch(batch: str, invoices: int = 10) -> int:
        return invoices

    b = browser("alice")
    form = b.get("/c/CRONUS/entries/new?task=post_batch").text
    assert "{&#34;batch&#34;: &#34;&#34;, &#34;invoices&#34;: 10}" in form  # prefilled blank
    refused = b.post(
        "/c/CRONUS/entries/new", {"task": "post_batch", "args": '{"batch": "", "invoices": 10}'}
    )
    assert refused.status_code == 400
    assert "args.batch: is required: give it a value in the arguments" in refused.text
    assert 'role="alert"' in refused.text
    missing = b.post("/c/CRONUS/entries/new", {"task": "post_batch", "args": '{"invoices": 3}'})
    assert missing.status_code == 400
    assert "args.batch: is required" in missing.text
    assert app.service.count_operations("CRONUS").get(Status.READY, 0) == 0
    done = b.post("/c/CRONUS/entries/new", {"task": "post_batch", "args": '{"batch": "B-7"}'})
    assert done.status_code == 303


def test_delete_on_the_card_asks_first_and_says_it_cannot_be_undone(
    app: Longops, browser: Make
) -> None:
    op = app.as_user("alice").enqueue("report", company="CRONUS", description="Keep me")
    app.as_user("alice").service.hold(op.id)
    card_path = f"/c/CRONUS/entries/{op.id}"
    b = browser("alice")
    card = b.get(card_path).text
    assert f'id="card-delete-{op.id}" class="danger">Delete…</button>' in card
    asked = b.post(f"{card_path}/delete", {"next": card_path})
    assert asked.status_code == 200
    assert "Undo is offered for 30 seconds" in asked.text
    assert f"Operation {op.operation.entry_no} (Keep me)" in asked.text
    assert 'name="confirmed" value="1"' in asked.text
    assert app.service.get(op.id).status is Status.ON_HOLD  # nothing deleted yet
    done = b.post(f"{card_path}/delete", {"next": card_path, "confirmed": "1"})
    assert done.status_code == 303
    assert done.headers["location"] == "/c/CRONUS/entries"
    assert b.get(card_path).status_code == 404


def test_a_cancelled_operation_is_not_shown_as_an_error(app: Longops, browser: Make) -> None:
    @app.task(name="stops_itself")
    def stops_itself(ctx: RunContext) -> None:
        # Cancelled while it runs (as from the pages): the run ends with a cancel message.
        app.service.cancel(ctx.operation_id, reason="not needed")
        ctx.request_stop("not needed")  # what the worker's monitor does on a cancel
        ctx.check_cancelled()

    op = app.as_user("alice").enqueue("stops_itself", company="CRONUS")
    Runner(app).run_until_idle()
    done = app.service.get(op.id)
    assert done.status is Status.CANCELLED
    assert done.last_error, "a run cancelled while it ran has a stop message"
    b = browser("alice")
    card = b.get(f"/c/CRONUS/entries/{op.id}").text
    assert "error-box" not in card
    assert "Show error" not in card
    assert ">Error</h2>" not in card
    assert "<dt>Cancelled</dt>" in card
    assert "not needed" in card
    listing = b.get("/c/CRONUS/entries").text
    assert f"/entries/{op.id}#last-error" not in listing  # no Show error in its row's menu


def test_the_error_card_shows_the_error_step_and_traceback_first(
    app: Longops, browser: Make
) -> None:
    op = app.as_user("alice").enqueue("boom", company="CRONUS", max_attempts=1)
    Runner(app).run_until_idle()
    assert app.service.get(op.id).status is Status.ERROR
    card = browser("alice").get(f"/c/CRONUS/entries/{op.id}").text
    top = card.index('id="last-error"')
    assert top < card.index('id="card-live"') < card.index('id="card-details"'), "error first"
    assert "the printer is on fire" in card[top : top + 400]
    # The frames: the task's own (tests/web/conftest.py) highlighted and open, the rest not.
    own = re.findall(r'class="frame frame-own"><details open><summary>.*?</summary>', card)
    assert own, "the task's own frame is highlighted"
    assert any("conftest.py" in f and "in boom" in f for f in own)
    assert 'class="frame frame-lib"><details><summary>' in card
    assert '<a class="button-link" href="#last-error">Show error</a>' in card
    # The attempts table: each attempt's outcome and error on one line.
    assert re.search(
        r'<td class="one-line" title="[^"]*the printer is on fire[^"]*">'
        r'<span class="outcome outcome-error">error</span>: [^<]*the printer is on fire',
        card,
    )


def test_the_calm_card_hides_empty_fields_and_tells_the_requeue_actions_apart(
    app: Longops, browser: Make
) -> None:
    op = app.as_user("alice").enqueue("boom", company="CRONUS", max_attempts=1)
    Runner(app).run_until_idle()
    card = browser("alice").get(f"/c/CRONUS/entries/{op.id}").text
    for empty in ("<dt>Dedup key</dt>", "<dt>Labels</dt>", "<dt>Stalled since</dt>"):
        assert empty not in card, empty
    assert "<dt>Recurrence</dt>" not in card
    assert "Set Ready queues it again as it is: a saved checkpoint is kept" in card
    assert "Restart starts it over: the checkpoint is cleared" in card
    assert 'aria-label="Edit"' not in card  # Edit only on hold


def test_the_notice_of_an_action_follows_the_operation_once_it_is_done(
    app: Longops, browser: Make
) -> None:
    op = app.as_user("alice").enqueue("report", company="CRONUS", description="Stop me")
    b = browser("alice")
    page = b.get(f"/c/CRONUS/entries/{op.id}").text
    assert 'sse-swap="notice"' not in page  # no notice, no listener
    with stream(b, f"/c/CRONUS/stream?view=card&op={op.id}") as events:
        app.as_user("alice").service.cancel(op.id)
        notice = events.next_matching("notice")
    assert f"Operation {op.operation.entry_no} (Stop me) is now Cancelled." in notice


def cancel_on_the_card_while_it_runs(
    app: Longops, b: Browser, *, then_draw_the_card: bool
) -> tuple[str, SessionData | None, str]:
    """Run an operation whose run is cancelled from its card (the card's Cancel button,
    posted while it runs: "asked to stop") and then stops; with ``then_draw_the_card``,
    the redirected card is drawn while it still runs. The operation's id, the session the
    Cancel answered with, and the card drawn while it ran (or "")."""
    drawn: list[str] = []
    answered: list[SessionData | None] = []

    @app.task(name="cancelled_on_its_card")
    def cancelled_on_its_card(ctx: RunContext) -> None:
        card = f"/c/CRONUS/entries/{ctx.operation_id}"
        b.get(card)
        posted = b.post(f"{card}/cancel", {"next": card})
        assert posted.status_code == 303, posted.text[-300:]
        answered.append(CookieSigner(SECRET).load(b.client.cookies.get(COOKIE)))
        if then_draw_the_card:
            drawn.append(b.get(card).text)
        ctx.request_stop("cancelled")  # what the worker's monitor does on a cancel
        ctx.check_cancelled()

    op = app.as_user("alice").enqueue("cancelled_on_its_card", company="CRONUS")
    Runner(app).run_until_idle()
    assert app.service.get(op.id).status is Status.CANCELLED
    return str(op.id), answered[0] if answered else None, drawn[0] if drawn else ""


def test_a_stop_notice_carried_to_the_card_of_an_ended_run_says_it_was_cancelled(
    app: Longops, browser: Make
) -> None:
    # The run was cancelled between the Cancel's redirect and the card's read: the card is
    # drawn Cancelled, and its notice says so, not "asked to stop" (no transition is left
    # for its stream to see).
    b = browser("alice")
    op_id, answered, _ = cancel_on_the_card_while_it_runs(app, b, then_draw_the_card=False)
    entry_no = app.service.get(uuid.UUID(op_id)).entry_no
    assert answered is not None
    assert answered.notice is not None
    assert "asked to stop" in answered.notice, "the Cancel said the run stops soon"
    assert answered.about == op_id
    page = b.get(f"/c/CRONUS/entries/{op_id}").text
    assert 'data-status="cancelled"' in page
    notice = re.search(r'<div id="notice"[^>]*><p class="notice" role="status">([^<]*)', page)
    assert notice is not None, page[-2000:]
    assert notice.group(1) == f"Operation {entry_no} (cancelled_on_its_card) is now Cancelled."
    assert "asked to stop" not in page
    assert "notice=" not in page, "nothing left for the stream to replace"


def test_a_stop_notice_is_replaced_when_the_run_ends_before_the_stream_subscribes(
    app: Longops, server: Server, browser: Make
) -> None:
    # The card was read while the run still ran ("asked to stop"), and the run ended before
    # the page's stream subscribed, its end already handed out by the hub when the page
    # took its watermark (the hub moved on between the card's read and the render; or the
    # page came from another server process, whose hub stood further on): no transition
    # reaches the stream, and its first read of the card replaces the notice.
    b = browser("alice")
    op_id, _, page = cancel_on_the_card_while_it_runs(app, b, then_draw_the_card=True)
    entry_no = app.service.get(uuid.UUID(op_id)).entry_no
    assert 'data-status="in_process"' in page
    assert "asked to stop" in page
    found = re.search(r'sse-connect="([^"]+)"', page)
    assert found is not None
    url = html.unescape(found.group(1))
    assert f"notice={op_id}" in url
    end = app.store.last_event_id()
    wait_for(lambda: server.hub.watermark >= end, timeout=20, what="the hub to pass the end")
    url = re.sub(r"since=\d+", f"since={server.hub.watermark}", url)
    with stream(b, url) as events:
        notice = events.next_matching("notice", timeout=10)
    assert f"Operation {entry_no} (cancelled_on_its_card) is now Cancelled." in notice


def test_the_card_buttons_are_sent_only_when_they_change(app: Longops, browser: Make) -> None:
    op = app.as_user("alice").enqueue("report", company="CRONUS")
    b = browser("alice")
    page = b.get(f"/c/CRONUS/entries/{op.id}").text
    drawn = re.search(r'data-actions="([^"]*)"', page)
    assert drawn is not None
    assert f"acts={drawn.group(1).replace(',', '%2C')}" in page, "the stream knows them"
    url = f"/c/CRONUS/stream?view=card&op={op.id}&acts={drawn.group(1)}"
    alice = app.as_user("alice").service
    with stream(b, url) as events:
        alice.run_now(op.id)  # ready stays ready: the same buttons
        seen = events.until("card", "card-details")
        assert "card-actions" not in seen, "buttons the page has are not redrawn"
        alice.hold(op.id)
        actions = events.next_matching("card-actions")
    assert "Set Ready" in actions
    assert f'id="card-hold-{op.id}"' not in actions


def test_the_chart_buckets_fit_its_range(app: Longops, browser: Make) -> None:
    app.as_user("alice").enqueue("report", company="CRONUS")
    Runner(app).run_until_idle()
    page = browser("alice").get("/c/CRONUS/").text
    # Every run of the last 24 hours ended this hour: the chart shows 2 hours by 5 minutes,
    # not 24 bars of which only the last has anything.
    assert "Runs per 5 minutes: finished and failed" in page
    assert "1 run finished and 0 runs failed in the last 2 hours" in page


def test_the_overview_is_redrawn_live_when_an_operation_ends(app: Longops, browser: Make) -> None:
    app.as_user("alice").enqueue("report", company="CRONUS")
    b = browser("alice")
    page = b.get("/c/CRONUS/").text
    assert 'sse-swap="overview"' in page
    assert "view=overview" in page
    with stream(b, "/c/CRONUS/stream?view=overview") as events:
        Runner(app).run_until_idle()
        html = events.next_matching("overview")
    assert 'id="overview-live"' in html
    assert "1 run finished" in html


def test_sessions_are_in_the_navigation_only_of_those_who_may_see_them(browser: Make) -> None:
    assert 'href="/c/CRONUS/sessions"' not in browser("alice").get("/c/CRONUS/").text
    assert 'href="/c/CRONUS/sessions"' in browser("root").get("/c/CRONUS/").text
    page = browser("alice").get("/c/CRONUS/sessions").text
    assert "only SUPER users see them" in page


def test_an_unknown_path_has_the_header(browser: Make) -> None:
    b = browser("alice")
    for path in ("/c/CRONUS/no-such-page", "/no-such-page", "/c/CRONUS/entries/x/y/z/w"):
        missing = b.get(path)
        assert missing.status_code == 404, path
        assert '<header class="top">' in missing.text, path
        assert "There is no such page." in missing.text or "not found" in missing.text, path
    assert '<header class="top">' not in browser(None).get("/no-such-page").text


def test_a_category_is_deleted_when_unused_and_refused_clearly_otherwise(
    app: Longops, browser: Make
) -> None:
    app.set_category("SPARE", company="CRONUS", description="Nobody uses it")
    app.as_user("alice").enqueue("report", company="CRONUS", category="POSTING")
    admin = browser("admin")
    page = admin.get("/c/CRONUS/categories").text
    assert 'aria-label="Delete SPARE"' in page
    # Issue 17 P2: a Delete asks first, as an operation's does; nothing goes until confirmed.
    asked = admin.post("/c/CRONUS/categories/delete", {"code": "SPARE"})
    assert asked.status_code == 200
    assert "<h1>Delete category SPARE?</h1>" in asked.text
    assert 'name="confirmed" value="1"' in asked.text
    assert {c.code for c in app.companies.list_categories("CRONUS")} == {"POSTING", "SPARE"}
    yes = {"confirmed": "1"}
    used = admin.post("/c/CRONUS/categories/delete", {"code": "POSTING", **yes})
    assert used.status_code == 409
    assert "Category POSTING is used by 1 operation: it can be deleted once none names it" in (
        used.text
    )
    assert 'class="field-error" role="alert"' in used.text
    assert {c.code for c in app.companies.list_categories("CRONUS")} == {"POSTING", "SPARE"}
    alice = browser("alice")
    alice.get("/c/CRONUS/categories")
    assert alice.post("/c/CRONUS/categories/delete", {"code": "SPARE"}).status_code == 403
    assert alice.post("/c/CRONUS/categories/delete", {"code": "SPARE", **yes}).status_code == 403
    done = admin.post("/c/CRONUS/categories/delete", {"code": "SPARE", **yes})
    assert done.status_code == 303
    assert {c.code for c in app.companies.list_categories("CRONUS")} == {"POSTING"}
    assert "Category SPARE deleted." in admin.get("/c/CRONUS/categories").text
    assert admin.post("/c/CRONUS/categories/delete", {"code": "SPARE", **yes}).status_code == 404
    assert admin.post("/c/CRONUS/categories/delete", {"code": "SPARE"}).status_code == 404
