"""Issue 17 (Pages v2) in a real browser: the live card keeps its buttons (a click on Cancel
during live updates works first time), Delete asks first, the Overview follows an
operation's end without a reload, and a toast never covers a button."""

from __future__ import annotations

import re
import uuid

import pytest
from browser_support import COMPANY_A, UI, Server, sign_in, wait_until
from playwright.sync_api import expect

from longops.domain.status import Status

pytestmark = pytest.mark.timeout(240)
LIVE = 30_000


def card(op_id: object) -> str:
    return f"/c/{COMPANY_A}/entries/{op_id}"


def test_cancel_on_the_live_card_works_first_time(server: Server, ui: UI) -> None:
    page = ui.page
    admin = server.lib.as_user("admin")
    tag = uuid.uuid4().hex[:8]
    # Progress several times a second: the card is redrawn live all the while.
    op_id = admin.enqueue(
        "pages.slow", company=COMPANY_A, description=f"Busy {tag}", steps=3, items=400, pause=0.05
    ).id
    sign_in(ui, server, "admin")
    ui.goto(server.url(card(op_id)), "live-card")
    expect(page.locator("#card-live")).to_have_attribute("data-status", "in_process", timeout=LIVE)
    button = page.locator(f"#card-cancel-{op_id}")
    handle = button.element_handle()
    assert handle is not None
    bar = "#card-live progress"
    first = page.wait_for_function(
        f"() => {{ const p = document.querySelector('{bar}');"
        " return p && p.value > 0 ? p.value : null; }",
        timeout=LIVE,
    ).json_value()
    page.wait_for_function(
        f"(v) => {{ const p = document.querySelector('{bar}'); return p && p.value > v; }}",
        arg=first,
        timeout=LIVE,
    )
    ui.shot("live-card-moving")
    # The very button drawn with the page is still there after live updates, and the first
    # click on it (no retry, short timeout) is the one that cancels.
    assert handle.evaluate("e => e.isConnected"), "the live update replaced the button"
    handle.click(timeout=2_000, no_wait_after=True)
    page.wait_for_load_state()
    expect(page.locator("#card-live")).to_have_attribute("data-status", "cancelled", timeout=LIVE)
    ui.shot("cancelled")
    wait_until(
        lambda: server.lib.service.get(op_id).status is Status.CANCELLED,
        timeout=30,
        what="cancelled",
    )
    # "asked to stop" is history once it is cancelled; the step's texts are gone too.
    expect(page.locator("#notice")).to_contain_text("is now Cancelled", timeout=LIVE)
    expect(page.locator("#card-live")).not_to_contain_text("working on step")


def test_delete_on_the_card_asks_and_says_it_cannot_be_undone(server: Server, ui: UI) -> None:
    page = ui.page
    tag = uuid.uuid4().hex[:8]
    op = server.lib.as_user("admin").enqueue(
        "pages.idle", company=COMPANY_A, description=f"Delete me {tag}", on_hold=True
    )
    sign_in(ui, server, "admin")
    ui.goto(server.url(card(op.id)), "held-card")
    page.get_by_role("button", name="Delete…").click()
    page.wait_for_load_state()
    ui.shot("confirm-delete")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Delete operation {op.operation.entry_no}?"
    )
    expect(page.locator("main")).to_contain_text("Undo is offered for 30 seconds")
    assert server.lib.service.get(op.id).status is Status.ON_HOLD
    page.get_by_role("button", name=f"Delete operation {op.operation.entry_no}").click()
    page.wait_for_url(re.compile(r"/entries$"))
    ui.shot("after-delete")
    expect(page.locator(".notice")).to_contain_text(f"Operation {op.operation.entry_no}")


def test_the_overview_changes_when_an_operation_ends_without_reload(server: Server, ui: UI) -> None:
    page = ui.page
    admin = server.lib.as_user("admin")
    tag = uuid.uuid4().hex[:8]
    op_id = admin.enqueue("pages.idle", company=COMPANY_A, description=f"Overview {tag}").id
    sign_in(ui, server, "admin")
    ui.goto(server.url(f"/c/{COMPANY_A}/"), "overview")
    row = page.locator(f'#longest-running tr[data-op="{op_id}"]')
    expect(row).to_have_count(1, timeout=LIVE)  # it started: the Overview follows it
    page.evaluate("window.__longopsTestMarker = 'still here'")
    ui.shot("overview-running")
    admin.service.cancel(op_id)
    expect(row).to_have_count(0, timeout=LIVE)
    ui.shot("overview-after-end")
    assert page.evaluate("window.__longopsTestMarker === 'still here'"), "the page reloaded"


def test_a_toast_never_covers_a_button(server: Server, ui: UI) -> None:
    page = ui.page
    page.set_viewport_size({"width": 390, "height": 500})
    admin = server.lib.as_user("admin")
    tag = uuid.uuid4().hex[:8]
    held = admin.enqueue("pages.idle", company=COMPANY_A, description=f"Held {tag}", on_hold=True)
    sign_in(ui, server, "admin")
    ui.goto(server.url(card(held.id)), "phone-card")
    # The card's buttons at the bottom of the screen, where toasts used to sit.
    bottom = page.evaluate(
        "() => document.querySelector('#card-actions button').getBoundingClientRect().bottom"
        " + window.scrollY"
    )
    page.set_viewport_size({"width": 390, "height": int(bottom) + 30})
    admin.enqueue("pages.fail", company=COMPANY_A, description=f"Toast {tag}")
    toast = page.locator("#toasts .toast").filter(has_text=f"Toast {tag}")
    expect(toast).to_have_count(1, timeout=LIVE)
    ui.shot("toast-shown")
    # Where the toasts used to stand (bottom right), the card's buttons are.
    where = page.evaluate(
        "() => { const b = document.querySelector('#card-actions button').getBoundingClientRect();"
        " return [b.bottom, window.innerHeight]; }"
    )
    assert where[1] - where[0] < 80, where
    overlaps = page.evaluate(
        """() => {
        const shown = t => getComputedStyle(t).visibility !== 'hidden';
        const boxes = [...document.querySelectorAll('#toasts .toast')].filter(shown)
            .map(t => t.getBoundingClientRect());
        const hit = (a, b) => a.left < b.right && b.left < a.right
            && a.top < b.bottom && b.top < a.bottom;
        return [...document.querySelectorAll('main button, main a, header button, header a')]
            .map(c => [c.textContent.trim(), c.getBoundingClientRect()])
            .filter(([_, r]) => r.width && r.height && r.bottom > 0 && r.top < innerHeight)
            .filter(([_, r]) => boxes.some(t => hit(t, r))).map(([name]) => name);
    }"""
    )
    assert overlaps == [], f"toasts cover {overlaps}"
    set_ready = page.get_by_role("button", name="Set Ready", exact=True)
    set_ready.click(timeout=2_000)
    page.wait_for_load_state()
    wait_until(
        lambda: server.lib.service.get(held.id).status is not Status.ON_HOLD,
        timeout=30,
        what="set ready by the click",
    )
    # The server (and its worker slots) is shared by every browser test of this process:
    # the idle task now running would hold a slot for its 600 s.
    admin.service.cancel(held.id)
    wait_until(
        lambda: server.lib.service.get(held.id).status is Status.CANCELLED,
        timeout=30,
        what="the released operation cancelled",
    )
