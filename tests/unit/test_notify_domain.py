"""The notification domain: recipients, masking, planning, back-off. (The docs' examples run
in tests/integration/test_doc_snippets.py.)"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from longops import EnqueueRequest, FrozenClock, Longops
from longops.domain.errors import ValidationError
from longops.domain.notify import (
    Event,
    Rule,
    backoff,
    idem_key,
    mask_url,
    parse_recipient,
    plan,
)
from longops.domain.operation import Operation


@pytest.fixture
def op(tmp_path: Path) -> Operation:
    app = Longops(f"sqlite:///{tmp_path / 'x.db'}", clock=FrozenClock())
    app.migrate()
    app.task(name="t")(lambda: None)
    found = app.service.enqueue(EnqueueRequest(task="t", on_hold=True))
    app.close()
    return found


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            "mailtos://bob:hunter2@smtp.example.com:587?to=x@y.z",
            "mailtos://bob:****@smtp.example.com:587/****",
        ),
        ("slack://T000/B000/XXXXXXXX", "slack://t000/****"),
        ("json://127.0.0.1:8080", "json://127.0.0.1:8080"),
        ("ntfy://user:pw@ntfy.sh/topic", "ntfy://user:****@ntfy.sh/****"),
    ],
)
def test_mask_hides_password_path_and_query(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_recipients_are_parsed_or_refused_by_name() -> None:
    assert parse_recipient(" channel:ops ") == "channel:ops"
    assert parse_recipient("owner_or_admins") == "owner_or_admins"
    for bad in ("everyone", "channel:", "user:-x", ""):
        with pytest.raises(ValidationError) as caught:
            parse_recipient(bad)
        assert caught.value.field == "to"


def test_idempotency_keys_are_stable_per_notification_and_recipient() -> None:
    op = uuid.uuid4()
    assert idem_key(1, op, "channel:a") == idem_key(1, op, "channel:a")
    assert (
        len(
            {
                idem_key(1, op, "channel:a"),
                idem_key(2, op, "channel:a"),
                idem_key(1, op, "channel:b"),
            }
        )
        == 3
    )


def test_backoff_doubles_up_to_a_cap() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3)] == [10, 20, 40]
    assert backoff(30) == timedelta(hours=1)


def test_plan_reproduces_business_centrals_default(op: Operation) -> None:
    default = Rule("A", "default", Event.FAILED, ("owner_or_admins",))
    # No user: the admins' inboxes.
    assert [p.recipient for p in plan(Event.FAILED, op, [default], ["ann", "bo"])] == [
        "inbox:ann",
        "inbox:bo",
    ]
    # A user: their own inbox already has it (the inbox's trigger); nothing more.
    assert plan(Event.FAILED, replace(op, user="carl"), [default], ["ann"]) == []
    # Another event: the default rule does not listen.
    assert plan(Event.SUCCEEDED, op, [default], ["ann"]) == []


def test_plan_filters_dedupes_and_keeps_the_inbox_to_endings(op: Operation) -> None:
    rules = [
        Rule("A", "a", Event.STALLED, ("channel:ops", "admins")),
        Rule("A", "b", Event.STALLED, ("channel:ops",), task="t"),
        Rule("A", "c", Event.STALLED, ("channel:other",), task="not-t"),
        Rule("A", "d", Event.STALLED, ("channel:off",), enabled=False),
    ]
    planned = plan(Event.STALLED, op, rules, ["ann"])
    assert [(p.rule_name, p.recipient) for p in planned] == [("a", "channel:ops")]


def test_people_who_chose_email_get_it_beside_the_inbox_unless_muted(op: Operation) -> None:
    op = replace(op, company="A", user="bo")
    rules = [Rule("A", "default", Event.FAILED, ("owner_or_admins",))]
    admins_rule = [Rule("A", "admins", Event.FAILED, ("admins", "owner"))]
    assert [p.recipient for p in plan(Event.FAILED, op, rules, ["ann"], emails={"bo"})] == [
        "email:bo"  # the owner's inbox comes from the inbox's own trigger
    ]
    planned = plan(Event.FAILED, op, admins_rule, ["ann"], emails={"ann"})
    assert [p.recipient for p in planned] == ["email:ann", "inbox:ann"]
    muted = plan(Event.FAILED, op, admins_rule, ["ann"], emails={"ann"}, muted={("ann", "admins")})
    assert muted == []


def test_secret_box_derives_its_key_rotates_and_refuses_short_secrets() -> None:
    from longops.domain.errors import ConfigurationError
    from longops.notify.secrets import SecretBox

    old, new = SecretBox.generate_key(), SecretBox.generate_key()
    # A password of characters URL-safe base64 never uses, so finding it in the token can
    # only mean it leaked (two letters like "pw" turn up in random tokens now and then).
    url = "json://u:p%w!d@h/x"
    token = SecretBox(old).encrypt(url)
    assert "p%w!d" not in token
    assert SecretBox(new, [old]).decrypt(token) == url
    # The secret is taken whole, as the cookies take it: a comma is part of it.
    phrase = "a key for the session cookies, long enough"
    assert SecretBox(phrase).decrypt(SecretBox(phrase).encrypt("x")) == "x"
    with pytest.raises(ConfigurationError):
        SecretBox(new).decrypt(token)
    with pytest.raises(ConfigurationError, match="at least 32 characters") as short:
        SecretBox("tooshort")
    assert "tooshort" not in str(short.value)
