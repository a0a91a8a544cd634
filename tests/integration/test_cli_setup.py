"""Setting longops up from the command line, as a team lead does for two companies:
changing only what is given, audit rows where each company's admins see them, and the
small things a new-user trial tripped over."""

from __future__ import annotations

import json
from datetime import timedelta

from test_cli import longops

from longops import Longops
from longops.domain.security import PermissionSet
from procs import wait_for


def test_categories_set_changes_only_what_is_given(db_url: str) -> None:
    assert longops("categories", "set", "POSTING", "--max-concurrent", "3", "--description",
                   "Invoices", db=db_url).returncode == 0  # fmt: skip
    paused = longops("categories", "set", "POSTING", "--paused", db=db_url)
    assert paused.returncode == 0, paused.stderr
    assert "POSTING: max 3 (paused)" in paused.stdout
    widened = longops("categories", "set", "POSTING", "--max-concurrent", "5", db=db_url)
    assert "POSTING: max 5 (paused)" in widened.stdout  # still paused
    [cat] = json.loads(longops("categories", "list", "--json", db=db_url).stdout)
    assert (cat["max_concurrent"], cat["paused"], cat["description"]) == (5, True, "Invoices")
    resumed = longops("categories", "set", "POSTING", "--running", db=db_url)
    assert "POSTING: max 5" in resumed.stdout
    assert "paused" not in resumed.stdout


def test_companies_add_again_keeps_what_is_not_given(db_url: str) -> None:
    made = longops("companies", "add", "FABRIKAM", "--time-zone", "America/New_York",
                   "--max-in-process", "2", db=db_url)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert longops("companies", "disable", "FABRIKAM", db=db_url).returncode == 0
    again = longops("companies", "add", "FABRIKAM", db=db_url)
    assert again.returncode == 0, again.stderr
    assert "America/New_York, at most 2 in process" in again.stdout
    both = longops("companies", "add", "FABRIKAM", "--max-in-process", "3", "--no-limit",
                   db=db_url)  # fmt: skip
    assert both.returncode == 2
    assert "max_in_process" in both.stderr
    unlimited = longops("companies", "add", "FABRIKAM", "--no-limit", db=db_url)
    assert unlimited.returncode == 0, unlimited.stderr
    assert "at most" not in unlimited.stdout
    [fab] = [c for c in json.loads(longops("companies", "list", "--json", db=db_url).stdout)
             if c["name"] == "FABRIKAM"]  # fmt: skip
    assert (fab["active"], fab["time_zone"], fab["max_in_process"]) == (
        True,
        "America/New_York",
        None,
    )


def test_setup_records_and_messages(db_url: str) -> None:
    app = Longops(db_url)
    try:
        app.add_company("CRONUS")
        app.security.add_user("adam", grants=[("CRONUS", PermissionSet.ADMIN)])
        app.security.add_user("alice", grants=[("CRONUS", PermissionSet.USER)])
        _, _token = app.security.create_token("alice", name="short", expires=timedelta(seconds=1))
    finally:
        app.close()
    # CRONUS's admin sees in CRONUS's audit log that alice was let in.
    audit = json.loads(longops("--as", "adam", "audit", "list", "--json", db=db_url).stdout)
    grants = [e for e in audit if e["action"] == "grant_permission" and e["company"] == "CRONUS"]
    assert {e["target"] for e in grants} >= {"user:alice", "user:adam"}
    # Forgetting nobody changes nothing and audits nothing.
    before = len(json.loads(longops("audit", "list", "--json", db=db_url).stdout))
    ghost = longops("users", "forget", "ghost", db=db_url)
    assert ghost.returncode == 1
    assert "user ghost not found" in ghost.stderr
    assert len(json.loads(longops("audit", "list", "--json", db=db_url).stdout)) == before

    # An expired token is listed as expired; revoking a revoked one says so.
    def expired_listing() -> str:
        out = longops("users", "token", "list", "alice", db=db_url).stdout
        return out if "expired" in out else ""

    listed = wait_for(expired_listing, timeout=30, what="the token listed as expired")
    assert "short" in listed
    assert longops("users", "token", "revoke", "alice", "short", db=db_url).returncode == 0
    again = longops("users", "token", "revoke", "alice", "short", db=db_url)
    assert again.returncode == 2
    assert "token: is already revoked" in again.stderr
    # A user of one company need not name it; the table names every entry's company.
    made = longops("--as", "alice", "enqueue", "demo.clean_up", db=db_url)
    assert made.returncode == 0, made.stderr
    table = longops("--as", "alice", "ops", "list", db=db_url).stdout
    assert "Company" in table
    assert "CRONUS" in table
    entry = made.stdout.strip().splitlines()[-1]
    assert longops("--as", "alice", "ops", "hold", entry, db=db_url).returncode == 0
    events = json.loads(longops("ops", "events", entry, "--json", db=db_url).stdout)
    assert [(e["data"]["action"], e["data"]["by"]) for e in events] == [("hold", "alice")]
