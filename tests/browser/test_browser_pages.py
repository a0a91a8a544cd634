"""The pages' "Must show" list (issue 6) in a real browser against ``longops serve``.

Each test signs in through the login form, acts through the page's own controls and checks
the result twice: on the page, and in the database through ``server.lib`` (SUPER).
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from browser_support import (
    COMPANY_A,
    COMPANY_B,
    PASSWORD,
    UI,
    Server,
    low_contrast_text,
    sign_in,
    unlabelled_controls,
    wait_until,
)
from playwright.sync_api import Browser, Locator, Page, Route, expect

from longops.core.enqueue import EnqueueRequest
from longops.domain.operation import Operation
from longops.domain.status import Status
from longops.store.base import OperationQuery

pytestmark = pytest.mark.timeout(240)

ROW_ACTIONS = ("Set Ready", "Set On Hold", "Restart", "Run now", "Cancel", "Force cancel", "Delete")
BULK_ACTIONS = ("Cancel selected", "Restart selected", "Delete selected")
LIVE = 30_000  # ms: how long a live update may take to reach the page


def marker() -> str:
    return uuid.uuid4().hex[:8]


def entries(company: str = COMPANY_A) -> str:
    return f"/c/{company}/entries"


def card(op_id: object, company: str = COMPANY_A) -> str:
    return f"/c/{company}/entries/{op_id}"


def row(page: Page, op_id: object) -> Locator:
    return page.locator(f'tr[data-operation-id="{op_id}"]')


def status_of(server: Server, op_id: uuid.UUID) -> Status:
    return server.lib.service.get(op_id).status


def get(server: Server, op_id: uuid.UUID) -> Operation:
    return server.lib.service.get(op_id)


def enqueue_as(
    server: Server, user: str, task: str, *, company: str = COMPANY_A, **options: Any
) -> uuid.UUID:
    """Enqueue through the library as ``user`` (so the operation is theirs)."""
    return server.lib.as_user(user).enqueue(task, company=company, **options).id


def not_navigated(page: Page) -> bool:
    # Set once after the page loaded; a reload or navigation would drop it.
    return bool(page.evaluate("window.__longopsTestMarker === 'still here'"))


def test_sign_in_enqueue_watch_progress_cancel_and_toast(server: Server, ui: UI) -> None:
    page = ui.page
    description = f"Browser report {marker()}"
    sign_in(ui, server, "admin")
    assert f"/c/{COMPANY_A}/" in page.url

    page.get_by_role("link", name="Job Queue Entries").click()
    page.wait_for_url(re.compile(r"/entries"))
    ui.shot("entries")
    page.get_by_role("link", name="New operation").click()
    page.wait_for_url(re.compile(r"/entries/new"))
    ui.shot("new-operation")
    page.get_by_label("Task").select_option("pages.slow")
    page.get_by_label("Arguments (JSON)").fill('{"steps": 3, "items": 40, "pause": 0.25}')
    page.get_by_label("Description").fill(description)
    page.get_by_role("button", name="Enqueue").click()
    page.wait_for_url(re.compile(r"/entries/[0-9a-f-]{36}$"))
    ui.shot("entry-card-after-enqueue")
    op_id = uuid.UUID(page.url.rsplit("/", 1)[1])
    expect(page.get_by_role("heading", level=1)).to_contain_text(description)
    assert get(server, op_id).user == "admin"

    # Watch the bar on the list page, without reloading it.
    ui.goto(server.url(entries() + "?task=pages.slow"), "entries-filtered")
    target = row(page, op_id)
    expect(target).to_have_attribute("data-status", "in_process", timeout=LIVE)
    page.evaluate("window.__longopsTestMarker = 'still here'")
    navigations = len(ui.navigated)
    selector = f'tr[data-operation-id="{op_id}"] progress[aria-label="Progress"]'
    first = page.wait_for_function(
        f"() => {{ const p = document.querySelector('{selector}');"
        " return p && p.value > 0 ? p.value : null; }",
        timeout=LIVE,
    ).json_value()
    ui.shot("progress-first-reading")
    second = page.wait_for_function(
        f"(before) => {{ const p = document.querySelector('{selector}');"
        " return p && p.value > before ? p.value : null; }",
        arg=first,
        timeout=LIVE,
    ).json_value()
    ui.shot("progress-advanced")
    assert float(second) > float(first) > 0
    expect(target).to_contain_text("%")
    expect(target).to_contain_text("ETA")
    assert not_navigated(page), "the page reloaded or navigated while progress advanced"
    assert len(ui.navigated) == navigations

    target.get_by_role("button", name="Cancel", exact=True).click()
    expect(row(page, op_id)).to_have_attribute("data-status", "cancelled", timeout=LIVE)
    expect(row(page, op_id)).to_contain_text("Cancelled")
    # The Cancel's "asked to stop" is history once the row is Cancelled (issue 17).
    notice = page.locator("#notice")
    ended = f"Operation {get(server, op_id).entry_no} ({description}) is now Cancelled."
    expect(notice).to_have_text(ended, timeout=LIVE)
    expect(notice).not_to_contain_text("asked to stop")
    toast = page.locator("#toasts .toast[role=status]").filter(has_text=description)
    expect(toast).to_contain_text("Cancelled", timeout=LIVE)
    ui.shot("cancelled-with-toast")
    wait_until(lambda: status_of(server, op_id) is Status.CANCELLED, timeout=30, what="cancelled")


def test_restart_a_failed_operation_from_its_card(server: Server, ui: UI) -> None:
    page = ui.page
    description = f"Failing check {marker()}"
    op_id = enqueue_as(server, "admin", "pages.fail", description=description)
    wait_until(lambda: status_of(server, op_id) is Status.ERROR, timeout=60, what="error")
    assert len(server.lib.service.attempts(op_id)) == 1

    sign_in(ui, server, "admin")
    ui.goto(server.url(card(op_id)), "failed-card")
    expect(page.get_by_role("heading", level=1)).to_contain_text(description)
    expect(page.locator("main")).to_contain_text("Error")
    expect(page.locator("main")).to_contain_text("the ledger does not balance")
    page.get_by_role("button", name="Restart", exact=True).click()
    page.wait_for_load_state()
    ui.shot("after-restart")
    wait_until(
        lambda: (
            len(server.lib.service.attempts(op_id)) == 2
            and status_of(server, op_id) is Status.ERROR
        ),
        timeout=60,
        what="the restarted operation to run (and fail) again",
    )
    ui.goto(server.url(card(op_id)), "card-second-attempt")
    # The attempts table lists both runs, each with the error.
    attempts = page.locator("table").filter(has_text="the ledger does not balance")
    expect(attempts.locator("tbody tr")).to_have_count(2)


def test_hold_and_ready_from_the_card(server: Server, ui: UI) -> None:
    page = ui.page
    description = f"Scheduled idle {marker()}"
    op_id = enqueue_as(
        server, "admin", "pages.idle", description=description, delay=timedelta(hours=1)
    )
    sign_in(ui, server, "admin")
    ui.goto(server.url(card(op_id)), "ready-card")
    # Editable only while on hold (Business Central's rule): no Save that works before.
    save = page.get_by_role("button", name="Save", exact=True)
    assert save.count() == 0 or save.is_disabled()

    page.get_by_role("button", name="Set On Hold", exact=True).click()
    page.wait_for_load_state()
    ui.shot("on-hold")
    wait_until(lambda: status_of(server, op_id) is Status.ON_HOLD, timeout=30, what="on hold")
    expect(page.locator("main")).to_contain_text("On Hold")
    # Editable only while on hold (Business Central's rule).
    expect(save).to_be_enabled()
    expect(page.get_by_label("Description")).to_be_editable()

    page.get_by_role("button", name="Set Ready", exact=True).click()
    page.wait_for_load_state()
    ui.shot("ready-again")
    wait_until(lambda: status_of(server, op_id) is Status.READY, timeout=30, what="ready")
    expect(page.get_by_role("button", name="Set On Hold", exact=True)).to_be_visible()
    server.lib.service.cancel(op_id)


def test_bulk_cancel_fifty_operations_selected_by_a_filter(server: Server, ui: UI) -> None:
    page = ui.page
    tag = marker()
    later = timedelta(hours=1)
    fifty = server.lib.as_user("admin").enqueue_many(
        [
            EnqueueRequest(
                task="pages.idle", company=COMPANY_A, description=f"Bulk {tag} #{i}", delay=later
            )
            for i in range(50)
        ]
    )
    # Same text, other status: outside the filter, so they must survive the bulk cancel.
    held = server.lib.as_user("admin").enqueue_many(
        [
            EnqueueRequest(
                task="pages.idle", company=COMPANY_A, description=f"Bulk {tag} held", on_hold=True
            )
            for _ in range(3)
        ]
    )

    sign_in(ui, server, "admin")
    ui.goto(server.url(entries() + f"?task=pages.idle&status=ready&q={tag}"), "filtered")
    expect(page.locator("tr[data-operation-id]")).not_to_have_count(0)
    page.get_by_label("All matching the filter").check()
    page.get_by_role("button", name="Cancel selected").click()
    page.wait_for_load_state()
    ui.shot("bulk-confirmation")
    expect(page.get_by_role("heading", name="Cancel 50 operations?")).to_be_visible()
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_load_state()
    ui.shot("after-bulk-cancel")

    def all_cancelled() -> bool:
        return all(status_of(server, i) is Status.CANCELLED for i in fifty)

    wait_until(all_cancelled, timeout=60, what="the 50 operations to be cancelled")
    assert all(status_of(server, i) is Status.ON_HOLD for i in held)
    tagged = server.lib.service.list_operations(
        OperationQuery(company=COMPANY_A, task="pages.idle", text=tag, limit=1000)
    )
    cancelled = [op for op in tagged if op.status is Status.CANCELLED]
    assert len(tagged) == 53
    assert len(cancelled) == 50


def test_viewer_sees_no_action_controls_and_a_forged_post_is_refused(
    server: Server, ui: UI, browser: Browser
) -> None:
    page = ui.page
    description = f"Viewer can see {marker()}"
    op_id = enqueue_as(
        server, "admin", "pages.idle", description=description, delay=timedelta(hours=1)
    )
    sign_in(ui, server, "viewer")
    ui.goto(server.url(entries() + "?task=pages.idle&status=ready"), "viewer-entries")
    expect(row(page, op_id)).to_be_visible()
    for label in (*ROW_ACTIONS, *BULK_ACTIONS):
        expect(page.get_by_role("button", name=label, exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="New operation")).to_have_count(0)
    expect(page.get_by_label("All matching the filter")).to_have_count(0)
    expect(page.locator('input[type=checkbox][name="ids"]')).to_have_count(0)

    ui.goto(server.url(card(op_id)), "viewer-card")
    expect(page.get_by_role("heading", level=1)).to_contain_text(description)
    for label in (*ROW_ACTIONS, "Save"):
        expect(page.get_by_role("button", name=label, exact=True)).to_have_count(0)

    # A valid CSRF token from the viewer's own page, and the viewer's session cookie.
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    assert token
    action = server.url(card(op_id) + "/hold")
    refused = page.request.post(action, form={"csrf_token": token}, max_redirects=0)
    assert refused.status == 403, refused.status
    bulk = page.request.post(
        server.url(entries() + "/bulk"),
        form={"csrf_token": token, "action": "cancel", "ids": str(op_id), "confirmed": "1"},
        max_redirects=0,
    )
    assert bulk.status == 403, bulk.status
    assert status_of(server, op_id) is Status.READY

    # The same request from an admin's session succeeds: the 403 is the permission, not
    # the form.
    admin_context = browser.new_context()
    try:
        admin = UI.attach(admin_context.new_page(), ui.folder / "admin")
        sign_in(admin, server, "admin")
        admin.goto(server.url(card(op_id)), "admin-card")
        admin_token = admin.page.locator('input[name="csrf_token"]').first.get_attribute("value")
        done = admin.page.request.post(
            action, form={"csrf_token": admin_token or ""}, max_redirects=0
        )
        assert done.status in (200, 302, 303), done.status
        assert status_of(server, op_id) is Status.ON_HOLD
        admin.finish()
    finally:
        admin.closing = True
        admin_context.close()
    admin.check()
    server.lib.service.cancel(op_id)


def test_company_a_user_gets_404_for_company_b_entry(server: Server, ui: UI) -> None:
    page = ui.page
    description = f"Fabrikam secret {marker()}"
    theirs = enqueue_as(
        server, "bob", "pages.idle", company=COMPANY_B, description=description, on_hold=True
    )
    sign_in(ui, server, "admin")
    ui.expect_status(404, f"/entries/{theirs}")
    for company in (COMPANY_B, COMPANY_A):
        response = ui.goto(server.url(card(theirs, company)), f"404-{company}")
        assert response is not None
        assert response.status == 404, (company, response.status)
        expect(page.locator("body")).not_to_contain_text(description)
    unknown = uuid.uuid4()
    ui.expect_status(404, f"/entries/{unknown}")
    response = ui.goto(server.url(card(unknown)), "404-unknown")
    assert response is not None
    assert response.status == 404


def test_company_b_user_opens_its_own_entry(server: Server, ui: UI) -> None:
    # The control for the 404 test: the same URL works for a user of company B.
    description = f"Fabrikam own {marker()}"
    theirs = enqueue_as(
        server, "bob", "pages.idle", company=COMPANY_B, description=description, on_hold=True
    )
    sign_in(ui, server, "bob")
    assert f"/c/{COMPANY_B}/" in ui.page.url
    response = ui.goto(server.url(card(theirs, COMPANY_B)), "own-card")
    assert response is not None
    assert response.status == 200
    expect(ui.page.get_by_role("heading", level=1)).to_contain_text(description)


VIEWER_BUTTONS = {"Sign out", "Find", "Filter", "Switch", "Mark all read"}


def button_texts(page: Page) -> list[str]:
    return list(
        page.evaluate(
            "() => [...document.querySelectorAll('button, input[type=submit]')]"
            ".map(b => b.textContent.trim() || b.value)"
        )
    )


NAV = ("Overview", "Job Queue Entries", "Log Entries", "Categories", "Notifications")
"""The navigation of a user who is not SUPER (Sessions, of every company's workers, is not in
it: issue 17); the page itself still says what such a user can see there."""


@pytest.mark.parametrize("user", ["admin", "viewer"])
def test_every_page_renders_and_is_captured(server: Server, ui: UI, user: str) -> None:
    page = ui.page
    op_id = enqueue_as(server, "admin", "pages.idle", description=f"Tour {marker()}", on_hold=True)
    sign_in(ui, server, user)
    for name in NAV:
        page.locator("header, nav").get_by_role("link", name=re.compile(f"^{name}")).first.click()
        page.wait_for_load_state()
        ui.shot(name)
        expect(page.locator("#background-indicator")).to_contain_text("running")
        assert unlabelled_controls(page) == [], name
        assert low_contrast_text(page) == [], name
        if user == "viewer":
            # Read-only: signing out and filtering are the only things to press.
            assert set(button_texts(page)) <= VIEWER_BUTTONS, name
    expect(page.locator("header nav").get_by_role("link", name="Sessions")).to_have_count(0)
    ui.goto(server.url(f"/c/{COMPANY_A}/sessions"), "sessions")
    expect(page.locator("main")).to_contain_text("only SUPER users see them")
    ui.goto(server.url(card(op_id)), "entry-card")
    assert unlabelled_controls(page) == []
    assert low_contrast_text(page) == []
    if user == "admin":
        ui.goto(server.url(entries() + "/new"), "new-operation")
        assert unlabelled_controls(page) == []
    ui.goto(server.url(entries() + "?mine=1"), "my-operations")
    assert unlabelled_controls(page) == []
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login"))
    ui.shot("signed-out")


def test_on_a_narrow_screen_nothing_scrolls_sideways(server: Server, ui: UI) -> None:
    # Issue 17: on a phone the list is cards, so neither the page nor the table's box
    # scrolls sideways (it used to be the box).
    page = ui.page
    page.set_viewport_size({"width": 390, "height": 844})
    enqueue_as(server, "admin", "pages.idle", description=f"Narrow {marker()}", on_hold=True)
    sign_in(ui, server, "admin")
    ui.goto(server.url(entries()), "narrow-entries")
    overflow = page.evaluate(
        """() => {
        const table = document.querySelector('tr[data-operation-id]').closest('table');
        let box = table.parentElement;
        while (box && getComputedStyle(box).overflowX === 'visible') box = box.parentElement;
        return {
            page: document.documentElement.scrollWidth - window.innerWidth,
            scrolls: !!box && box !== document.body && box.scrollWidth > box.clientWidth,
        };
    }"""
    )
    assert overflow["page"] <= 1, overflow
    assert not overflow["scrolls"], overflow


def test_sign_in_and_reach_the_entries_with_the_keyboard_only(server: Server, ui: UI) -> None:
    page = ui.page
    ui.goto(server.url("/login"), "login")
    # The user name field has the focus when the page opens; Tab moves on, Enter submits.
    page.keyboard.type("admin")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/c/[^/]+/"))
    ui.shot("signed-in-by-keyboard")
    for _ in range(30):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const e = document.activeElement; const s = getComputedStyle(e);"
            " return {text: e.textContent.trim(), outline: s.outlineStyle,"
            " shadow: s.boxShadow}; }"
        )
        if focused["text"] == "Job Queue Entries":
            break
    else:
        raise AssertionError("Tab never reached the Job Queue Entries link")
    # Focus is visible: an outline or a focus ring (box shadow).
    assert focused["outline"] != "none" or focused["shadow"] != "none", focused
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/entries"))
    ui.shot("entries-by-keyboard")


def test_a_page_gets_what_happened_before_its_live_stream_connected(server: Server, ui: UI) -> None:
    # An operation ends after the page was drawn but before its stream subscribed (a
    # form's redirect loading the page, say): the row and the toast must still arrive.
    page = ui.page
    description = f"Ends in the gap {marker()}"
    op_id = enqueue_as(
        server, "admin", "pages.idle", description=description, delay=timedelta(hours=1)
    )
    sign_in(ui, server, "admin")
    held: list[Route] = []
    page.route(re.compile(r"/stream\?"), lambda route: held.append(route))
    listing = server.url(entries() + f"?q={description.split()[-1]}")
    with page.expect_request(re.compile(r"/stream\?")):
        ui.goto(listing, "drawn-stream-held")
    wait_until(lambda: page.evaluate("1") and held, timeout=10, what="the held stream")
    expect(row(page, op_id)).to_have_attribute("data-status", "ready")

    # A second page of the same user, live, proves the hub has passed the change on
    # before the first page's stream is let through.
    observer = UI.attach(page.context.new_page(), ui.folder / "observer")
    try:
        observer.goto(listing, "observer")
        server.lib.service.cancel(op_id, reason="ends in the gap")
        expect(row(observer.page, op_id)).to_have_attribute(
            "data-status", "cancelled", timeout=LIVE
        )
        observer.finish()
    finally:
        observer.closing = True
        observer.page.close()
    observer.check()

    held[0].continue_()
    expect(row(page, op_id)).to_have_attribute("data-status", "cancelled", timeout=LIVE)
    toast = page.locator("#toasts .toast[role=status]").filter(has_text=description)
    expect(toast).to_contain_text("Cancelled", timeout=LIVE)
    ui.shot("caught-up")
