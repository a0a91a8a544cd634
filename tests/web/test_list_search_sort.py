"""Issue 17, the Job Queue Entries list: find anything (entry number, id prefix, words of the
description, task or error, a user's name prefix), sort by a column server-side with keyset
pages, relative times with the exact time, Ended and Duration, the blocking operation named
in "Waiting for", one action per row and a menu, a row's Delete confirmed, and a bulk
confirmation that names the operations."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from web_support import Browser

from longops import Longops
from longops.domain.status import Status
from longops.store.base import ClaimParams
from longops.testing import Runner, active_session

Make = Callable[[str | None], Browser]


def rows(page: str) -> list[str]:
    """The operation ids of the list's rows, in order."""
    return re.findall(r'<tr id="op-[^"]+" data-operation-id="([^"]+)"', page)


def enqueue(app: Longops, user: str, **kw: object) -> str:
    return str(app.as_user(user).enqueue("report", company="CRONUS", **kw).id)  # type: ignore[arg-type]


def test_find_by_entry_number_id_prefix_words_error_and_user_prefix(
    app: Longops, browser: Make
) -> None:
    svc = app.as_user("admin").service
    a = svc.get(enqueue(app, "alice", description="Ledger close"))
    b_op = svc.get(enqueue(app, "bob", description="Stock count"))
    failed = str(app.as_user("bob").enqueue("boom", company="CRONUS").id)
    Runner(app).run_until_idle()
    b = browser("admin")
    assert rows(b.get(f"/c/CRONUS/entries?q={b_op.entry_no}").text) == [str(b_op.id)]
    assert rows(b.get(f"/c/CRONUS/entries?q=%23{a.entry_no}").text) == [str(a.id)]
    prefix = str(a.id)[:8]
    assert str(a.id) in rows(b.get(f"/c/CRONUS/entries?q={prefix}").text)
    assert rows(b.get("/c/CRONUS/entries?q=printer+is+on+fire").text) == [failed]
    assert rows(b.get("/c/CRONUS/entries?q=stock").text) == [str(b_op.id)]
    by_prefix = rows(b.get("/c/CRONUS/entries?user=AL").text)
    assert str(a.id) in by_prefix
    assert str(b_op.id) not in by_prefix
    # The search box says what it finds; the facets count what the search matches.
    page = b.get("/c/CRONUS/entries?q=stock").text
    assert "An entry number (#4711 finds that one only)" in page
    assert re.search(r'data-status="finished">[^<]*<span class="count">1</span>', page)


def test_a_broad_searchs_facets_say_they_are_lower_bounds(
    app: Longops, browser: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    import longops.core.read_models as core_read_models

    for i in range(4):
        enqueue(app, "alice", description=f"Broad {i}")
    monkeypatch.setattr(core_read_models, "COUNT_CAP", 2)  # 3 matches read at most
    b = browser("admin")
    page = b.get("/c/CRONUS/entries?q=Broad").text
    assert "The search matches more than" in page
    assert re.search(r'data-status="ready">[^<]*<span class="count">3\+</span>', page)
    assert re.search(r'data-status="finished">[^<]*<span class="count">\?</span>', page)
    assert len(rows(page)) == 4
    narrow = b.get("/c/CRONUS/entries?q=Broad+1").text
    assert "The search matches more than" not in narrow
    assert re.search(r'data-status="ready">[^<]*<span class="count">1</span>', narrow)


def test_sort_by_two_columns_with_keyset_pages_and_the_order_in_the_url(
    app: Longops, browser: Make
) -> None:
    users = ("alice", "bob")
    made = [enqueue(app, users[i % 2], description=f"Sorted {i:02d}") for i in range(55)]
    b = browser("admin")
    first = b.get("/c/CRONUS/entries?q=Sorted&sort=user&dir=asc").text
    assert re.search(
        r'<th scope="col" aria-sort="ascending"><a class="sort" href="[^"]*sort=user&amp;dir=desc"',
        first,
    )
    assert 'aria-sort="none"><a class="sort" href="?q=Sorted&amp;sort=ended&amp;dir=desc"' in first
    shown = rows(first)
    assert len(shown) == 50
    alice = {m for i, m in enumerate(made) if i % 2 == 0}
    # alice's 28, then bob's; ties in the same direction as the sort (oldest first here)
    assert shown[:28] == [m for m in made if m in alice]
    nxt = re.search(r'href="([^"]+)" rel="next"', first)
    assert nxt
    link = html.unescape(nxt.group(1))
    query = parse_qs(urlsplit(link).query)
    assert query["sort"] == ["user"]
    assert query["after_value"] == ["bob"]
    rest = rows(b.get("/c/CRONUS/entries" + link).text)
    assert len(rest) == 5
    assert not set(rest) & set(shown)
    assert set(rest) | set(shown) == set(made)
    # A second column: by description, Z to A.
    desc = rows(b.get("/c/CRONUS/entries?q=Sorted&sort=description&dir=desc").text)
    assert desc[:3] == [made[54], made[53], made[52]]
    # A wrong order is refused as bad input, not a server error.
    assert b.get("/c/CRONUS/entries?sort=nonsense").status_code == 400
    assert b.get("/c/CRONUS/entries?sort=ended&after=3&after_value=yesterday").status_code == 400


def test_rows_show_relative_times_ended_duration_and_one_action_with_a_menu(
    app: Longops, browser: Make
) -> None:
    done = enqueue(app, "alice", description="Done one")
    Runner(app).run_until_idle()
    waiting = enqueue(app, "alice", description="Waiting one")
    b = browser("alice")
    page = b.get("/c/CRONUS/entries?q=one").text
    row = page[page.index(f'data-operation-id="{done}"') :]
    row = row[: row.index("</tr>")]
    # Ended: relative, with the exact time (company time zone) as the title and ISO 8601.
    assert re.search(
        r'<td class="ended"><time datetime="\d{4}-\d\d-\d\dT[^"]+" title="\d{4}-\d\d-\d\d '
        r'\d\d:\d\d:\d\d CE[S]?T">just now</time></td>',
        row,
    ), row
    assert re.search(r'<td class="took">\d+\.\d s</td>', row), row
    ready = page[page.index(f'data-operation-id="{waiting}"') :]
    ready = ready[: ready.index("</tr>")]
    # One button (Cancel) and the rest in a menu that opens without JavaScript.
    assert ready.count('<form method="post"') >= 2
    assert re.search(r'class="primary">.*?>Cancel</button>', ready, re.S)
    assert '<details class="row-menu">' in ready
    assert ">Set On Hold</button>" in ready[ready.index("row-menu") :]


def test_a_rows_delete_asks_first_and_says_it_cannot_be_undone(app: Longops, browser: Make) -> None:
    op = app.as_user("alice").service.get(enqueue(app, "alice", description="Delete me"))
    app.as_user("alice").service.cancel(op.id)
    b = browser("alice")
    page = b.get("/c/CRONUS/entries?q=Delete+me").text
    menu = page[page.index("row-menu") :]
    # The row's Delete posts to the bulk confirmation, never straight to delete.
    assert f'action="/c/CRONUS/entries/{op.id}/delete"' not in page
    assert re.search(r'name="action" value="delete" id="act-delete-', menu)
    asked = b.post(
        "/c/CRONUS/entries/bulk",
        {"action": "delete", "ids": [str(op.id)], "next": "/c/CRONUS/entries?q=Delete+me"},
    )
    assert asked.status_code == 200
    assert f"<h1>Delete operation {op.entry_no}?</h1>" in asked.text
    assert f"Operation {op.entry_no} (Delete me), Cancelled, will be deleted." in asked.text
    assert "Undo is offered for 30 seconds" in asked.text
    assert app.as_user("alice").service.get(op.id).status is Status.CANCELLED
    done = b.post(
        "/c/CRONUS/entries/bulk",
        {"action": "delete", "ids": [str(op.id)], "confirmed": "1",
         "next": "/c/CRONUS/entries?q=Delete+me"},
    )  # fmt: skip
    assert done.status_code == 303
    assert rows(b.get("/c/CRONUS/entries?q=Delete+me").text) == []


def test_the_bulk_confirmation_names_the_first_operations_and_how_many_more(
    app: Longops, browser: Make
) -> None:
    for i in range(8):
        enqueue(app, "alice", description=f"Named {i}")
    b = browser("alice")
    b.get("/c/CRONUS/entries?q=Named")
    asked = b.post(
        "/c/CRONUS/entries/bulk", {"action": "cancel", "all_matching": "1", "q": "Named"}
    )
    assert "<h1>Cancel 8 operations?</h1>" in asked.text
    named = re.findall(r"<li>(Named \d) \(No\. \d+\)</li>", asked.text)
    assert named == ["Named 7", "Named 6", "Named 5", "Named 4", "Named 3"]
    assert "<li>and 3 more</li>" in asked.text


def test_waiting_for_names_the_blocking_operation_and_its_number(
    app: Longops, browser: Make
) -> None:
    app.set_category("POSTING", company="CRONUS", max_concurrent=1)
    svc = app.as_user("admin").service
    holder = svc.get(enqueue(app, "alice", description="Holder run", category="POSTING"))
    session = active_session(app.clock.now(), ("default",))
    app.store.register_session(session)
    [run] = app.store.claim(
        ClaimParams(session_id=session.id, queues=("default",), limit=1, now=app.clock.now())
    )
    assert run.operation.id == holder.id
    waiting = enqueue(app, "alice", description="Queued behind", category="POSTING")
    b = browser("alice")
    page = b.get("/c/CRONUS/entries?q=Queued+behind").text
    cell = re.search(r'<td class="wait">(.*?)</td>', page, re.S)
    assert cell, page[-3000:]
    assert (
        f'href="/c/CRONUS/entries/{holder.id}">Holder run (No. {holder.entry_no})</a>'
        in cell.group(1)
    )
    assert str(holder.id) not in re.sub(r'href="[^"]*"', "", cell.group(1)), "no raw id shown"
    assert waiting in page
    card = b.get(f"/c/CRONUS/entries/{waiting}").text  # the card names it the same way
    live = re.search(r'<section id="card-live".*?</section>', card, re.S)
    assert live, card[-3000:]
    assert (
        f'href="/c/CRONUS/entries/{holder.id}">Holder run (No. {holder.entry_no})</a>'
        in live.group(0)
    )
    assert str(holder.id) not in re.sub(r'href="[^"]*"', "", live.group(0)), "no raw id shown"
