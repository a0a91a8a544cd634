"""The ETA's words stay live between updates (issue 17 B2): "in about 5.0 s" counts down and,
once the time has passed with no new reading, says "overdue by …" (and "taking longer than
usual" where past runs set it) instead of staying frozen. Only the page's script is under
test: the markup comes from the real template macro, no server needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from jinja2 import Environment, FileSystemLoader
from playwright.sync_api import Browser

from longops.domain.progress import Progress
from longops.domain.status import Status
from longops.web import pages, present

SCRIPT = pages.HERE / "static" / "longops.js"


def cell(seconds_left: float, source: str) -> str:
    now = datetime(2026, 12, 7, 16, 10, 54, tzinfo=UTC)
    op: Any = SimpleNamespace(status=Status.IN_PROCESS, done=False)
    reading = Progress(eta_at=now + timedelta(seconds=seconds_left), eta_source=source)
    view = present.progress_view(op, reading, now)
    templates = Environment(loader=FileSystemLoader(str(pages.HERE / "templates")), autoescape=True)
    macros: Any = templates.get_template("_macros.html").module
    return str(macros.progress_cell(view, op))


def test_a_passed_eta_turns_overdue_without_a_new_reading(browser: Browser) -> None:
    page = browser.new_page()
    try:
        page.set_content(f"<main>{cell(1.5, 'history')}{cell(600, 'rate')}</main>")
        page.add_script_tag(path=str(SCRIPT))
        first = page.locator(".eta-left").first
        assert "in about" in first.inner_text()
        page.wait_for_function(
            "document.querySelector('.eta-left').textContent.startsWith('overdue by')",
            timeout=10_000,
        )
        assert first.inner_text().endswith("(taking longer than usual)"), first.inner_text()
        later = page.locator(".eta-left").nth(1).inner_text()
        assert later.startswith(("in about 9 min 5", "in about 10 min")), later
    finally:
        page.close()
