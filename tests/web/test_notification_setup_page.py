"""The Notification Setup page: an admin adds a channel, a rule and a notified admin, sends
a test, and reads the delivery log; others are refused; a channel's secret never shows."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from web_support import Browser

from longops import EnqueueRequest, Longops
from longops.notify.secrets import SecretBox
from longops.testing import Runner
from notify_receivers import webhook

Make = Callable[[str | None], Browser]
SECRET = "hunter2-but-longer"  # noqa: S105 - a test value, looked for in every page


def test_an_admin_sets_up_notifications_and_reads_the_log(app: Longops, browser: Make) -> None:
    app.secret_key = SecretBox.generate_key()
    admin = browser("admin")
    page = admin.get("/c/CRONUS/notification-setup")
    assert page.status_code == 200
    assert '<tr data-rule="default">' in page.text  # Business Central's, from the start
    assert 'href="/c/CRONUS/notification-setup" aria-current="page"' in page.text
    with webhook() as hook:
        saved = admin.post(
            "/c/CRONUS/notification-setup/channels",
            {"name": "ops", "url": hook.url(auth=f"robot:{SECRET}@"), "rate_limit": ""},
        )
        assert saved.status_code == 303, saved.text
        rule = admin.post(
            "/c/CRONUS/notification-setup/rules",
            {"name": "to-ops", "on": "failed", "to": "channel:ops, admins"},
        )
        assert rule.status_code == 303, rule.text
        added = admin.post("/c/CRONUS/notification-setup/admins", {"user": "bob"})
        assert added.status_code == 303, added.text
        tested = admin.post("/c/CRONUS/notification-setup/channels/ops/test")
        assert tested.status_code == 303
        page = admin.get("/c/CRONUS/notification-setup").text
        assert "Test sent to ops." in page
        assert len(hook.received) == 1

        app.service.enqueue(EnqueueRequest(task="boom", company="CRONUS", max_attempts=1))
        Runner(app).run_until_idle()
        app.delivery_service().run_once()
        assert len(hook.received) == 2
    page = admin.get("/c/CRONUS/notification-setup").text
    assert '<tr data-channel="ops">' in page
    assert f"json://robot:****@127.0.0.1:{hook.port}/****" in page
    log = page.split('aria-label="Delivery log"')[1]
    assert 'data-status="sent"' in log
    assert "channel:ops" in log
    assert "inbox:bob" in log
    assert '<li data-admin="bob">' in page
    for seen in (page, saved.text, tested.text):
        assert SECRET not in seen


def test_refusals_name_the_field_and_others_may_not_look(app: Longops, browser: Make) -> None:
    app.secret_key = SecretBox.generate_key()
    admin = browser("admin")
    admin.get("/c/CRONUS/notification-setup")
    bad = admin.post(
        "/c/CRONUS/notification-setup/rules", {"name": "x", "on": "exploded", "to": "admins"}
    )
    assert bad.status_code == 400
    assert "on: must be one of" in bad.text
    assert 'value="x"' in bad.text  # what was typed is kept
    bad_url = admin.post(
        "/c/CRONUS/notification-setup/channels", {"name": "c", "url": f"nope {SECRET}"}
    )
    assert bad_url.status_code == 400
    assert "url: must be an Apprise URL" in bad_url.text
    assert SECRET not in bad_url.text
    assert [c.name for c in app.notification_setup.list_channels("CRONUS")] == []

    alice = browser("alice")
    assert "notification-setup" not in alice.get("/c/CRONUS/").text
    assert alice.get("/c/CRONUS/notification-setup").status_code == 403
    alice.get("/c/CRONUS/")
    refused = alice.post("/c/CRONUS/notification-setup/admins", {"user": "alice"})
    assert refused.status_code == 403
    assert app.notification_setup.list_admins("CRONUS") == []


def test_the_api_never_answers_with_a_channel_secret(app: Longops, served: str) -> None:
    app.secret_key = SecretBox.generate_key()
    _, token = app.security.create_token("admin", name="notify-test")
    headers = {"Authorization": f"Bearer {token}"}
    base = f"{served}/v1/companies/CRONUS"
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http, webhook() as hook:
        url = hook.url(auth=f"robot:{SECRET}@")
        made = http.post("/notification-channels", json={"name": "ops", "url": url})
        assert made.status_code == 201, made.text
        assert made.json()["url"] == f"json://robot:****@127.0.0.1:{hook.port}/****"
        rule = {"name": "r", "on": "failed", "to": ["channel:ops"]}
        assert http.post("/notification-rules", json=rule).status_code == 201
        tested = http.post("/notification-channels/ops:test")
        assert tested.json() == {"sent": True, "error": None}
        app.service.enqueue(EnqueueRequest(task="boom", company="CRONUS", max_attempts=1))
        Runner(app).run_until_idle()
        app.delivery_service().run_once()
        answers = [
            made,
            tested,
            http.get("/notification-channels"),
            http.get("/notification-rules"),
            http.get("/notification-deliveries"),
        ]
    [delivery] = answers[-1].json()["deliveries"]
    assert (delivery["recipient"], delivery["status"]) == ("channel:ops", "sent")
    assert hook.received[-1].key == delivery["idempotencyKey"]
    for answer in answers:
        assert SECRET not in answer.text


def test_a_person_mutes_a_rule_and_chooses_email_on_the_preferences_page(
    app: Longops, browser: Make
) -> None:
    app.secret_key = SecretBox.generate_key()
    alice = browser("alice")
    inbox = alice.get("/c/CRONUS/notifications").text
    assert 'href="/c/CRONUS/notification-preferences"' in inbox
    page = alice.get("/c/CRONUS/notification-preferences")
    assert page.status_code == 200
    assert '<tr data-rule="default" data-muted="no">' in page.text
    muted = alice.post("/c/CRONUS/notification-preferences/rules/default/mute")
    assert muted.status_code == 303, muted.text
    page = alice.get("/c/CRONUS/notification-preferences").text
    assert '<tr data-rule="default" data-muted="yes">' in page
    assert "Rule default muted." in page
    assert app.as_user("alice").notification_setup.muted_rules("CRONUS") == ["default"]
    [entry] = [e for e in app.security.list_audit(company="CRONUS") if e.actor == "alice"]
    assert (entry.action, entry.target) == ("mute_notification_rule", "rule default")

    refused = alice.post(
        "/c/CRONUS/notification-preferences/email", {"email": "nope", "choice": "email"}
    )
    assert refused.status_code == 400
    assert "email: must be one email address" in refused.text
    assert app.store.get_user_contact("alice") == (None, False)  # nothing changed
    chosen = alice.post(
        "/c/CRONUS/notification-preferences/email",
        {"email": "alice@example.com", "choice": "email"},
    )
    assert chosen.status_code == 303, chosen.text
    assert app.store.get_user_contact("alice") == ("alice@example.com", True)
    page = alice.get("/c/CRONUS/notification-preferences").text
    assert 'value="alice@example.com"' in page
    assert 'value="email" checked' in page

    alice.post("/c/CRONUS/notification-preferences/rules/default/unmute")
    assert app.as_user("alice").notification_setup.muted_rules("CRONUS") == []


def test_the_api_sets_a_users_email_and_the_personal_email_channel(
    app: Longops, served: str
) -> None:
    app.secret_key = SecretBox.generate_key()
    _, token = app.security.create_token("alice", name="contact-test")
    _, admin_token = app.security.create_token("admin", name="contact-admin")
    with httpx.Client(base_url=served, timeout=30) as http:
        mine = {"Authorization": f"Bearer {token}"}
        chose = http.put(
            "/v1/users/alice/contact",
            json={"email": "alice@example.com", "notify": "email"},
            headers=mine,
        )
        assert chose.json() == {"name": "alice", "email": "alice@example.com", "notify": "email"}
        bad = http.put("/v1/users/alice/contact", json={"email": "x"}, headers=mine)
        assert bad.status_code == 400
        assert bad.json()["error"]["target"] == "email"
        assert http.get("/v1/users/alice/contact", headers=mine).json()["notify"] == "email"
        assert http.get("/v1/users/admin/contact", headers=mine).status_code == 403
        admin = {"Authorization": f"Bearer {admin_token}"}
        _, root_token = app.security.create_token("root", name="contact-root")
        root = {"Authorization": f"Bearer {root_token}"}
        made = http.post(
            "/v1/users", json={"name": "zed", "email": "zed@example.com"}, headers=root
        )
        assert made.status_code == 201, made.text
        mail = "mailto://127.0.0.1:9?from=a@example.com&to=b@example.com"
        base = "/v1/companies/CRONUS/notification-channels"
        http.post(base, json={"name": "people", "url": mail}, headers=admin)
        marked = http.post(f"{base}/people:personalEmail", headers=admin)
        assert marked.status_code == 200, marked.text
    assert app.store.get_user_contact("zed") == ("zed@example.com", False)
    assert app.store.email_recipients() == {"alice": "alice@example.com"}
    assert app.notification_setup.email_channel("CRONUS") == "people"
