"""The entry card's edit form (on hold only), the overview's cues, Log Entries and the
Notifications inbox, through HTTP on both databases."""

from __future__ import annotations

from collections.abc import Callable

from web_support import Browser

from longops import Longops
from longops.domain.operation import Priority
from longops.domain.status import Status
from longops.testing import Runner

Make = Callable[[str | None], Browser]


def test_the_card_is_edited_only_while_on_hold(app: Longops, browser: Make) -> None:
    op = app.as_user("alice").enqueue("report", company="CRONUS", description="Before").id
    b = browser("alice")
    card = b.get(f"/c/CRONUS/entries/{op}").text
    # Not on hold: no Edit form at all (not a disabled one), a hint how to get there.
    assert 'aria-label="Edit"' not in card
    assert "To change its definition (description, priority, schedule…), Set On Hold first." in card
    refused = b.post(f"/c/CRONUS/entries/{op}/edit", {"description": "Too soon"})
    assert refused.status_code == 400
    assert "must be on hold to edit" in refused.text
    assert app.service.get(op).description == "Before"

    b.post(f"/c/CRONUS/entries/{op}/hold")
    card = b.get(f"/c/CRONUS/entries/{op}").text
    assert "<fieldset disabled>" not in card
    for label in ("Description", "Priority", "Category", "Earliest start", "Recurrence"):
        assert f">{label}</label>" in card, label
    saved = b.post(
        f"/c/CRONUS/entries/{op}/edit",
        {
            "description": "After",
            "priority": "high",
            "category": "POSTING",
            "recurrence": "every 15m",
            "recurrence_shown": "",
            "max_attempts": "3",
        },
    )
    assert saved.status_code == 303
    edited = app.service.get(op)
    assert edited.description == "After"
    assert edited.priority is Priority.HIGH
    assert edited.category == "POSTING"
    assert edited.max_attempts == 3
    assert edited.recurrence is not None
    assert edited.recurrence.minutes_between_runs == 15
    assert edited.status is Status.ON_HOLD
    card = b.get(f"/c/CRONUS/entries/{op}").text
    assert 'value="every 15m"' in card

    fields = b.post(
        f"/c/CRONUS/entries/{op}/edit",
        {
            "description": "After",
            "recurrence": "every 15m",
            "recurrence_shown": "every 15m",
            "rec_minutes": "30",
            "rec_days": ["0", "4"],
            "rec_start": "08:00",
            "rec_end": "18:00",
        },
    )
    assert fields.status_code == 303, fields.text
    rec = app.service.get(op).recurrence
    assert rec is not None
    assert (rec.minutes_between_runs, sorted(rec.weekdays)) == (30, [0, 4])
    bad = b.post(f"/c/CRONUS/entries/{op}/edit", {"recurrence": "whenever"})
    assert bad.status_code == 400
    assert "recurrence" in bad.text

    bob = browser("bob")
    assert bob.post(f"/c/CRONUS/entries/{op}/edit", {"description": "Bob's"}).status_code == 403
    viewer = browser("viewer")
    # A viewer gets no Edit form at all (no action controls for read-only users).
    viewer_card = viewer.get(f"/c/CRONUS/entries/{op}").text
    assert 'aria-label="Edit"' not in viewer_card
    assert "<fieldset" not in viewer_card
    assert app.service.get(op).description == "After"


def test_the_overview_counts_its_cues(app: Longops, browser: Make) -> None:
    alice = app.as_user("alice")
    for _ in range(2):
        alice.enqueue("report", company="CRONUS")
    alice.enqueue("boom", company="CRONUS")
    Runner(app).run_once()  # the first one finishes
    Runner(app).run_until_idle()
    alice.enqueue("report", company="CRONUS")
    page = browser("alice").get("/c/CRONUS/").text
    assert '<span class="cue-label">Ready</span> <span class="cue-count">1</span>' in page
    assert '<span class="cue-label">Failed</span> <span class="cue-count">1</span>' in page
    assert '<span class="cue-label">My failures</span> <span class="cue-count">1</span>' in page
    assert '<span class="cue-label">In process</span> <span class="cue-count">0</span>' in page
    assert '<span class="cue-label">Stalled</span> <span class="cue-count">0</span>' in page
    # The chart counts runs (attempts), in the company's time zone, and says so; every run
    # ended just now, so its bars are of 5 minutes over 2 hours (issue 17).
    assert "Runs per 5 minutes: finished and failed" in page
    assert "times in the company's time zone, Europe/Amsterdam" in page
    assert (
        'aria-label="Runs finished and failed per 5 minutes, last 2 hours, '
        'times in Europe/Amsterdam"' in page
    )
    assert "2 runs finished and 1 run failed in the last 2 hours (Europe/Amsterdam)" in page
    assert (
        '<span class="cue-label">My failures</span> <span class="cue-count">0</span>'
        in browser("bob").get("/c/CRONUS/").text
    )


def test_log_entries_list_attempts_and_admins_delete_old_ones(app: Longops, browser: Make) -> None:
    app.as_user("alice").enqueue("boom", company="CRONUS", description="Burns")
    app.as_user("alice").enqueue("report", company="CRONUS")
    Runner(app).run_until_idle()
    alice = browser("alice")
    page = alice.get("/c/CRONUS/log-entries").text
    assert page.count("data-attempt-id=") == 2
    assert "the printer is on fire" in page
    assert "<summary>Traceback</summary>" in page
    assert "Delete entries older than" not in page
    errors = alice.get("/c/CRONUS/log-entries?outcome=error").text
    assert errors.count("data-attempt-id=") == 1
    assert alice.post("/c/CRONUS/log-entries/delete", {"older_than_days": "0"}).status_code == 403
    admin = browser("admin")
    page = admin.get("/c/CRONUS/log-entries").text
    assert '<label for="l-days">Delete entries older than</label>' in page
    done = admin.post("/c/CRONUS/log-entries/delete", {"older_than_days": "0"})
    assert done.status_code == 303
    assert admin.get("/c/CRONUS/log-entries").text.count("data-attempt-id=") == 0
    assert admin.post("/c/CRONUS/log-entries/delete", {"older_than_days": "x"}).status_code == 400


def test_the_inbox_lists_restarts_and_marks_read(app: Longops, browser: Make) -> None:
    failed = app.as_user("alice").enqueue("boom", company="CRONUS", description="Burns").id
    app.as_user("alice").enqueue("report", company="CRONUS", description="Prints")
    Runner(app).run_until_idle()
    b = browser("alice")
    page = b.get("/c/CRONUS/notifications").text
    assert page.count('class="note unread') == 2
    assert "<strong>Failed:</strong> Burns" in page
    assert "<strong>Succeeded:</strong> Prints" in page
    assert page.count(">Open</a>") == 2
    assert page.count(">Restart</button>") == 1, "only the failed one restarts"
    assert '<span class="badge">2</span>' in page
    assert b.post(f"/c/CRONUS/entries/{failed}/restart").status_code == 303
    assert app.service.get(failed).status is Status.READY
    b.post("/c/CRONUS/notifications/read")
    page = b.get("/c/CRONUS/notifications").text
    assert 'class="note unread' not in page
    assert '<span class="badge">' not in page
    assert "No notifications unread" in b.get("/c/CRONUS/notifications?unread=1").text
    assert 'class="note' not in browser("bob").get("/c/CRONUS/notifications").text
