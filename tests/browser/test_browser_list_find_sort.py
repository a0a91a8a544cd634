"""Issue 17 in the browser, at 1366 px and at 390 px: find an operation by its entry number
and by the start of its id, sort by two columns (and the back button undoes a sort: the
order is in the URL), a row's Delete asks first, and on a phone the list is cards with the
filters folded and nothing scrolls sideways."""

from __future__ import annotations

import re
import uuid

import pytest
from browser_support import COMPANY_A, UI, Server, sign_in
from playwright.sync_api import Page, expect

from longops.domain.operation import Operation

pytestmark = pytest.mark.timeout(240)

WIDTHS = {"desktop": (1366, 900), "phone": (390, 844)}

NO_SIDEWAYS = "document.scrollingElement.scrollWidth <= window.innerWidth"


def seed(server: Server, tag: str) -> dict[str, Operation]:
    """Three operations on hold (they never start): descriptions and priorities in
    different orders, so that sorting by one or the other shows."""
    lib = server.lib.as_user("admin")
    out = {}
    for name, priority in (("charlie", "normal"), ("alpha", "low"), ("bravo", "high")):
        handle = lib.enqueue(
            "pages.idle",
            company=COMPANY_A,
            description=f"{tag} {name}",
            priority=priority,
            on_hold=True,
        )
        out[name] = lib.service.get(handle.id)
    return out


def shown(page: Page) -> list[str]:
    return page.locator("tr[data-operation-id]").evaluate_all(
        "rows => rows.map(r => r.dataset.operationId)"
    )


def find(ui: UI, text: str, shot: str) -> None:
    page = ui.page
    page.get_by_label("Find", exact=True).fill(text)
    page.get_by_role("button", name="Find", exact=True).click()
    page.wait_for_url(re.compile(r"[?&]q="))
    ui.shot(shot)


@pytest.mark.parametrize("width", list(WIDTHS))
def test_find_by_entry_number_and_id_prefix(server: Server, ui: UI, width: str) -> None:
    page = ui.page
    w, h = WIDTHS[width]
    page.set_viewport_size({"width": w, "height": h})
    ops = seed(server, uuid.uuid4().hex[:8])
    sign_in(ui, server, "admin")
    ui.goto(server.url(f"/c/{COMPANY_A}/entries"), f"entries-{width}")
    find(ui, f"#{ops['alpha'].entry_no}", f"find-entry-no-{width}")
    expect(page.locator("tr[data-operation-id]")).to_have_count(1)
    assert shown(page) == [str(ops["alpha"].id)]
    row = page.locator(f'tr[data-operation-id="{ops["alpha"].id}"]')
    expect(row.get_by_role("link", name=ops["alpha"].description or "")).to_be_visible()
    # The start of an id, as copied from a log (with its dashes).
    find(ui, str(ops["bravo"].id)[:23], f"find-id-prefix-{width}")
    assert shown(page) == [str(ops["bravo"].id)]
    assert page.evaluate(NO_SIDEWAYS)


def test_sort_by_two_columns_and_back_at_1366(server: Server, ui: UI) -> None:
    page = ui.page
    page.set_viewport_size({"width": 1366, "height": 900})
    tag = uuid.uuid4().hex[:8]
    ops = seed(server, tag)
    ids = {k: str(v.id) for k, v in ops.items()}
    sign_in(ui, server, "admin")
    ui.goto(server.url(f"/c/{COMPANY_A}/entries?q={tag}"), "sort-start")
    assert shown(page) == [ids["bravo"], ids["alpha"], ids["charlie"]]  # newest first
    page.locator("#sort-description").click()
    page.wait_for_url(re.compile(r"sort=description&dir=asc"))
    ui.shot("sort-description")
    assert shown(page) == [ids["alpha"], ids["bravo"], ids["charlie"]]
    expect(page.locator("th[aria-sort=ascending]")).to_contain_text("Description")
    page.locator("#sort-priority").click()
    page.wait_for_url(re.compile(r"sort=priority&dir=asc"))
    ui.shot("sort-priority")
    assert shown(page) == [ids["bravo"], ids["charlie"], ids["alpha"]]  # high, normal, low
    # The order is in the URL: the back button brings the first sort back.
    page.go_back()
    page.wait_for_url(re.compile(r"sort=description"))
    ui.shot("sort-back")
    assert shown(page) == [ids["alpha"], ids["bravo"], ids["charlie"]]
    # The same column again turns the order round.
    page.locator("#sort-description").click()
    page.wait_for_url(re.compile(r"sort=description&dir=desc"))
    ui.shot("sort-description-desc")
    assert shown(page) == [ids["charlie"], ids["bravo"], ids["alpha"]]
    assert page.evaluate(NO_SIDEWAYS)


def test_sort_by_two_columns_on_a_phone(server: Server, ui: UI) -> None:
    page = ui.page
    page.set_viewport_size({"width": 390, "height": 844})
    tag = uuid.uuid4().hex[:8]
    ops = seed(server, tag)
    ids = {k: str(v.id) for k, v in ops.items()}
    sign_in(ui, server, "admin")
    ui.goto(server.url(f"/c/{COMPANY_A}/entries?q={tag}"), "phone-start")
    # The filters are folded: a phone's first screen shows rows.
    fold = page.locator("details.fold")
    assert fold.evaluate("d => !d.open")
    expect(page.get_by_label("Task")).to_be_hidden()
    first = page.locator("tr[data-operation-id]").first.bounding_box()
    assert first is not None
    assert first["y"] + first["height"] <= 844, first
    for key, order in (("description", ["alpha", "bravo", "charlie"]),
                       ("priority", ["bravo", "charlie", "alpha"])):  # fmt: skip
        if not page.locator("details.fold").evaluate("d => d.open"):
            page.locator("details.fold > summary").click()
        page.get_by_label("Sort by").select_option(key)
        page.get_by_label("Direction").select_option("asc")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url(re.compile(rf"sort={key}"))
        ui.shot(f"phone-sort-{key}")
        assert shown(page) == [ids[n] for n in order]
        assert page.evaluate(NO_SIDEWAYS)


def test_a_rows_delete_is_confirmed_at_1366(server: Server, ui: UI) -> None:
    page = ui.page
    page.set_viewport_size({"width": 1366, "height": 900})
    tag = uuid.uuid4().hex[:8]
    op = seed(server, tag)["alpha"]
    sign_in(ui, server, "admin")
    listing = server.url(f"/c/{COMPANY_A}/entries?q={tag}")
    ui.goto(listing, "delete-start")
    row = page.locator(f'tr[data-operation-id="{op.id}"]')
    # One button per row; the rest (Delete among them) in its menu.
    expect(row.locator("form.primary button")).to_have_count(1)
    expect(row.locator(f"#act-delete-{op.id}")).to_be_hidden()
    row.locator(".row-menu > summary").click()
    ui.shot("delete-menu-open")
    row.locator(f"#act-delete-{op.id}").click()
    page.wait_for_url(re.compile(r"/entries/bulk$"))
    ui.shot("delete-confirm")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Delete operation {op.entry_no}?")
    expect(page.get_by_text("Undo is offered for 30 seconds")).to_be_visible()
    assert server.lib.as_user("admin").service.get(op.id) is not None  # nothing yet
    page.get_by_role("button", name=f"Delete operation {op.entry_no}").click()
    page.wait_for_url(listing)
    ui.shot("delete-done")
    expect(page.locator("tr[data-operation-id]")).to_have_count(2)
    expect(page.get_by_role("status").first).to_contain_text(
        f"Operation {op.entry_no} ({op.description}) deleted."
    )
    # Undo, within its seconds: the row is back, as it was.
    page.get_by_role("button", name="Undo").click()
    page.wait_for_url(re.compile(rf"/entries/{op.id}$"))
    ui.shot("undone")
    expect(page.get_by_role("status").first).to_contain_text(
        f"Operation {op.entry_no} ({op.description}) is back, as it was."
    )
    assert server.lib.as_user("admin").service.get(op.id).entry_no == op.entry_no


def test_the_list_is_cards_on_a_phone_without_sideways_scroll(server: Server, ui: UI) -> None:
    page = ui.page
    page.set_viewport_size({"width": 390, "height": 844})
    tag = uuid.uuid4().hex[:8]
    lib = server.lib.as_user("admin")
    long = "Post the invoices of every subsidiary for the closing of the financial year"
    failed = lib.enqueue("pages.fail", company=COMPANY_A, description=f"{long} {tag} failing")
    failed.wait(timeout=60)
    seed(server, tag)
    sign_in(ui, server, "admin")
    for path in (f"/c/{COMPANY_A}/entries?q={tag}", f"/c/{COMPANY_A}/entries"):
        ui.goto(server.url(path), "phone-cards")
        assert page.evaluate(NO_SIDEWAYS), page.evaluate(
            "[document.scrollingElement.scrollWidth, window.innerWidth]"
        )
    ui.goto(server.url(f"/c/{COMPANY_A}/entries?q={tag}"), "phone-cards-tag")
    card = page.locator(f'tr[data-operation-id="{failed.id}"]')
    # A card: status, description, progress and one action; the rest is on its page.
    expect(card.locator(".status")).to_be_visible()
    expect(card.get_by_role("link", name=re.compile(tag))).to_be_visible()
    expect(card.locator("progress")).to_be_visible()
    expect(card.locator("form.primary button")).to_be_visible()
    expect(card.locator(".row-menu")).to_be_hidden()
    expect(card.locator("td.user")).to_be_hidden()
    box = card.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= 390, box
