"""Your sign-ins in a real browser: the user name in the header opens the list of the
user's sign-ins, and "Sign out everywhere" ends the other browser's sign-in too."""

from __future__ import annotations

import re

import pytest
from browser_support import COMPANY_B, UI, Server, low_contrast_text, sign_in, unlabelled_controls
from playwright.sync_api import Browser, expect

pytestmark = pytest.mark.timeout(240)


def test_sign_out_everywhere_from_the_sign_ins_page(
    server: Server, ui: UI, browser: Browser
) -> None:
    other_context = browser.new_context()
    try:
        other = UI.attach(other_context.new_page(), ui.folder / "other")
        sign_in(other, server, "bob")
        sign_in(ui, server, "bob")
        page = ui.page
        page.locator("header").get_by_role("link", name="bob").click()
        page.wait_for_url(re.compile(r"/account$"))
        ui.shot("sign-ins")
        expect(page.get_by_role("heading", level=1)).to_have_text("Your sign-ins")
        rows = page.locator("tr[data-sign-in-id]")
        expect(rows.filter(has_text="(this browser)")).to_have_count(1)
        assert rows.count() >= 2
        assert unlabelled_controls(page) == []
        assert low_contrast_text(page) == []
        page.get_by_role("button", name="Sign out everywhere").click()
        page.wait_for_url(re.compile(r"/login"))
        other.goto(server.url(f"/c/{COMPANY_B}/"), "after-everywhere")
        expect(other.page).to_have_url(re.compile(r"/login"))
        other.finish()
    finally:
        other_context.close()
    other.check()
