"""What a new user's trial found, in the browser: the Job Queue Entries list fits a 1366 px
screen with every row's action and menu visible, the header fits a 390 px phone, choosing a
task on the New operation form fills in its arguments, and the status facets follow the rows
live."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from browser_support import COMPANY_A, COMPANY_B, PASSWORD, UI, Server, sign_in
from playwright.sync_api import expect

from longops.domain.security import PermissionSet

pytestmark = pytest.mark.timeout(240)

LIVE = 30_000  # ms: how long a live update may take to reach the page

FITS = """() => {
    const wrap = document.querySelector('table.entries').closest('.table-wrap');
    const edge = Math.min(window.innerWidth, wrap.getBoundingClientRect().right);
    const cut = [...document.querySelectorAll('td.row-actions button, td.row-actions a')]
        .filter(b => b.getBoundingClientRect().right > edge + 0.5)
        .map(b => b.textContent.trim());
    return {
        page: document.documentElement.scrollWidth - window.innerWidth,
        table: wrap.scrollWidth - wrap.clientWidth,
        buttons: document.querySelectorAll('td.row-actions button').length,
        cut: cut,
    };
}"""


def seed_rows(server: Server, tag: str) -> None:
    """Rows with long descriptions and the most actions a row can offer."""
    lib = server.lib.as_user("admin")
    long = "Post the invoices of every subsidiary for the closing of the financial year"
    lib.enqueue("pages.idle", company=COMPANY_A, description=f"{long} {tag} held", on_hold=True)
    lib.enqueue(
        "pages.idle",
        company=COMPANY_A,
        description=f"{long} {tag} later",
        delay=timedelta(hours=3),
        recurrence="every 15m",
    )
    failed = lib.enqueue("pages.fail", company=COMPANY_A, description=f"{long} {tag} failing")
    failed.wait(timeout=60)


def test_the_entries_list_fits_1366_px_with_every_action_visible(server: Server, ui: UI) -> None:
    page = ui.page
    page.set_viewport_size({"width": 1366, "height": 900})
    tag = uuid.uuid4().hex[:8]
    seed_rows(server, tag)
    sign_in(ui, server, "admin")
    ui.goto(server.url(f"/c/{COMPANY_A}/entries?q={tag}"), "entries-1366")
    expect(page.locator("tr[data-operation-id]")).to_have_count(3)
    # One button per row; Show error and the other actions are in the row's menu.
    failed_row = page.locator("tr[data-status=error]")
    failed_row.locator(".row-menu > summary").click()
    expect(failed_row.get_by_role("link", name="Show error")).to_be_visible()
    fit = page.evaluate(FITS)
    assert fit["page"] <= 0, fit
    assert fit["table"] <= 0, f"the table scrolls sideways at 1366 px: {fit}"
    assert fit["buttons"] >= 8, fit
    assert fit["cut"] == [], fit
    # The whole list, unfiltered, fits too.
    ui.goto(server.url(f"/c/{COMPANY_A}/entries"), "entries-1366-all")
    fit = page.evaluate(FITS)
    assert fit["page"] <= 0, fit
    assert fit["table"] <= 0, fit
    assert fit["cut"] == [], fit


def test_the_header_and_page_fit_390_px(server: Server, ui: UI) -> None:
    page = ui.page
    page.set_viewport_size({"width": 390, "height": 844})
    name = f"both{uuid.uuid4().hex[:6]}"
    server.lib.security.add_user(
        name,
        password=PASSWORD,
        grants=[(COMPANY_A, PermissionSet.ADMIN), (COMPANY_B, PermissionSet.VIEW)],
    )
    seed_rows(server, uuid.uuid4().hex[:8])
    sign_in(ui, server, name)
    for path, shot in (
        (f"/c/{COMPANY_A}/", "overview-390"),
        (f"/c/{COMPANY_A}/entries", "entries-390"),
    ):
        ui.goto(server.url(path), shot)
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        for control in ("Switch", "Sign out"):
            box = page.get_by_role("button", name=control).bounding_box()
            assert box is not None
            assert box["x"] >= 0, (path, control, box)
            assert box["x"] + box["width"] <= 390, (path, control, box)
    # On a phone the list is cards (issue 17): nothing scrolls sideways, not even its box.
    wrap = page.locator(".table-wrap").first
    assert wrap.evaluate("w => w.scrollWidth <= w.clientWidth")
    with page.expect_navigation(url=re.compile(rf"/c/{COMPANY_B}/$")):
        page.get_by_label("Company").select_option(COMPANY_B)


def test_choosing_a_task_fills_in_its_arguments(server: Server, ui: UI) -> None:
    page = ui.page
    sign_in(ui, server, "admin")
    ui.goto(server.url(f"/c/{COMPANY_A}/entries/new"), "new-operation")
    args = page.get_by_label("Arguments (JSON)")
    page.get_by_label("Task").select_option("pages.slow")
    expect(args).to_have_value('{"steps": 3, "items": 40, "pause": 0.25}')
    page.get_by_label("Task").select_option("pages.fail")
    expect(args).to_have_value('{"message": "the ledger does not balance"}')
    args.fill('{"message": "mine"}')
    page.get_by_label("Task").select_option("pages.slow")
    expect(args).to_have_value('{"message": "mine"}')  # what the user typed stays
    expect(page.locator("#n-params")).to_contain_text("steps (integer, default 3)")


def test_the_status_facets_follow_a_bulk_cancel_of_running_work(server: Server, ui: UI) -> None:
    page = ui.page
    tag = uuid.uuid4().hex[:8]
    lib = server.lib.as_user("admin")
    ids = [
        lib.enqueue("pages.idle", company=COMPANY_A, description=f"Facets {tag} {i}").id
        for i in range(2)
    ]
    sign_in(ui, server, "admin")
    listing = server.url(f"/c/{COMPANY_A}/entries?q={tag}")
    ui.goto(listing, "facets-before")
    for op_id in ids:
        expect(page.locator(f'tr[data-operation-id="{op_id}"]')).to_have_attribute(
            "data-status", "in_process", timeout=LIVE
        )
    page.locator("#bulk").get_by_label("All matching the filter").check()
    page.get_by_role("button", name="Cancel selected").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Cancel 2 operations?")
    ui.shot("facets-confirm")
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(listing)
    cancelled = page.locator('#facets a[data-status="cancelled"] .count')
    # Cancelling running work is cooperative: the rows end a moment after the redirect,
    # and the facets follow them through the stream, without a reload.
    expect(cancelled).to_have_text("2", timeout=LIVE)
    expect(page.locator('#facets a[data-status="in_process"] .count')).to_have_text("0")
    ui.shot("facets-after")


def test_the_edit_form_shows_on_hold_only_and_dates_are_iso(server: Server, ui: UI) -> None:
    page = ui.page
    admin = server.lib.as_user("admin")
    later = timedelta(hours=2)
    op_id = admin.enqueue("pages.idle", company=COMPANY_A, description="Not held", delay=later).id
    sign_in(ui, server, "admin")
    ui.goto(server.url(f"/c/{COMPANY_A}/entries/{op_id}"), "card-not-on-hold")
    # Not on hold: no disabled form of ~10 fields, a hint how to edit (issue 17).
    expect(page.get_by_label("Description", exact=True)).to_have_count(0)
    expect(page.locator("#edit-hint")).to_contain_text("Set On Hold first")
    page.get_by_role("button", name="Set On Hold", exact=True).click()
    page.wait_for_load_state()
    ui.shot("card-on-hold")
    field = page.get_by_label("Description", exact=True)
    expect(field).to_be_enabled()
    start = page.get_by_label("Earliest start")
    expect(start).to_have_value(re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"))
    # The same ISO text as the rest of the page shows for the same time.
    shown = page.locator("dl.fields time").first.text_content()
    assert shown == start.input_value(), (shown, start.input_value())
