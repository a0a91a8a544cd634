"""The pages through HTTP on both databases: sign-in, CSRF, permissions, company
isolation, every page for every role, and the forms without JavaScript."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from web_support import PASSWORD, USERS, Browser

from longops import Longops
from longops.domain.status import Status
from longops.testing import Runner

Make = Callable[[str | None], Browser]


def enqueue(app: Longops, user: str, company: str = "CRONUS", **options: object) -> str:
    handle = app.as_user(user).enqueue("report", company=company, **options)  # type: ignore[arg-type]
    return str(handle.id)


def status_of(app: Longops, op_id: str) -> Status:
    return app.service.get(op_id).status


# -- sign-in -------------------------------------------------------------------------------


def test_sign_in_with_the_users_password_and_sign_out(browser: Make) -> None:
    b = browser(None)
    page = b.get("/login")
    assert page.status_code == 200
    assert '<label for="username">User name</label>' in page.text
    assert '<label for="password">Password</label>' in page.text
    assert ">Sign in</button>" in page.text
    assert b.get("/c/CRONUS/entries").headers["location"].startswith("/login?next=")

    wrong = b.post("/login", {"username": "alice", "password": PASSWORD + "!"})
    assert wrong.status_code == 400
    assert "Wrong user name or password" in wrong.text, wrong.text[-800:]
    assert 'role="alert"' in wrong.text
    assert b.post("/login", {"username": "nobody", "password": PASSWORD}).status_code == 400

    right = b.post("/login", {"username": "alice", "password": PASSWORD})
    assert right.status_code == 303
    cookie = right.headers["set-cookie"]
    assert cookie.startswith("longops_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie.replace("Lax", "lax")
    home = b.get("/")
    assert home.status_code == 303
    assert home.headers["location"] == "/c/CRONUS/"
    overview = b.get("/c/CRONUS/")
    assert overview.status_code == 200
    assert ">Sign out</button>" in overview.text

    out = b.post("/logout")
    assert out.status_code == 303
    assert b.get("/c/CRONUS/").status_code == 303  # back to the sign-in page


def test_sign_in_goes_back_to_the_page_asked_for_but_never_off_site(browser: Make) -> None:
    b = browser(None)
    b.get("/login")
    r = b.post(
        "/login", {"username": "alice", "password": PASSWORD, "next": "/c/CRONUS/categories"}
    )
    assert r.headers["location"] == "/c/CRONUS/categories"
    b = browser(None)
    r = b.post("/login", {"username": "alice", "password": PASSWORD, "next": "//evil.example/"})
    assert r.headers["location"] == "/"


def test_a_disabled_user_is_signed_out_at_once(app: Longops, browser: Make) -> None:
    b = browser("alice")
    assert b.get("/c/CRONUS/entries").status_code == 200
    app.security.disable_user("alice")
    assert b.get("/c/CRONUS/entries").status_code == 303


def test_a_forged_cookie_is_no_session(browser: Make) -> None:
    b = browser("alice")
    value = b.client.cookies["longops_session"]
    payload, _, mac = value.rpartition(".")
    b.client.cookies.set("longops_session", payload + "." + mac[::-1])
    assert b.get("/c/CRONUS/").status_code == 303


# -- CSRF -----------------------------------------------------------------------------------


def test_every_post_without_a_valid_csrf_token_is_refused(app: Longops, browser: Make) -> None:
    op = enqueue(app, "admin")
    session = app.store.register_session  # noqa: F841 - only the routes matter here
    b = browser("admin")
    b.get("/c/CRONUS/entries")
    posts = [
        "/logout",
        f"/c/CRONUS/entries/{op}/hold",
        f"/c/CRONUS/entries/{op}/cancel",
        f"/c/CRONUS/entries/{op}/delete",
        f"/c/CRONUS/entries/{op}/edit",
        "/c/CRONUS/entries/new",
        "/c/CRONUS/entries/bulk",
        "/c/CRONUS/categories",
        "/c/CRONUS/log-entries/delete",
        "/c/CRONUS/notifications/read",
        "/c/CRONUS/sessions/00000000-0000-0000-0000-000000000000/drain",
    ]
    for url in posts:
        missing = b.post(url, {"action": "cancel", "ids": op}, csrf=False)
        assert missing.status_code == 403, url
        forged = b.post(url, {"csrf_token": "x" * 43, "action": "cancel", "ids": op})
        assert forged.status_code == 403, url
    assert status_of(app, op) is Status.READY
    other = browser("alice")
    other.get("/c/CRONUS/entries")
    stolen = b.post(f"/c/CRONUS/entries/{op}/hold", {"csrf_token": other.csrf})
    assert stolen.status_code == 403
    assert status_of(app, op) is Status.READY
    anonymous = browser(None)
    assert (
        anonymous.post(
            "/login", {"username": "alice", "password": PASSWORD}, csrf=False
        ).status_code
        == 403
    )


# -- permissions and companies ---------------------------------------------------------------


def test_a_viewer_sees_no_controls_and_a_forged_post_is_refused(
    app: Longops, browser: Make
) -> None:
    op = enqueue(app, "alice")
    b = browser("viewer")
    listing = b.get("/c/CRONUS/entries")
    assert listing.status_code == 200
    assert f'data-operation-id="{op}"' in listing.text
    for control in ("Set On Hold", "Cancel selected", "New operation", 'name="ids"', "Delete"):
        assert control not in listing.text, control
    card = b.get(f"/c/CRONUS/entries/{op}")
    assert card.status_code == 200
    assert "Set On Hold</button>" not in card.text
    assert "Cancel</button>" not in card.text
    for action in ("hold", "cancel", "delete", "run-now", "force-cancel"):
        refused = b.post(f"/c/CRONUS/entries/{op}/{action}")
        assert refused.status_code == 403, action
    assert b.post("/c/CRONUS/entries/new", {"task": "report"}).status_code == 403
    bulk = b.post("/c/CRONUS/entries/bulk", {"action": "cancel", "ids": op, "confirmed": "1"})
    assert bulk.status_code == 403
    assert status_of(app, op) is Status.READY
    assert b.get("/c/CRONUS/entries/new").status_code == 403


def test_a_user_acts_on_their_own_operations_only(app: Longops, browser: Make) -> None:
    mine, theirs = enqueue(app, "alice"), enqueue(app, "bob")
    b = browser("alice")
    listing = b.get("/c/CRONUS/entries").text
    row = re.search(rf'<tr id="op-{theirs}".*?</tr>', listing, re.S)
    assert row is not None
    assert "Set On Hold" not in row.group(0)
    row = re.search(rf'<tr id="op-{mine}".*?</tr>', listing, re.S)
    assert row is not None
    assert "Set On Hold" in row.group(0)
    assert b.post(f"/c/CRONUS/entries/{theirs}/hold").status_code == 403
    assert b.post(f"/c/CRONUS/entries/{mine}/hold").status_code == 303
    assert status_of(app, mine) is Status.ON_HOLD
    assert status_of(app, theirs) is Status.READY


def test_another_companys_pages_and_entries_are_not_found(app: Longops, browser: Make) -> None:
    op = enqueue(app, "alice")
    outsider = browser("fabrikam")
    assert outsider.get("/").headers["location"] == "/c/FABRIKAM/"
    for url in (
        "/c/CRONUS/",
        "/c/CRONUS/entries",
        f"/c/CRONUS/entries/{op}",
        "/c/CRONUS/categories",
        "/c/NOWHERE/entries",
    ):
        assert outsider.get(url).status_code == 404, url
    assert outsider.get(f"/c/FABRIKAM/entries/{op}").status_code == 404
    assert outsider.post(f"/c/FABRIKAM/entries/{op}/hold").status_code == 404
    assert outsider.post(f"/c/CRONUS/entries/{op}/hold").status_code == 404
    both = browser("both")
    assert both.get(f"/c/FABRIKAM/entries/{op}").status_code == 404, "the path's company counts"
    assert both.get(f"/c/CRONUS/entries/{op}").status_code == 200
    assert both.get("/c/CRONUS/entries/not-an-id").status_code == 404
    assert status_of(app, op) is Status.READY


def test_the_company_switcher_shows_for_users_of_several_companies(browser: Make) -> None:
    both = browser("both")
    page = both.get("/c/CRONUS/").text
    assert '<label for="company-switch">Company</label>' in page
    assert both.get("/switch?company=FABRIKAM").headers["location"] == "/c/FABRIKAM/"
    assert both.get("/switch?company=NOWHERE").status_code == 404
    assert 'id="company-switch"' not in browser("alice").get("/c/CRONUS/").text


PAGES = [
    "/c/CRONUS/",
    "/c/CRONUS/entries",
    "/c/CRONUS/entries?mine=1",
    "/c/CRONUS/entries?status=ready&q=report",
    "/c/CRONUS/entries/{op}",
    "/c/CRONUS/log-entries",
    "/c/CRONUS/categories",
    "/c/CRONUS/sessions",
    "/c/CRONUS/notifications",
]


@pytest.mark.parametrize("user", [u for u in USERS if u != "fabrikam"])
def test_every_page_renders_for_every_role(app: Longops, browser: Make, user: str) -> None:
    op = enqueue(app, "alice")
    b = browser(user)
    for url in PAGES:
        page = b.get(url.format(op=op))
        assert page.status_code == 200, (url, page.text[:500])
        assert 'id="background-indicator"' in page.text
        assert 'id="toasts" aria-live="polite"' in page.text
        for link in (
            "Overview",
            "Job Queue Entries",
            "Log Entries",
            "Categories",
            "Notifications",
        ):
            assert f">{link}" in page.text, (url, link)
        # Worker sessions serve every company: in the navigation of SUPER users only.
        assert ('href="/c/CRONUS/sessions"' in page.text) is (user == "root"), url
    new = b.get("/c/CRONUS/entries/new")
    assert new.status_code == (403 if user == "viewer" else 200)


# -- forms without JavaScript ------------------------------------------------------------------


def test_enqueue_hold_ready_and_cancel_with_plain_forms(app: Longops, browser: Make) -> None:
    b = browser("alice")
    form = b.get("/c/CRONUS/entries/new")
    assert '<label for="n-task">Task</label>' in form.text
    assert '<label for="n-args">Arguments (JSON)</label>' in form.text
    bad = b.post("/c/CRONUS/entries/new", {"task": "report", "args": "{not json"})
    assert bad.status_code == 400
    assert "args" in bad.text
    wrong_kw = b.post("/c/CRONUS/entries/new", {"task": "report", "args": '{"colour": 1}'})
    assert wrong_kw.status_code == 400
    done = b.post(
        "/c/CRONUS/entries/new",
        {"task": "report", "args": '{"pages": 3}', "description": "Quarterly report"},
    )
    assert done.status_code == 303
    card_url = done.headers["location"]
    op = card_url.rsplit("/", 1)[1]
    card = b.get(card_url)
    assert "<h1>Quarterly report</h1>" in card.text
    assert app.service.get(op).kwargs == {"pages": 3}
    assert app.service.get(op).user == "alice"

    assert b.post(f"{card_url}/hold", {"next": card_url}).headers["location"] == card_url
    assert status_of(app, op) is Status.ON_HOLD
    card = b.get(card_url)
    assert "Set Ready</button>" in card.text
    assert "Set On Hold</button>" not in card.text
    assert ") put on hold.</p>" in card.text, "the notice says what was done"
    assert 'class="notice"' in card.text
    b.post(f"{card_url}/set-ready")
    assert status_of(app, op) is Status.READY
    b.post(f"{card_url}/cancel")
    assert status_of(app, op) is Status.CANCELLED
    listing = b.get("/c/CRONUS/entries")
    assert f'data-operation-id="{op}" data-status="cancelled"' in listing.text
    again = b.post(f"{card_url}/cancel")
    assert again.status_code == 303, "a cancelled operation cannot be cancelled: back, said so"
    assert "is already Cancelled." in b.get(again.headers["location"]).text


def test_a_failed_operation_shows_its_error_and_restarts(app: Longops, browser: Make) -> None:
    op = str(app.as_user("alice").enqueue("boom", company="CRONUS").id)
    Runner(app).run_until_idle()
    assert status_of(app, op) is Status.ERROR
    b = browser("alice")
    listing = b.get("/c/CRONUS/entries?status=error").text
    assert "Show error</a>" in listing
    card = b.get(f"/c/CRONUS/entries/{op}").text
    assert "the printer is on fire" in card
    assert '<details class="traceback" open>' in card
    assert "RuntimeError" in card
    assert b.post(f"/c/CRONUS/entries/{op}/restart").status_code == 303
    assert status_of(app, op) is Status.READY


def test_bulk_cancel_of_all_matching_the_filter_names_the_count(
    app: Longops, browser: Make
) -> None:
    ids = [enqueue(app, "alice", description=f"batch {i}") for i in range(7)]
    other = enqueue(app, "alice", description="keep me")
    b = browser("alice")
    b.get("/c/CRONUS/entries?q=batch")
    confirm = b.post(
        "/c/CRONUS/entries/bulk", {"action": "cancel", "all_matching": "1", "q": "batch"}
    )
    assert confirm.status_code == 200
    assert "<h1>Cancel 7 operations?</h1>" in confirm.text
    assert ">Confirm</button>" in confirm.text
    assert all(status_of(app, i) is Status.READY for i in ids), "nothing before Confirm"
    b.post(
        "/c/CRONUS/entries/bulk",
        {"action": "cancel", "all_matching": "1", "q": "batch", "confirmed": "1"},
    )
    assert all(status_of(app, i) is Status.CANCELLED for i in ids)
    assert status_of(app, other) is Status.READY
    listing = b.get("/c/CRONUS/entries")
    assert "Cancelled 7 operations." in listing.text


def test_bulk_restart_of_a_selection(app: Longops, browser: Make) -> None:
    ids = [enqueue(app, "alice") for _ in range(3)]
    for i in ids:
        app.service.cancel(i)
    b = browser("alice")
    b.get("/c/CRONUS/entries")
    confirm = b.post("/c/CRONUS/entries/bulk", {"action": "restart", "ids": ids[:2]})
    assert "<h1>Restart 2 operations?</h1>" in confirm.text
    b.post("/c/CRONUS/entries/bulk", {"action": "restart", "ids": ids[:2], "confirmed": "1"})
    assert [status_of(app, i) for i in ids] == [Status.READY, Status.READY, Status.CANCELLED]


def test_the_list_pages_on_with_a_keyset(app: Longops, browser: Make) -> None:
    ids = [enqueue(app, "alice") for _ in range(55)]
    b = browser("alice")
    first = b.get("/c/CRONUS/entries").text
    assert first.count("data-operation-id=") == 50
    assert f'data-operation-id="{ids[-1]}"' in first
    assert f'data-operation-id="{ids[0]}"' not in first
    link = re.search(r'href="(\?[^"]*after=\d+)" rel="next"', first)
    assert link is not None
    second = b.get("/c/CRONUS/entries" + link.group(1).replace("&amp;", "&")).text
    assert second.count("data-operation-id=") == 5
    assert f'data-operation-id="{ids[0]}"' in second
    assert 'rel="next"' not in second


def test_bad_filters_are_bad_input(browser: Make) -> None:
    b = browser("alice")
    assert b.get("/c/CRONUS/entries?status=sleeping").status_code == 400
    assert b.get("/c/CRONUS/entries?after=-1").status_code == 400


def test_a_bulk_action_leaves_what_core_refuses_and_says_so(app: Longops, browser: Make) -> None:
    hers, his = enqueue(app, "alice"), enqueue(app, "bob")
    bob = browser("bob")
    bob.get("/c/CRONUS/entries")
    done = bob.post(
        "/c/CRONUS/entries/bulk", {"action": "cancel", "ids": [hers, his], "confirmed": "1"}
    )
    assert done.status_code == 303
    assert status_of(app, his) is Status.CANCELLED
    assert status_of(app, hers) is Status.READY
    notice = bob.get(done.headers["location"]).text
    assert "Cancelled 1 operation. 1 operation could not be: 1 not yours to change." in notice
