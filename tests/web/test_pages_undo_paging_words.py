"""Issue 17's open items on the pages, as routes: a Delete that can be undone for a few
seconds (durably: a copy in the database, migration 0017), one confirmation page for every
Delete, Previous pages (keyset backwards, sort and filter kept), an id prefix that matches
several operations explained, and the small texts (a sort cursor's rule, a missing argument,
a delete notice that names the operation, no empty progress bar on an Error card, no
server folders in a traceback)."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from web_support import Browser

from longops import Longops
from longops.domain.errors import NotFound
from longops.domain.status import Status
from longops.testing import Runner

Make = Callable[[str | None], Browser]
ROOT = Path(__file__).resolve().parents[2]


def rows(page: str) -> list[str]:
    return re.findall(r'<tr id="op-[^"]+" data-operation-id="([^"]+)"', page)


def link(page: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)" rel="{rel}"', page)
    return html.unescape(found.group(1)) if found else None


def enqueue(app: Longops, user: str, **kw: object) -> uuid.UUID:
    return app.as_user(user).enqueue("report", company="CRONUS", **kw).id  # type: ignore[arg-type]


# -- Undo after Delete -----------------------------------------------------------------------


def test_a_row_delete_asks_on_the_one_page_then_undo_puts_it_back_as_it_was(
    app: Longops, browser: Make
) -> None:
    op_id = enqueue(app, "alice", description="Month end close", on_hold=True)
    before = app.service.get(op_id)
    b = browser("alice")
    b.get("/c/CRONUS/entries")
    # The row's Delete… and the card's Delete… answer with the same page.
    asked = b.post("/c/CRONUS/entries/bulk", {"action": "delete", "ids": str(op_id)})
    from_card = b.post(f"/c/CRONUS/entries/{op_id}/delete", {"next": "/c/CRONUS/entries"})
    for page in (asked, from_card):
        assert page.status_code == 200
        assert f"<h1>Delete operation {before.entry_no}?</h1>" in page.text
        assert f"Operation {before.entry_no} (Month end close), On Hold, will be deleted." in (
            page.text
        )
        assert "Undo is offered for 30 seconds" in page.text
        assert f'id="confirm" class="danger">Delete operation {before.entry_no}<' in page.text
    assert app.service.get(op_id).status is Status.ON_HOLD  # nothing before the click
    done = b.post(
        "/c/CRONUS/entries/bulk",
        {"action": "delete", "ids": str(op_id), "confirmed": "1", "next": "/c/CRONUS/entries"},
    )
    assert done.status_code == 303
    listed = b.get(done.headers["location"]).text
    # The notice names the operation (not "Deleted 1 operation.") and offers Undo.
    assert f"Operation {before.entry_no} (Month end close) deleted." in listed
    assert 'id="undo"' in listed
    assert str(op_id) not in rows(listed)
    back = b.post("/c/CRONUS/entries/undelete", {"ids": str(op_id)})
    assert back.status_code == 303
    assert back.headers["location"] == f"/c/CRONUS/entries/{op_id}"
    card = b.get(back.headers["location"]).text
    assert f"Operation {before.entry_no} (Month end close) is back, as it was." in card
    assert app.service.get(op_id) == before  # same id, entry number, status, everything
    # Once only; and nothing to put back after a plain Delete through the API's core call.
    again = b.post("/c/CRONUS/entries/undelete", {"ids": str(op_id)})
    assert "could not be put back" in b.get(again.headers["location"]).text


def test_only_the_deleter_may_undo(app: Longops, browser: Make) -> None:
    op_id = enqueue(app, "alice", description="Mine", on_hold=True)
    admin = browser("admin")
    admin.get("/c/CRONUS/entries")
    admin.post(f"/c/CRONUS/entries/{op_id}/delete", {"confirmed": "1", "next": "/c/CRONUS/entries"})
    other = browser("bob")
    other.get("/c/CRONUS/entries")
    refused = other.post("/c/CRONUS/entries/undelete", {"ids": str(op_id)})
    assert "could not be put back" in other.get(refused.headers["location"]).text
    with pytest.raises(NotFound):
        app.service.get(op_id)  # still deleted
    put_back = admin.post("/c/CRONUS/entries/undelete", {"ids": str(op_id)})
    assert put_back.headers["location"] == f"/c/CRONUS/entries/{op_id}"
    assert app.service.get(op_id).status is Status.ON_HOLD


# -- Previous page ---------------------------------------------------------------------------


def test_previous_pages_go_back_keyset_with_sort_and_filter_kept(
    app: Longops, browser: Make
) -> None:
    for i in range(120):
        enqueue(app, "alice", description=f"Batch {i % 7} part {i:03d}")
    enqueue(app, "alice", description="Not in the filter")
    b = browser("admin")
    for query in ("q=batch", "q=batch&sort=description&dir=asc", "q=batch&sort=priority"):
        first = b.get(f"/c/CRONUS/entries?{query}").text
        assert link(first, "prev") is None
        pages = [rows(first)]
        page = first
        while (nxt := link(page, "next")) is not None:
            page = b.get(f"/c/CRONUS/entries{nxt}").text
            pages.append(rows(page))
        assert [len(p) for p in pages] == [50, 50, 20], query
        # Back from the last page, one page at a time, to the first: the same pages.
        for expected in reversed(pages[:-1]):
            prev = link(page, "prev")
            assert prev is not None, query
            params = parse_qs(urlsplit(prev).query)
            assert params["q"] == ["batch"]
            if "sort=" in query:
                assert params["sort"] == [parse_qs(query)["sort"][0]]
            assert "before" in params
            page = b.get(f"/c/CRONUS/entries{prev}").text
            assert rows(page) == expected, query
        assert link(page, "prev") is None  # the first page again
    refused = b.get("/c/CRONUS/entries?after=5&before=9")
    assert refused.status_code == 400


# -- the id prefix ---------------------------------------------------------------------------


def test_an_id_prefix_shared_by_operations_made_together_is_explained(
    app: Longops, browser: Make
) -> None:
    ids = [enqueue(app, "alice", description=f"Together {i}") for i in range(3)]
    # The time part: the same for operations made within the same 65 s (two of the three
    # at least, should a 65 s boundary fall between them).
    firsts = [str(i)[:8] for i in ids]
    prefix = max(set(firsts), key=firsts.count)
    b = browser("admin")
    page = b.get(f"/c/CRONUS/entries?q={prefix}").text
    note = re.search(r'<p class="notice" id="id-prefix-note" role="status">([^<]+)', page)
    assert note is not None, "no note on an ambiguous id prefix"
    text = html.unescape(note.group(1))
    assert f"have ids starting with {prefix}" in text
    assert "13 or more digits" in text
    # Thirteen digits and more tell them apart: one row, no note.
    exact = str(ids[1]).replace("-", "")[:20]
    page = b.get(f"/c/CRONUS/entries?q={exact}").text
    assert rows(page) == [str(ids[1])]
    assert 'id="id-prefix-note"' not in page


# -- small texts -----------------------------------------------------------------------------


def test_a_bad_sort_cursor_names_its_field_and_rule(app: Longops, browser: Make) -> None:
    b = browser("admin")
    bad = b.get("/c/CRONUS/entries?sort=ended&after=5&after_value=yesterday")
    assert bad.status_code == 400
    text = html.unescape(bad.text)
    assert "is not a ended value" not in text
    assert "after_value: must be a time with its zone offset (ISO 8601" in text
    bad = b.get("/c/CRONUS/entries?sort=priority&before=5&before_value=high")
    assert bad.status_code == 400
    assert "before_value: must be a whole number" in html.unescape(bad.text)


def test_a_required_argument_missing_is_called_missing_not_blank(
    app: Longops, browser: Make
) -> None:
    @app.task(name="needs_batch")
    def needs_batch(ctx: object, batch: str) -> str:
        return batch

    b = browser("admin")
    b.get("/c/CRONUS/entries/new")
    missing = b.post("/c/CRONUS/entries/new", {"task": "needs_batch", "args": "{}"})
    assert missing.status_code == 400
    text = html.unescape(missing.text)
    assert 'args.batch: is required and missing: add "batch" with a value' in text
    assert "left blank" not in text
    blank = b.post("/c/CRONUS/entries/new", {"task": "needs_batch", "args": '{"batch": " "}'})
    assert "args.batch: is required: give it a value in the arguments (it was left blank)" in (
        html.unescape(blank.text)
    )


def test_an_error_card_has_no_empty_progress_bar_and_no_server_folders(
    app: Longops, browser: Make
) -> None:
    failed = app.as_user("alice").enqueue("boom", company="CRONUS", max_attempts=1).id
    Runner(app).run_until_idle()
    assert app.service.get(failed).status is Status.ERROR
    b = browser("admin")
    card = b.get(f"/c/CRONUS/entries/{failed}").text
    start = card.index('id="card-live"')
    live = card[start : card.index("</section>", start)]
    assert "<progress" not in live, "an empty bar on an Error card"
    assert "No progress was reported before it failed." in live
    # The traceback names the task's file without the checkout's folders.
    assert "conftest.py" in card
    assert str(ROOT) not in card, "the server's folders show in the traceback"
