"""The browser harness itself: what it must catch, it catches (so a page that logs an error,
throws, or loads a missing resource fails its test)."""

from __future__ import annotations

from browser_support import UI, Server, low_contrast_text, unlabelled_controls, wait_until


def test_console_errors_page_errors_and_bad_responses_are_caught(server: Server, ui: UI) -> None:
    page = ui.page
    ui.goto(server.url("/login"), "login")
    assert ui.problems == []
    page.evaluate("console.error('deliberate console error')")
    page.evaluate("setTimeout(() => { throw new Error('deliberate page error') }, 0)")
    page.evaluate("fetch('/no-such-page-here').catch(() => null)")
    wait_until(lambda: len(ui.problems) >= 3, timeout=10, what="three problems recorded")
    text = "\n".join(ui.problems)
    assert "deliberate console error" in text
    assert "deliberate page error" in text
    assert "HTTP 404" in text
    assert "/no-such-page-here" in text
    ui.problems.clear()

    # An expected status is not a problem.
    ui.expect_status(404, "/still-no-such-page")
    page.evaluate("fetch('/still-no-such-page').catch(() => null)")
    page.evaluate("fetch('/login')")
    page.wait_for_load_state()
    assert ui.problems == []


def test_a_page_visited_without_a_screenshot_is_reported(server: Server, ui: UI) -> None:
    ui.page.goto(server.url("/login?first=1"))
    assert ui.unshot() == [server.url("/login?first=1")]
    ui.shot("login")
    assert ui.unshot() == []


def test_an_unlabelled_control_is_found(server: Server, ui: UI) -> None:
    ui.goto(server.url("/login"), "login")
    assert unlabelled_controls(ui.page) == []
    ui.page.evaluate("document.querySelector('main').append(document.createElement('input'))")
    assert unlabelled_controls(ui.page) == ["<input>"]


def test_low_contrast_text_is_found(server: Server, ui: UI) -> None:
    ui.goto(server.url("/login"), "login")
    assert low_contrast_text(ui.page) == []
    ui.page.evaluate(
        "() => { const p = document.createElement('p'); p.textContent = 'faint';"
        " p.style.color = '#bbbbbb'; p.style.background = '#ffffff';"
        " document.querySelector('main').append(p); }"
    )
    found = low_contrast_text(ui.page)
    assert len(found) == 1
    assert '"faint"' in found[0]
