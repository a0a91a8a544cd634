"""What a new user's trial of the pages found, each kept fixed: argument hints on the New
operation form, the overview chart's labels, facets after a bulk action, the entry card's
words, the Edit form's look and dates, the notices' sentences, and the Categories form's
errors."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from test_live import stream
from web_support import Browser

from longops import Longops
from longops.domain.progress import Progress
from longops.domain.status import Status
from longops.testing import Runner
from longops.web import present

Make = Callable[[str | None], Browser]


def textarea(page: str, name: str) -> str:
    found = re.search(rf'<textarea[^>]*name="{name}"[^>]*>(.*?)</textarea>', page, re.S)
    assert found, page[-1500:]
    return html.unescape(found.group(1))


def test_the_new_operation_form_shows_each_tasks_parameters(browser: Make) -> None:
    b = browser("alice")
    form = b.get("/c/CRONUS/entries/new").text
    # Every task's parameters, from the same schema the API publishes as argumentsSchema.
    assert "<code>pages</code> (integer, default 1)" in form
    assert 'data-example="{&#34;pages&#34;: 1}"' in form
    assert textarea(form, "args") == "", "no task chosen yet: nothing prefilled"
    # A link naming the task starts with its arguments to edit.
    chosen = b.get("/c/CRONUS/entries/new?task=report").text
    assert textarea(chosen, "args") == '{"pages": 1}'
    # On an error the form comes back with what was typed, not the example.
    bad = b.post("/c/CRONUS/entries/new", {"task": "report", "args": '{"pages": "x"'})
    assert bad.status_code == 400
    assert textarea(bad.text, "args") == '{"pages": "x"'


def facet(page: str, status: str) -> str:
    found = re.search(rf'data-status="{status}">[^<]*<span class="count">([^<]*)</span>', page)
    assert found, page[:3000]
    return found.group(1)


def test_facets_are_right_after_a_bulk_action_and_follow_the_stream(
    app: Longops, browser: Make
) -> None:
    alice = app.as_user("alice")
    ids = [
        str(alice.enqueue("report", company="CRONUS", description=f"Bulk {i}").id) for i in range(3)
    ]
    b = browser("alice")
    page = b.get("/c/CRONUS/entries?q=Bulk").text
    assert (facet(page, "ready"), facet(page, "cancelled")) == ("3", "0")
    done = b.post(
        "/c/CRONUS/entries/bulk",
        {"action": "cancel", "ids": ids, "confirmed": "1", "q": "Bulk",
         "next": "/c/CRONUS/entries?q=Bulk"},
    )  # fmt: skip
    assert done.status_code == 303
    after = b.get(done.headers["location"]).text
    assert (facet(after, "ready"), facet(after, "cancelled")) == ("0", "3")

    # A status that changes while the list is open recounts the facets through the stream.
    url = "/c/CRONUS/stream?view=list&rows=&next=" + "/c/CRONUS/entries%3Fq%3DBulk"
    with stream(b, url) as events:
        alice.service.restart(ids[0])
        data = events.next_matching("facets")
        while facet(data, "ready") != "1":  # an earlier recount may come first
            data = events.next_matching("facets")
    assert facet(data, "cancelled") == "2"
    assert 'sse-swap="facets"' in data, "the new facets listen again"
    assert 'href="?q=Bulk&amp;status=ready"' in data, "the links keep the page's filter"


def timeline_text(card: str) -> str:
    part = card[card.index('<ol class="timeline">') :]
    return re.sub(r"<[^>]+>", "", part[: part.index("</ol>")])


def test_the_card_shows_status_timeline_and_progress_in_words(app: Longops, browser: Make) -> None:
    alice = app.as_user("alice")
    b = browser("alice")
    ran = alice.enqueue("report", company="CRONUS")
    Runner(app).run_until_idle()
    timeline = timeline_text(b.get(f"/c/CRONUS/entries/{ran.id}").text)
    assert "attempt ended (run 1): outcome: success; status: finished" in timeline, timeline
    for python in ("None", "True", "False", ": ;", "_"):
        assert python not in timeline, (python, timeline)

    handle = alice.enqueue("report", company="CRONUS", delay=timedelta(hours=1))
    handle.cancel(reason="not needed after all")
    card = b.get(f"/c/CRONUS/entries/{handle.id}").text
    assert "<dt>Status</dt><dd>Cancelled</dd>" in card, "once, not 'Cancelled (cancelled)'"
    assert "status changed: action: cancel; status: cancelled; by: alice" in timeline_text(card)

    # A rate and an ETA belong to a running operation only.
    op = app.service.get(handle.id)
    reading = Progress(completed=78, total=3000, unit="rounds", rate=19.9,
                       eta_at=app.clock.now() + timedelta(minutes=2))  # fmt: skip
    now = app.clock.now()
    running = present.progress_view(replace(op, status=Status.IN_PROCESS), reading, now)
    assert (running.rate, running.eta[:4]) == ("19.9 rounds/s", "ETA ")
    for status in (Status.CANCELLED, Status.ERROR, Status.ON_HOLD, Status.READY):
        stopped = present.progress_view(replace(op, status=status), reading, now)
        assert (stopped.rate, stopped.eta) == (None, ""), status
        assert stopped.counts == "78 of 3,000 rounds", "what was done stays"


def test_event_words_and_status_text() -> None:
    assert (
        present.event_words(
            {"reason": "", "stop_mode": None, "cancel_mode": None, "force": False, "entry_no": 3}
        )
        == []
    )
    assert present.event_words({"action": "set_ready", "force": True, "bytes": 1200}) == [
        "action: set ready",
        "by force",
        "bytes: 1,200",
    ]


def test_dates_in_forms_are_iso_text_in_the_companys_time_zone(app: Longops, browser: Make) -> None:
    held = app.as_user("alice").enqueue("report", company="CRONUS", on_hold=True)
    b = browser("alice")
    card = b.get(f"/c/CRONUS/entries/{held.id}").text
    field = re.search(r'<input id="e-start" name="earliest_start" ([^>]*)>', card)
    assert field, card[-3000:]
    assert 'type="text"' in field.group(1), "not datetime-local, which the browser's locale shows"
    assert re.search(r'value="\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"', field.group(1))
    assert "in Europe/Amsterdam time" in card
    saved = b.post(f"/c/CRONUS/entries/{held.id}/edit", {"earliest_start": "2999-01-01 08:00"})
    assert saved.status_code == 303
    start = app.service.get(held.id).earliest_start_at
    assert start.isoformat().startswith("2999-01-01T07:00:00"), "08:00 in Amsterdam is 07:00 UTC"
    for page in ("/c/CRONUS/entries/new", "/c/CRONUS/log-entries"):
        assert 'type="datetime-local"' not in b.get(page).text, page


def test_action_notices_are_sentences_and_the_inbox_has_no_stray_space(
    app: Longops, browser: Make
) -> None:
    alice = app.as_user("alice")
    handle = alice.enqueue("report", company="CRONUS", description="Post invoices", on_hold=True)
    op = app.service.get(handle.id)
    b = browser("alice")
    card = f"/c/CRONUS/entries/{op.id}"
    b.get(card)  # the signed-in session's CSRF token
    for path, sentence in (
        ("set-ready", "set ready"),
        ("hold", "put on hold"),
        ("cancel", "cancelled"),
        ("restart", "restarted"),
    ):
        done = b.post(f"{card}/{path}", {"next": card})
        assert done.status_code == 303, (path, done.text[-500:])
        notice = f"Operation {op.entry_no} (Post invoices) {sentence}."
        assert f'<p class="notice" role="status">{notice}</p>' in b.get(card).text, path
    Runner(app).run_until_idle()
    inbox = b.get("/c/CRONUS/notifications").text
    # No space between the kind and its colon (the inbox row spaces its parts apart).
    assert '<span class="note-title"><strong>Succeeded:</strong> Post invoices</span>' in inbox
    deleted = b.post(f"{card}/delete", {"next": card, "confirmed": "1"})
    assert deleted.headers["location"] == "/c/CRONUS/entries"
    assert f"Operation {op.entry_no} (Post invoices) deleted." in b.get("/c/CRONUS/entries").text


def test_a_running_operation_asked_to_cancel_is_said_to_stop_soon(app: Longops) -> None:
    op = app.service.get(app.as_user("alice").enqueue("report", company="CRONUS").id)
    running = replace(op, status=Status.IN_PROCESS)
    assert present.action_notice("cancel", running, running) == (
        f"Operation {op.entry_no} (Print a report) asked to stop; "
        "it is cancelled when its task next checks."
    )
    assert present.action_notice("delete", op, None) == (
        f"Operation {op.entry_no} (Print a report) deleted."
    )


def test_a_bad_category_comes_back_on_the_categories_form(app: Longops, browser: Make) -> None:
    admin = browser("admin")
    admin.get("/c/CRONUS/categories")
    bad = admin.post(
        "/c/CRONUS/categories",
        {"code": "bad code!", "description": "Kept text", "max_concurrent": "3", "paused": "1"},
    )
    assert bad.status_code == 400
    page = bad.text
    assert "<h1>Categories</h1>" in page, "the Categories page, not an error page"
    assert "Back to Job Queue Entries" not in page
    code = re.search(r'<input id="c-code"[^>]*>', page)
    assert code, page[-3000:]
    assert 'value="bad code!"' in code.group(0)
    assert 'aria-invalid="true"' in code.group(0)
    assert 'aria-describedby="c-code-error"' in code.group(0)
    assert re.search(
        r'<span id="c-code-error" class="field-error" role="alert">Code must be ', page
    )
    assert 'value="Kept text"' in page
    assert re.search(r'<input id="c-max"[^>]*value="3"', page)
    assert {c.code for c in app.companies.list_categories("CRONUS")} == {"POSTING"}

    # A row's Save keeps what was typed in that row, the message beside it.
    row = admin.post(
        "/c/CRONUS/categories",
        {"code": "POSTING", "description": "Typed", "max_concurrent": "0", "row": "1"},
    )
    assert row.status_code == 400
    assert 'value="Typed"' in row.text
    assert 'role="alert">Max concurrent must be between 1 and 1000.</p>' in row.text
    assert 'value="0" aria-label="Max concurrent of POSTING" aria-invalid="true"' in row.text
    [cat] = app.companies.list_categories("CRONUS")
    assert (cat.description, cat.max_concurrent) == ("Posting", 1)
