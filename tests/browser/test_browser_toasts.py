"""Issue 17: toasts show on the Job Queue Entries list, at 1366 px and at 390 px, and never
cover a control. On a list full of rows every corner of the screen holds a button or a link;
toasts used to wait hidden there until they faded. Now they take the first free spot."""

from __future__ import annotations

import uuid

import pytest
from browser_support import COMPANY_A, UI, Server, sign_in
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.timeout(240)
LIVE = 30_000

COVERED = """() => {
    const box = document.getElementById('toasts');
    const style = getComputedStyle(box);
    const toasts = [...box.querySelectorAll('.toast')].map(t => t.getBoundingClientRect());
    const hit = (a, b) => a.left < b.right && b.left < a.right
        && a.top < b.bottom && b.top < a.bottom;
    const controls = [...document.querySelectorAll(
        'main button, main a, main input, main select, main textarea, main summary, main label, '
        + 'header button, header a, header select')]
        .filter(c => !c.closest('#toasts'))
        .map(c => [c.textContent.trim().slice(0, 40) || c.outerHTML.slice(0, 60),
                   c.getBoundingClientRect()])
        .filter(([_, r]) => r.width && r.height && r.bottom > 0 && r.top < innerHeight);
    return {
        shown: style.visibility !== 'hidden' && style.display !== 'none' && toasts.length > 0
            && toasts.every(t => t.width > 0 && t.top >= 0 && t.bottom <= innerHeight
                                 && t.left >= 0 && t.right <= innerWidth),
        covered: controls.filter(([_, r]) => toasts.some(t => hit(t, r))).map(([n]) => n),
        controls: controls.length,
    };
}"""


def toast_on_the_list(server: Server, ui: UI, page: Page, tag: str, size: str) -> None:
    admin = server.lib.as_user("admin")
    failing = admin.enqueue("pages.fail", company=COMPANY_A, description=f"Toast {tag} {size}")
    toast = page.locator("#toasts .toast").filter(has_text=f"Toast {tag} {size}")
    expect(toast).to_have_count(1, timeout=LIVE)
    where = page.evaluate(COVERED)
    ui.shot(f"toast-{size}")
    assert where["controls"] > 20, where  # a screen full of controls
    assert where["shown"], f"the toast is hidden or off the screen at {size}: {where}"
    assert where["covered"] == [], f"at {size} the toast covers {where['covered']}"
    failing.wait(timeout=60)


def test_toasts_show_on_a_full_list_and_cover_no_control(server: Server, ui: UI) -> None:
    page = ui.page
    tag = uuid.uuid4().hex[:8]
    admin = server.lib.as_user("admin")
    for i in range(40):
        # On hold: rows with their buttons and menus that never run (no worker slot held).
        admin.enqueue("pages.idle", company=COMPANY_A, description=f"Row {tag} {i}", on_hold=True)
    sign_in(ui, server, "admin")
    for width, height, size in ((1366, 900, "desktop"), (390, 844, "phone")):
        page.set_viewport_size({"width": width, "height": height})
        ui.goto(server.url(f"/c/{COMPANY_A}/entries?q={tag}"), f"list-{size}")
        expect(page.locator("tr[data-operation-id]").filter(has_text=f"Row {tag} ")).to_have_count(
            40
        )
        page.mouse.wheel(0, 400)  # mid-page: rows above and below the screen's edges
        toast_on_the_list(server, ui, page, tag, size)


VISIBLE = """() => {
    const box = document.getElementById('toasts');
    const shown = [...box.querySelectorAll('.toast')].map(t => t.getBoundingClientRect())
        .filter(t => t.width > 0 && t.height > 0);
    const hit = (a, b) => a.left < b.right && b.left < a.right
        && a.top < b.bottom && b.top < a.bottom;
    const controls = [...document.querySelectorAll(
        'main button, main a, main input, main select, main textarea, main summary, main label, '
        + 'header button, header a, header select')]
        .filter(c => !c.closest('#toasts'))
        .map(c => [c.textContent.trim().slice(0, 40) || c.outerHTML.slice(0, 60),
                   c.getBoundingClientRect()])
        .filter(([_, r]) => r.width && r.height && r.bottom > 0 && r.top < innerHeight);
    return {
        inView: shown.filter(t => t.top >= 0 && t.bottom <= innerHeight
                                  && t.left >= 0 && t.right <= innerWidth).length,
        shown: shown.length,
        covered: controls.filter(([_, r]) => shown.some(t => hit(t, r))).map(([n]) => n),
    };
}"""


def test_several_toasts_at_once_on_a_scrolled_phone_still_show_on_screen(
    server: Server, ui: UI
) -> None:
    # Issue 17 C1: at 390x844 scrolled down, a stack of toasts found no free spot and went
    # into the page's flow above the content, off the screen: no feedback at all. Now the
    # newest shows alone, as one line where need be, in a free band of the screen.
    page = ui.page
    tag = uuid.uuid4().hex[:8]
    admin = server.lib.as_user("admin")
    for i in range(30):
        admin.enqueue("pages.idle", company=COMPANY_A, description=f"Row {tag} {i}", on_hold=True)
    sign_in(ui, server, "admin")
    page.set_viewport_size({"width": 390, "height": 844})
    ui.goto(server.url(f"/c/{COMPANY_A}/entries?q={tag}"), "list-phone-stack")
    expect(page.locator("tr[data-operation-id]").filter(has_text=f"Row {tag} ")).to_have_count(30)
    page.mouse.wheel(0, 400)
    failing = [
        admin.enqueue("pages.fail", company=COMPANY_A, description=f"Stack {tag} {i} " + "x" * 40)
        for i in range(3)
    ]
    toasts = page.locator("#toasts .toast").filter(has_text=f"Stack {tag} ")
    expect(toasts).to_have_count(3, timeout=LIVE)
    placed = "(b => b.classList.contains('in-flow') || b.style.left !== '')"
    page.wait_for_function(f"{placed}(document.getElementById('toasts'))", timeout=LIVE)
    where = page.evaluate(VISIBLE)
    ui.shot("toast-phone-stack")
    assert where["inView"] >= 1, f"no toast on the screen: {where}"
    assert where["covered"] == [], f"the toast covers {where['covered']}"
    for handle in failing:
        handle.wait(timeout=60)
