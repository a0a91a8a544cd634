"""The pages say why an operation whose user was disabled does not start (both databases)."""

from __future__ import annotations

import html
from collections.abc import Callable

from web_support import Browser

from longops import Longops
from longops.testing import Runner

Make = Callable[[str | None], Browser]


def test_the_card_and_the_list_say_the_user_is_disabled(app: Longops, browser: Make) -> None:
    op = app.as_user("alice").enqueue("report", company="CRONUS").id
    app.security.disable_user("alice")
    runner = Runner(app)
    assert runner.run_until_idle() == 0
    said = "user alice, on whose behalf it runs, is disabled"
    b = browser("admin")
    assert said in html.unescape(b.get(f"/c/CRONUS/entries/{op}").text)
    assert said in html.unescape(b.get("/c/CRONUS/entries").text)
    app.security.enable_user("alice")
    assert runner.run_until_idle() == 1
