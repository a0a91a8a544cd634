"""Issue 14's browser check: an admin adds a webhook channel and a rule on the Notification
Setup page, sends a test, and sees the failure's delivery in the log (a real
``longops serve`` whose workers deliver, and a webhook receiver on 127.0.0.1)."""

from __future__ import annotations

import re
import uuid

import pytest
from browser_support import COMPANY_A, UI, Server, sign_in, unlabelled_controls, wait_until
from playwright.sync_api import expect

from longops.core.enqueue import EnqueueRequest
from notify_receivers import webhook

pytestmark = pytest.mark.timeout(240)
LIVE = 30_000  # ms


def test_an_admin_adds_a_channel_and_a_rule_sends_a_test_and_sees_the_delivery(
    server: Server, ui: UI
) -> None:
    page = ui.page
    tag = uuid.uuid4().hex[:8]
    channel, rule = f"hook-{tag}", f"fails-{tag}"
    sign_in(ui, server, "admin")
    with webhook() as hook:
        page.get_by_role("link", name="Notification Setup").click()
        page.wait_for_url(re.compile(r"/notification-setup$"))
        ui.shot("notification-setup")
        assert unlabelled_controls(page) == []
        form = page.get_by_role("form", name="New channel")
        form.get_by_label("Name").fill(channel)
        form.get_by_label("Apprise URL").fill(hook.url(auth="robot:not-for-eyes-1234@"))
        form.get_by_role("button", name="Add channel").click()
        expect(page.locator(f'tr[data-channel="{channel}"]')).to_contain_text("robot:****")
        rules = page.get_by_role("form", name="New rule")
        rules.get_by_label("Name").fill(rule)
        rules.get_by_label("When").select_option("failed")
        rules.get_by_label("Who").fill(f"channel:{channel}")
        rules.get_by_label("Task").fill("pages.fail")
        rules.get_by_role("button", name="Add rule").click()
        expect(page.locator(f'tr[data-rule="{rule}"]')).to_contain_text(f"channel:{channel}")
        page.get_by_role("button", name=f"Send a test to {channel}").click()
        expect(page.get_by_text(f"Test sent to {channel}.")).to_be_visible()
        assert len(hook.received) == 1
        ui.shot("test-sent")

        op = server.lib.service.enqueue(
            EnqueueRequest(task="pages.fail", company=COMPANY_A, max_attempts=1)
        )
        delivered = page.locator(f'tr[data-delivery]:has-text("channel:{channel}")')

        def seen() -> bool:
            page.reload()
            return delivered.count() > 0 and "sent" in delivered.first.inner_text()

        wait_until(seen, timeout=LIVE / 1000, interval=0.5, what="the delivery in the log")
        ui.shot("delivery-log")
        assert "not-for-eyes-1234" not in page.content()
        assert len(hook.received) == 2
        card = f"{server.base_url}/c/{COMPANY_A}/entries/{op.id}"
        assert card in hook.received[1].body["message"]
