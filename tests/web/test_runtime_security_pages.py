"""The pages say why an operation whose user was disabled does not start (both databases)."""

from __future__ import annotations

import html
from collections.abc import Callable

import httpx
from web_support import Browser

from longops import Longops
from longops.testing import Runner

Make = Callable[[str | None], Browser]


def test_the_card_the_list_and_the_api_say_the_user_is_disabled(
    app: Longops, browser: Make, served: str
) -> None:
    op = app.as_user("alice").enqueue("report", company="CRONUS").id
    app.security.disable_user("alice")
    runner = Runner(app)
    assert runner.run_until_idle() == 0
    said = "user alice, on whose behalf it runs, is disabled"
    b = browser("admin")
    assert said in html.unescape(b.get(f"/c/CRONUS/entries/{op}").text)
    assert said in html.unescape(b.get("/c/CRONUS/entries").text)
    _, token = app.security.create_token("admin")
    api = httpx.get(
        f"{served}/v1/companies/CRONUS/operations/{op}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert api.status_code == 200, api.text
    wait = api.json()["metadata"]["waitReason"]
    assert wait["code"] == "user_disabled"
    assert wait["message"].startswith(said)
    app.security.enable_user("alice")
    assert runner.run_until_idle() == 1
