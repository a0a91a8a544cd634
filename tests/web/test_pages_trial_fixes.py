"""Issue 17's second trial of the pages: a card opened by entry number, the ambiguous
id-prefix note's count, the Sessions page's Maintenance link, and deleting a category."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from web_support import Browser

from longops import Longops
from longops.web.listing import id_prefix_note

Make = Callable[[str | None], Browser]


def test_a_card_url_with_an_entry_number_opens_that_entry(app: Longops, browser: Make) -> None:
    alice = app.as_user("alice")
    handle = alice.enqueue("report", company="CRONUS", description="By number")
    op = app.service.get(handle.id)
    b = browser("alice")
    response = b.get(f"/c/CRONUS/entries/{op.entry_no}?back=1", follow_redirects=False)
    assert response.status_code == 303, response.text[:500]
    assert response.headers["location"].endswith(f"/c/CRONUS/entries/{op.id}?back=1")
    card = b.get(f"/c/CRONUS/entries/{op.entry_no}", follow_redirects=True)
    assert card.status_code == 200
    assert "By number" in card.text
    missing = b.get("/c/CRONUS/entries/987654")
    assert missing.status_code == 404
    assert "entry number 987654" in missing.text


def test_the_id_prefix_note_does_not_pass_a_page_for_the_whole_count() -> None:
    # 73 matched and the note said "50 operations on this page have ids starting with …".
    prefix = "0190a1b2"
    ops: list[Any] = [
        SimpleNamespace(id=uuid.UUID(f"{prefix}-0000-7000-8000-{i:012x}")) for i in range(50)
    ]
    paged = id_prefix_note(prefix, ops, more=True)
    assert paged is not None
    assert paged.startswith(f"At least 50 operations have ids starting with {prefix}."), paged
    assert "on this page" not in paged
    whole = id_prefix_note(prefix, ops, more=False)
    assert whole is not None
    assert whole.startswith(f"50 operations have ids starting with {prefix}."), whole


def test_the_sessions_page_offers_maintenance_mode_only_to_who_may_start_it(
    browser: Make,
) -> None:
    for user in ("admin", "viewer", "alice"):
        page = browser(user).get("/c/CRONUS/sessions")
        assert page.status_code == 200, user
        assert '/maintenance">Maintenance mode</a>' not in page.text, user
    root = browser("root").get("/c/CRONUS/sessions")
    assert '/maintenance">Maintenance mode</a>' in root.text
