"""Categories, Sessions, the New operation form's refusals, and how the server shares its
paths between the pages and the REST API."""

from __future__ import annotations

from collections.abc import Callable

from web_support import Browser

from longops import Longops
from longops.domain.operation import SessionState
from longops.store.base import OperationQuery
from longops.testing import Runner

Make = Callable[[str | None], Browser]


def test_admins_edit_categories_and_others_only_read_them(app: Longops, browser: Make) -> None:
    app.as_user("alice").enqueue("report", company="CRONUS", category="POSTING")
    alice = browser("alice")
    page = alice.get("/c/CRONUS/categories").text
    assert '<tr data-category="POSTING">' in page
    assert "Add category" not in page
    assert "<input" not in page.split("<main")[1]
    refused = alice.post("/c/CRONUS/categories", {"code": "POSTING", "max_concurrent": "5"})
    assert refused.status_code == 403
    assert app.companies.list_categories("CRONUS")[0].max_concurrent == 1

    admin = browser("admin")
    page = admin.get("/c/CRONUS/categories").text
    assert 'aria-label="Max concurrent of POSTING"' in page
    assert ">Add category</button>" in page
    waiting = page.split('<tr data-category="POSTING">')[1].split("</tr>")[0]
    assert 'status=ready">1</a>' in waiting, "one operation waits in the category"
    saved = admin.post(
        "/c/CRONUS/categories",
        {"code": "POSTING", "description": "Posting", "max_concurrent": "5", "paused": "1"},
    )
    assert saved.status_code == 303
    [cat] = app.companies.list_categories("CRONUS")
    assert (cat.max_concurrent, cat.paused) == (5, True)
    admin.post("/c/CRONUS/categories", {"code": "EXPORTS", "max_concurrent": "2"})
    assert {c.code for c in app.companies.list_categories("CRONUS")} == {"POSTING", "EXPORTS"}
    bad = admin.post("/c/CRONUS/categories", {"code": "X", "max_concurrent": "0"})
    assert bad.status_code == 400
    assert "max_concurrent" in bad.text


def test_super_users_see_and_drain_sessions(app: Longops, browser: Make) -> None:
    runner = Runner(app)
    admin = browser("admin")
    page = admin.get("/c/CRONUS/sessions")
    assert page.status_code == 200
    assert "only SUPER users see them" in page.text
    url = f"/c/CRONUS/sessions/{runner.session_id}/drain"
    assert admin.post(url).status_code == 403
    root = browser("root")
    page = root.get("/c/CRONUS/sessions").text
    assert f'<tr data-session-id="{runner.session_id}">' in page
    assert ">Drain</button>" in page
    assert "stopped claiming" not in page
    app.store.set_session_claim_stopped(runner.session_id, "migration 0099 is not compatible")
    page = root.get("/c/CRONUS/sessions").text
    assert "stopped claiming: migration 0099 is not compatible" in page
    assert root.post(url).status_code == 303
    [session] = [s for s in app.sessions.list_sessions() if s.id == runner.session_id]
    assert session.state is SessionState.DRAINING
    assert root.post("/c/CRONUS/sessions/not-a-session/drain").status_code == 404


def test_the_new_operation_form_refuses_bad_input_with_the_form_again(
    app: Longops, browser: Make
) -> None:
    b = browser("alice")
    b.get("/c/CRONUS/entries/new")
    unknown = b.post("/c/CRONUS/entries/new", {"task": "nope", "description": "Kept"})
    assert unknown.status_code == 400
    assert "must be a registered task name" in unknown.text
    assert 'value="Kept"' in unknown.text, "what was typed is kept"
    none = b.post("/c/CRONUS/entries/new", {"task": ""})
    assert none.status_code == 400
    later = b.post(
        "/c/CRONUS/entries/new",
        {"task": "report", "earliest_start": "2999-01-01T08:00", "on_hold": "1"},
    )
    assert later.status_code == 303
    op = app.service.get(later.headers["location"].rsplit("/", 1)[1])
    assert op.status.value == "on_hold"
    assert op.earliest_start_at.utcoffset() is not None
    assert op.earliest_start_at.astimezone().year == 2999
    assert not app.service.list_operations(OperationQuery(company="FABRIKAM"))


def test_the_api_keeps_its_paths_and_the_pages_get_the_rest(browser: Make) -> None:
    http = browser(None).client
    assert http.get("/healthz").status_code == 200
    api = http.get("/v1/companies/CRONUS/operations")
    assert api.status_code == 401
    assert api.headers["content-type"].startswith("application/json")
    assert http.get("/v1/openapi.json").status_code == 200
    page = http.get("/login")
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    htmx = http.get("/static/htmx.min.js")
    assert htmx.status_code == 200
    assert "htmx" in htmx.text[:2000]
    assert http.get("/static/sse.min.js").status_code == 200
    missing = http.get("/no/such/page")
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"]
