"""``longops notifications`` against a real database and a loopback webhook."""

from __future__ import annotations

import json

import pytest
from test_cli import longops

from longops import EnqueueRequest, Longops
from longops.domain.security import PermissionSet
from longops.notify.secrets import SecretBox
from longops.testing import Runner
from notify_receivers import webhook


def keyed_app(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Longops:
    """An app with company CRONUS whose secret key the command line gets too."""
    key = SecretBox.generate_key()
    monkeypatch.setenv("LONGOPS_SECRET_KEY", key)
    app = Longops(db_url, secret_key=key)
    app.add_company("CRONUS")
    return app


def test_set_up_send_and_read_the_log_from_the_command_line(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = keyed_app(db_url, monkeypatch)
    app.security.add_user("ann")
    app.security.add_user("vic", grants=[("CRONUS", PermissionSet.VIEW)])

    @app.task(name="boom", max_attempts=1)
    def boom() -> None:
        raise RuntimeError("kaput")

    def run(*args: str) -> str:
        done = longops("notifications", *args, db=db_url, app=None)
        assert done.returncode == 0, done.stderr
        return done.stdout

    with webhook() as hook:
        url = hook.url(auth="robot:hunter22@")
        added = run("channels", "add", "hook", url, "--company", "CRONUS")
        assert "hunter22" not in added
        assert f"json://robot:****@127.0.0.1:{hook.port}/****" in added
        [listed] = json.loads(run("channels", "list", "--company", "CRONUS", "--json"))
        assert listed["url"] == f"json://robot:****@127.0.0.1:{hook.port}/****"
        assert "test sent to hook" in run("channels", "test", "hook", "--company", "CRONUS")
        assert len(hook.received) == 1
        made = run("rules", "add", "--company", "CRONUS", "--on", "failed",
                   "--to", "channel:hook", "--to", "admins")  # fmt: skip
        assert "rule failed-1: on failed -> channel:hook, admins" in made
        assert "ann is a notified admin" in run("admins", "add", "ann", "--company", "CRONUS")
        rules = json.loads(run("rules", "list", "--company", "CRONUS", "--json"))
        assert {r["name"] for r in rules} == {"default", "failed-1"}
        assert json.loads(run("admins", "list", "--company", "CRONUS", "--json")) == ["ann"]

        app.service.enqueue(EnqueueRequest(task="boom", company="CRONUS"))
        Runner(app).run_until_idle()
        run("deliver", "--once")
        assert len(hook.received) == 2
        log = json.loads(run("deliveries", "list", "--company", "CRONUS", "--json"))
        assert sorted((d["recipient"], d["status"]) for d in log) == [
            ("channel:hook", "sent"),
            ("inbox:ann", "sent"),
        ]
        assert hook.received[1].key in {d["idempotency_key"] for d in log}

    bad = longops("notifications", "rules", "add", "--company", "CRONUS", "--on", "exploded",
                  "--to", "admins", db=db_url, app=None)  # fmt: skip
    assert bad.returncode == 2
    assert "on: must be one of" in bad.stderr
    refused = longops("--as", "vic", "notifications", "channels", "list", db=db_url, app=None)
    assert refused.returncode == 1
    assert "JOBQUEUE-ADMIN" in refused.stderr
    app.close()


def test_email_address_choice_and_the_email_channel_from_the_command_line(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = keyed_app(db_url, monkeypatch)

    def run(*args: str, code: int = 0) -> str:
        done = longops(*args, db=db_url, app=None)
        assert done.returncode == code, done.stderr
        return done.stdout + done.stderr

    run("users", "add", "ann", "--email", "ann@example.com")
    assert app.store.get_user_contact("ann") == ("ann@example.com", False)
    said = run("users", "set", "ann", "--notify", "email")
    assert "ann@example.com, notified in the app and by email" in said
    assert app.store.email_recipients() == {"ann": "ann@example.com"}
    assert "email" in run("users", "set", "ann", "--email", "bad address", code=2)
    assert app.store.get_user_contact("ann") == ("ann@example.com", True)
    run("users", "set", "ann", "--no-email")
    assert app.store.get_user_contact("ann") == (None, False)

    mail = "mailto://127.0.0.1:9?from=longops@example.com&to=ops@example.com"
    run("notifications", "channels", "add", "people", mail, "--company", "CRONUS")
    out = run("notifications", "channels", "email", "people", "--company", "CRONUS")
    assert "people's email goes through people" in out
    assert app.notification_setup.email_channel("CRONUS") == "people"
    run("notifications", "channels", "email", "--none", "--company", "CRONUS")
    assert app.notification_setup.email_channel("CRONUS") is None
    app.close()


def test_a_person_mutes_and_unmutes_a_rule_from_the_command_line(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = keyed_app(db_url, monkeypatch)
    app.security.add_user("ann", grants=[("CRONUS", PermissionSet.VIEW)])

    def run(*args: str) -> str:
        done = longops("--as", "ann", *args, db=db_url, app=None)
        assert done.returncode == 0, done.stderr
        return done.stdout

    # As docs/notifications.md shows it.
    assert "muted for you" in run(
        "notifications", "rules", "mute", "default", "--company", "CRONUS"
    )
    assert app.as_user("ann").notification_setup.muted_rules("CRONUS") == ["default"]
    run("notifications", "rules", "unmute", "default", "--company", "CRONUS")
    assert app.as_user("ann").notification_setup.muted_rules("CRONUS") == []
    app.close()
