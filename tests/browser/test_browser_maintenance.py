"""Maintenance mode in a real browser (issue 15): a SUPER user starts it on its page, every
page then shows a banner with the reason (to a viewer too), and stopping it removes it."""

from __future__ import annotations

import re
import uuid

import pytest
from browser_support import COMPANY_A, PASSWORD, UI, Server, sign_in
from playwright.sync_api import expect

pytestmark = pytest.mark.timeout(240)


def test_banner_shows_the_reason_while_maintenance_is_on(server: Server, ui: UI) -> None:
    page = ui.page
    root = f"root{uuid.uuid4().hex[:6]}"
    reason = f"Upgrade to 2.0 ({uuid.uuid4().hex[:6]})"
    server.lib.security.add_user(root, password=PASSWORD, is_super=True)
    try:
        sign_in(ui, server, root)
        ui.goto(server.url(f"/c/{COMPANY_A}/sessions"), "sessions")
        page.get_by_role("link", name="Maintenance mode").click()
        page.wait_for_url(re.compile(r"/maintenance$"))
        banner = page.locator("[data-maintenance]")
        expect(banner).to_have_count(0)
        page.get_by_label("Reason").fill(reason)
        page.get_by_label("Drain timeout (seconds)").fill("30")
        page.get_by_role("button", name="Start maintenance mode").click()
        page.wait_for_url(re.compile(r"/maintenance$"))
        ui.shot("maintenance-started")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text(reason)
        mode = server.lib.maintenance.status()
        assert mode.active
        assert mode.reason == reason

        # Every page shows it, to every user.
        ui.goto(server.url(f"/c/{COMPANY_A}/entries"), "entries-in-maintenance")
        expect(page.locator("[data-maintenance]")).to_contain_text(reason)
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(re.compile(r"/login"))
        sign_in(ui, server, "viewer")
        expect(page.locator("[data-maintenance]")).to_be_visible()
        expect(page.locator("[data-maintenance]")).to_contain_text(reason)
        ui.shot("viewer-sees-banner")
        ui.goto(server.url(f"/c/{COMPANY_A}/maintenance"), "viewer-maintenance-page")
        expect(page.get_by_role("button", name="Stop maintenance mode")).to_have_count(0)

        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(re.compile(r"/login"))
        sign_in(ui, server, root)
        ui.goto(server.url(f"/c/{COMPANY_A}/maintenance"), "maintenance-page")
        page.get_by_role("button", name="Stop maintenance mode").click()
        page.wait_for_url(re.compile(r"/maintenance$"))
        expect(page.locator("[data-maintenance]")).to_have_count(0)
        ui.shot("maintenance-stopped")
        assert not server.lib.maintenance.status().active
    finally:
        # The server is shared by the session's other browser tests: leave it claiming.
        server.lib.maintenance.stop()
