"""Users, passwords, API tokens, the audit log and personal data, through core on both
databases: secrets are never stored in clear, refused tokens stay refused, operations run on
behalf of whoever last set them ready, and inactive users' operations are flagged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from longops import EnqueueRequest, FrozenClock, Longops, NotFound, RunContext, ValidationError
from longops.domain.classification import COLUMNS
from longops.domain.errors import PermissionDenied
from longops.domain.security import FrontEnd, PermissionSet
from longops.domain.status import Status
from longops.store.base import OperationQuery
from longops.testing import Runner

PASSWORD = "correct horse battery staple"  # noqa: S105 - a test password
USER, ADMIN, VIEW = PermissionSet.USER, PermissionSet.ADMIN, PermissionSet.VIEW


@pytest.fixture
def app(db_url: str, clock: FrozenClock) -> Iterator[Longops]:
    application = Longops(db_url, clock=clock)
    seen: list[str | None] = []
    application.seen_users = seen  # type: ignore[attr-defined]

    @application.task(name="whoami")
    def whoami(ctx: RunContext) -> str | None:
        seen.append(ctx.user)
        return ctx.user

    @application.task(name="close_year", requires="JOBQUEUE-ADMIN")
    def close_year() -> None: ...

    @application.task(name="ok")
    def ok() -> None: ...

    application.add_company("CRONUS")
    yield application
    application.close()


def dump(app: Longops) -> str:
    """Every row of every longops table, as text."""
    tables = sorted({column.split(".")[0] for column in COLUMNS})
    rows = []
    with app.store._read() as cur:  # type: ignore[attr-defined]
        for table in tables:
            cur.execute(f"SELECT * FROM {table}")
            rows.extend(json.dumps(dict(r), default=str) for r in cur.fetchall())
    return "\n".join(rows)


# -- secrets at rest -----------------------------------------------------------------------------


def test_no_password_or_token_is_stored_in_clear(app: Longops) -> None:
    security = app.security
    security.add_user("alice", password=PASSWORD, grants=[("CRONUS", USER)])
    token, text = security.create_token("alice", name="ci")
    stored = dump(app)
    assert "alice" in stored, "the dump reads the users table"
    assert PASSWORD not in stored
    assert text not in stored
    # lo_<id>_<secret>: the secret is URL-safe base64 and may hold "_" itself.
    secret = text.split("_", 2)[2]
    assert len(secret) >= 40, text
    assert secret not in stored, "not even the token's secret part"
    assert "$argon2id$" in stored
    assert str(token.id).replace("-", "") in stored.replace("-", "")
    assert text.startswith("lo_")
    assert security.authenticate_password("alice", PASSWORD).user == "alice"
    with pytest.raises(PermissionDenied, match="wrong user name or password"):
        security.authenticate_password("alice", PASSWORD + "!")
    with pytest.raises(PermissionDenied, match="wrong user name or password"):
        security.authenticate_password("nobody", PASSWORD)


def test_tokens_authenticate_until_revoked_expired_or_the_user_is_disabled(
    app: Longops, clock: FrozenClock
) -> None:
    security = app.security
    security.add_user("alice", grants=[("CRONUS", USER)])
    _, text = security.create_token("alice", name="ci", expires=timedelta(hours=1))
    actor = security.authenticate_token(text)
    assert (actor.user, actor.front_end, actor.sets_in("CRONUS")) == (
        "alice", FrontEnd.API, frozenset({USER})
    )  # fmt: skip
    [listed] = security.list_tokens("alice")
    assert listed.last_used_at == clock.now()

    refused = "unknown, revoked or expired"
    security.disable_user("alice")
    with pytest.raises(PermissionDenied, match=refused):
        security.authenticate_token(text)
    security.enable_user("alice")
    assert security.authenticate_token(text).user == "alice"
    clock.advance(seconds=3601)
    with pytest.raises(PermissionDenied, match=refused):
        security.authenticate_token(text)

    _, second = security.create_token("alice", name="nightly", expires=None)
    assert security.authenticate_token(second).user == "alice"
    security.revoke_token("alice", "nightly")
    with pytest.raises(PermissionDenied, match=refused):
        security.authenticate_token(second)
    for bad in ("", "lo_nothing", second[:-1] + ("A" if second[-1] != "A" else "B")):
        with pytest.raises(PermissionDenied, match=refused):
            security.authenticate_token(bad)
    _, third = security.create_token("alice", name="third")
    security.delete_user("alice")
    with pytest.raises(PermissionDenied, match=refused):
        security.authenticate_token(third)


def test_a_user_manages_only_their_own_tokens(app: Longops) -> None:
    app.security.add_user("alice", grants=[("CRONUS", VIEW)])
    app.security.add_user("bob", grants=[("CRONUS", USER)])
    alice = app.as_user("alice")
    token, text = alice.security.create_token("alice", name="laptop")
    assert app.authenticate(text).actor.user == "alice"
    with pytest.raises(PermissionDenied):
        alice.security.create_token("bob")
    with pytest.raises(PermissionDenied):
        alice.security.revoke_token("bob", "x")
    assert [t.name for t in alice.security.list_tokens("alice")] == ["laptop"]
    with pytest.raises(ValidationError, match="already has a token of that name"):
        alice.security.create_token("alice", name="laptop")
    assert alice.security.revoke_token("alice", str(token.id)).revoked_at is not None
    with pytest.raises(ValidationError, match="already revoked"):
        alice.security.revoke_token("alice", "laptop")
    with pytest.raises(NotFound):
        alice.security.revoke_token("alice", "desktop")


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.add_user("bad name!"), "name"),
        (lambda s: s.add_user("forgotten-x"), "name"),
        (lambda s: s.add_user("u", password="short"), "password"),  # noqa: S106
        (lambda s: s.add_user("u", grants=[("NOWHERE", USER)]), "company"),
        (lambda s: s.add_user("u", grants=[("CRONUS", "JOBQUEUE-GOD")]), "permission_set"),
        (lambda s: s.add_user("u", grants=[("CRONUS", "SUPER")]), "permission_set"),
        (lambda s: s.create_token("known", expires=timedelta(seconds=-1)), "expires"),
        (lambda s: s.create_token("known", expires=timedelta(days=4000)), "expires"),
        (lambda s: s.create_token("known", name="no spaces"), "name"),
        (lambda s: s.grant("known", USER), "company"),
        (lambda s: s.grant("known", "SUPER", "CRONUS"), "company"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(
    app: Longops, call: object, field: str
) -> None:
    app.security.add_user("known")
    before = dump(app)
    with pytest.raises(ValidationError) as raised:
        call(app.security)  # type: ignore[operator]
    assert raised.value.field == field
    assert dump(app) == before


# -- running on behalf of a user ----------------------------------------------------------------


def test_an_operation_runs_as_the_user_who_last_set_it_ready(app: Longops) -> None:
    app.security.add_user("alice", grants=[("CRONUS", USER)])
    app.security.add_user("bob", grants=[("CRONUS", ADMIN)])
    alice, bob = app.as_user("alice"), app.as_user("bob")
    handle = alice.enqueue("whoami", company="CRONUS", on_hold=True)
    assert handle.operation.user == "alice"
    bob.service.set_ready(handle.id)
    Runner(app).run_until_idle()
    done = handle.refresh()
    assert (done.status, done.result, done.user) == (Status.FINISHED, "bob", "bob")
    assert [a.user for a in app.service.attempts(handle.id)] == ["bob"]
    assert app.seen_users == ["bob"]  # type: ignore[attr-defined]
    # It is bob's operation now: alice (JOBQUEUE-USER) may act on her own only.
    with pytest.raises(PermissionDenied, match="own"):
        alice.service.restart(handle.id)
    # The nameless local actor keeps the user it runs as.
    assert app.service.restart(handle.id).user == "bob"


def test_only_super_names_another_user(app: Longops) -> None:
    app.security.add_user("alice", grants=[("CRONUS", ADMIN)])
    alice = app.as_user("alice")
    with pytest.raises(PermissionDenied, match="as another user"):
        alice.service.enqueue(EnqueueRequest(task="whoami", company="CRONUS", user="carol"))
    made = app.service.enqueue(EnqueueRequest(task="whoami", company="CRONUS", user="carol"))
    assert made.user == "carol"
    assert made.user_inactive is True  # carol is no user at all
    with pytest.raises(PermissionDenied, match="as another user"):
        alice.service.cancel(made.id, by="dave")


def test_a_task_may_require_a_permission_set(app: Longops) -> None:
    app.security.add_user("alice", grants=[("CRONUS", USER)])
    app.security.add_user("bob", grants=[("CRONUS", ADMIN)])
    alice, bob = app.as_user("alice"), app.as_user("bob")
    with pytest.raises(PermissionDenied, match="the task requires JOBQUEUE-ADMIN"):
        alice.enqueue("close_year", company="CRONUS")
    made = bob.enqueue("close_year", company="CRONUS", on_hold=True).operation
    assert made.required_permission is PermissionSet.ADMIN
    # Even a front end without the task's code enforces it: the requirement is on the row.
    bare = Longops(app.database_url, clock=app.clock)
    try:
        alice_bare = bare.as_user("alice")
        bob_bare = bare.as_user("bob")
        with pytest.raises(PermissionDenied):
            alice_bare.service.set_ready(made.id)
        assert bob_bare.service.set_ready(made.id).status is Status.READY
    finally:
        bare.close()


def test_operations_of_inactive_users_are_flagged(app: Longops) -> None:
    app.security.add_user("alice", grants=[("CRONUS", USER)])
    handle = app.as_user("alice").enqueue("whoami", company="CRONUS")
    assert handle.operation.user_inactive is False
    app.security.disable_user("alice")
    assert app.service.get(handle.id).user_inactive is True
    assert handle.refresh().to_json()["user_inactive"] is True
    app.security.enable_user("alice")
    [listed] = app.service.list_operations(OperationQuery(company="CRONUS"))
    assert listed.user_inactive is False
    app.security.delete_user("alice")
    [listed] = app.service.list_operations(OperationQuery(company="CRONUS"))
    assert listed.user_inactive is True
    with pytest.raises(NotFound):
        app.as_user("alice")


def test_a_disabled_user_cannot_act(app: Longops) -> None:
    app.security.add_user("alice", grants=[("CRONUS", USER)])
    app.security.disable_user("alice")
    with pytest.raises(PermissionDenied, match="the user is disabled"):
        app.as_user("alice")


# -- audit --------------------------------------------------------------------------------------


def test_operator_actions_are_audited_with_who_and_from_where(app: Longops) -> None:
    app.security.add_user("alice", grants=[("CRONUS", ADMIN)])
    alice = app.as_user("alice", FrontEnd.CLI)
    op = alice.enqueue("whoami", company="CRONUS").operation
    alice.service.hold(op.id)
    with pytest.raises(Exception, match="cannot hold"):
        alice.service.hold(op.id)  # refused: writes no audit row
    alice.service.set_ready(op.id)
    alice.service.run_now(op.id)
    alice.service.cancel(op.id, reason="not today")
    alice.service.restart(op.id)
    alice.service.hold(op.id)
    alice.service.delete(op.id)
    alice.companies.set_category("CRONUS", "POSTING", max_concurrent=2)
    alice.service.remove_failed("CRONUS")
    _, _ = alice.security.create_token("alice", name="ci")
    alice.security.revoke_token("alice", "ci")
    app.security.grant("alice", VIEW, "CRONUS")
    entries = list(reversed(app.security.list_audit(limit=1000)))
    actions = [e.action for e in entries]
    assert actions[:1] == ["add_company"]
    assert actions[1:] == [
        "add_user", "grant_permission", "hold", "set_ready", "run_now", "cancel", "restart",
        "hold", "delete",
        "set_category", "remove_failed", "create_token", "revoke_token", "grant_permission",
    ]  # fmt: skip
    mine = [e for e in entries if e.actor == "alice"]
    assert {e.front_end for e in mine} == {FrontEnd.CLI}
    assert {e.company for e in mine if e.action in ("hold", "delete")} == {"CRONUS"}
    assert all(e.target == str(op.id) for e in mine if e.action in ("hold", "cancel"))
    assert [e.actor for e in entries if e.action == "grant_permission"] == [None, None]
    assert entries[-1].details == {"permission_set": "JOBQUEUE-VIEW"}
    # alice (ADMIN in CRONUS) reads CRONUS's entries, not the global ones (tokens, users).
    seen = {e.action for e in alice.security.list_audit(limit=1000)}
    assert "hold" in seen
    assert "create_token" not in seen


# -- personal data ------------------------------------------------------------------------------


def test_export_and_forget_a_user(app: Longops) -> None:
    app.security.add_user("alice", password=PASSWORD, grants=[("CRONUS", USER)])
    alice = app.as_user("alice")
    handle = alice.enqueue("ok", company="CRONUS")
    Runner(app).run_until_idle()
    alice.security.create_token("alice", name="ci")
    dropped = alice.enqueue("ok", company="CRONUS", delay=3600)
    alice.service.cancel(dropped.id, reason="not needed")  # the timeline names who asked
    exported = app.security.export_user("alice")
    assert [(e["type"], e["data"]["by"]) for e in exported["events"]] == [
        ("status_changed", "alice")
    ]
    assert exported["user"]["name"] == "alice"
    assert exported["user"]["has_password"] is True
    assert [t["name"] for t in exported["tokens"]] == ["ci"]
    assert [o["id"] for o in exported["operations"]] == [str(handle.id), str(dropped.id)]
    assert [a["user"] for a in exported["attempts"]] == ["alice"]
    assert {e["action"] for e in exported["audit"]} >= {"add_user", "create_token"}
    text = json.dumps(exported)
    assert PASSWORD not in text
    assert "$argon2" not in text

    pseudonym = app.security.forget_user("alice")
    assert pseudonym.startswith("forgotten-")
    kept = app.service.get(handle.id)
    assert (kept.status, kept.user, kept.user_inactive) == (Status.FINISHED, pseudonym, True)
    assert [a.user for a in app.service.attempts(handle.id)] == [pseudonym]
    assert "alice" not in dump(app)
    with pytest.raises(NotFound):
        app.security.export_user("alice")
    with pytest.raises(NotFound):
        app.security.forget_user("alice")
    assert app.security.list_audit(limit=1)[0].action == "forget_user"


def test_views_of_different_actors_share_what_core_remembers(app: Longops) -> None:
    # A company changed through one actor's view is seen changed through every other view.
    app.security.add_user("alice", grants=[("CRONUS", USER)])
    alice = app.as_user("alice")
    assert alice.enqueue("ok", company="CRONUS").operation.company == "CRONUS"
    app.as_actor(app.actor).companies.disable_company("CRONUS")
    with pytest.raises(ValidationError, match="company: is disabled"):
        alice.enqueue("ok", company="CRONUS")
    app.add_company("CRONUS", time_zone="Europe/London")
    assert alice.enqueue("ok", company="CRONUS").operation.company == "CRONUS"
