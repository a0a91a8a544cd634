"""The authorization matrix, generated from the permission table and run through real core.

For every action of ``longops.domain.security.PERMISSIONS``, every permission set, a target
in the actor's own or another company, and (for operations and tokens) the actor's own or
another user's target, the expected outcome is read from the table and the real core
method is called on a real database of each dialect:

- *allowed*: the call succeeds (and a read returns the target);
- *denied*: ``PermissionDenied``;
- *hidden*: exactly what a missing target gives (``NotFound``, ``company: must be an
  existing company``, or a read that does not return it).

The expectations come from a snapshot of the table taken when this module is imported, so
``test_the_matrix_notices_a_flipped_cell`` can change the table core reads and show that
the matrix fails.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from longops import EnqueueRequest, FrozenClock, Longops, NotFound, ValidationError
from longops.domain.errors import PermissionDenied
from longops.domain.operation import Operation
from longops.domain.security import (
    PERMISSIONS,
    Actor,
    PermissionSet,
    Reach,
    Rule,
    Scope,
)
from longops.store.base import OperationQuery, open_store
from longops.testing import Runner

OWN_COMPANY, OTHER_COMPANY = "A", "B"
OTHER_USER = "other"
USERS = {
    PermissionSet.VIEW: "u-view",
    PermissionSet.USER: "u-user",
    PermissionSet.ADMIN: "u-admin",
    PermissionSet.SUPER: "u-super",
}


@dataclass(frozen=True)
class Case:
    action: str
    permission_set: PermissionSet
    other_company: bool = False
    other_owner: bool = False

    @property
    def id(self) -> str:
        where = "other-company" if self.other_company else "own-company"
        whose = "others" if self.other_owner else "own"
        return f"{self.action}-{self.permission_set.value}-{where}-{whose}"


def cases(table: Mapping[str, Rule]) -> list[Case]:
    out = []
    for action, rule in table.items():
        companies = [False, True] if rule.scope in (Scope.OPERATION, Scope.COMPANY) else [False]
        owners = [False, True] if rule.scope in (Scope.OPERATION, Scope.SELF) else [False]
        for s, other_company, other_owner in itertools.product(PermissionSet, companies, owners):
            out.append(Case(action, s, other_company, other_owner))
    return out


def expected(case: Case, table: Mapping[str, Rule]) -> str:
    """What the table says, read cell by cell."""
    rule = table[case.action]
    cell = rule.cells[case.permission_set]
    if case.permission_set is not PermissionSet.SUPER and case.other_company:
        return "hidden"  # the actor holds no set in the other company
    if cell is Reach.ALL or (cell is Reach.OWN and not case.other_owner):
        return "allowed"
    return "denied"


SNAPSHOT = {action: Rule(r.scope, dict(r.cells), r.what) for action, r in PERMISSIONS.items()}
CASES = cases(SNAPSHOT)
EXPECTED = {case: expected(case, SNAPSHOT) for case in CASES}


# -- the world the matrix runs in ---------------------------------------------------------------


@dataclass
class World:
    app: Longops
    actors: dict[PermissionSet, Actor]
    counter: Iterator[int] = field(default_factory=itertools.count)

    def name(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter)}"

    def op(self, company: str, owner: str, *, on_hold: bool = True) -> Operation:
        return self.app.service.enqueue(
            EnqueueRequest(task="t", company=company, user=owner, on_hold=on_hold)
        )


def _world(url: str) -> World:
    app = Longops(url, clock=FrozenClock())
    app.task(name="t")(lambda: None)
    for company in (OWN_COMPANY, OTHER_COMPANY):
        app.add_company(company)
        app.set_category("CAT", company=company)  # also an audit row in each company
        app.service.enqueue(EnqueueRequest(task="t", company=company, on_hold=True))
        app.service.enqueue(EnqueueRequest(task="t", company=company))  # a log entry each
    Runner(app).run_until_idle()
    security = app.security
    for s, name in USERS.items():
        if s is PermissionSet.SUPER:
            security.add_user(name, is_super=True)
        else:
            security.add_user(name, grants=[(OWN_COMPANY, s)])
    security.add_user(
        OTHER_USER,
        grants=[(OWN_COMPANY, PermissionSet.USER), (OTHER_COMPANY, PermissionSet.USER)],
    )
    actors = {s: security.actor_for(name) for s, name in USERS.items()}
    return World(app, actors)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('matrix') / 'matrix.db'}"
        store = open_store(url)
        store.migrate()
        store.close()
        w = _world(url)
        yield w
        w.app.close()
        return
    databases = request.getfixturevalue("pg_databases")
    name = databases.take()
    w = _world(databases.url(name))
    yield w
    w.app.close()
    databases.release(name)


# -- running one case -----------------------------------------------------------------------------


def outcome(call: Callable[[], Any]) -> str:
    """allowed / denied / hidden, from what the real call did."""
    try:
        seen = call()
    except PermissionDenied:
        return "denied"
    except NotFound:
        return "hidden"
    except ValidationError as exc:
        if exc.field == "company" and exc.rule == "must be an existing company":
            return "hidden"
        raise
    return "hidden" if seen is False else "allowed"


Driver = Callable[[World, Actor, str, str], Any]
DRIVERS: dict[str, Driver] = {}


def driver(action: str) -> Callable[[Driver], Driver]:
    def register(fn: Driver) -> Driver:
        DRIVERS[action] = fn
        return fn

    return register


@driver("get_operation")
def _get(w: World, a: Actor, company: str, owner: str) -> Any:
    return w.app.as_actor(a).service.get(w.op(company, owner).id)


@driver("list_attempts")
def _attempts(w: World, a: Actor, company: str, owner: str) -> Any:
    return w.app.as_actor(a).service.attempts(w.op(company, owner).id)


@driver("list_events")
def _events(w: World, a: Actor, company: str, owner: str) -> Any:
    return w.app.as_actor(a).service.events(w.op(company, owner).id)


@driver("drain_session")
def _drain(w: World, a: Actor, company: str, owner: str) -> Any:
    from longops.testing import active_session

    session = active_session(w.app.clock.now())
    w.app.store.register_session(session)
    return w.app.as_actor(a).sessions.drain_session(session.id)


@driver("force_cancel")
def _force_cancel(w: World, a: Actor, company: str, owner: str) -> Any:
    return w.app.as_actor(a).service.cancel(w.op(company, owner, on_hold=False).id, force=True)


def _operation_action(method: str, *, on_hold: bool) -> Driver:
    def run(w: World, a: Actor, company: str, owner: str) -> Any:
        op = w.op(company, owner, on_hold=on_hold)
        return getattr(w.app.as_actor(a).service, method)(op.id)

    return run


for _method, _on_hold in [
    ("set_ready", True),
    ("restart", True),
    ("run_now", False),
    ("hold", False),
    ("cancel", False),
    ("delete", True),
]:
    driver(_method)(_operation_action(_method, on_hold=_on_hold))


@driver("list_operations")
def _list(w: World, a: Actor, company: str, owner: str) -> bool:
    op = w.op(company, owner)
    query = OperationQuery(company=company, after_entry_no=op.entry_no - 1, limit=10)
    return op.id in [o.id for o in w.app.as_actor(a).service.list_operations(query)]


@driver("count_operations")
def _count(w: World, a: Actor, company: str, owner: str) -> bool:
    return sum(w.app.as_actor(a).service.count_operations(company).values()) > 0


@driver("list_categories")
def _categories(w: World, a: Actor, company: str, owner: str) -> bool:
    return "CAT" in [c.code for c in w.app.as_actor(a).companies.list_categories(company)]


@driver("list_companies")
def _companies(w: World, a: Actor, company: str, owner: str) -> bool:
    return company in [c.name for c in w.app.as_actor(a).companies.list_companies()]


@driver("list_audit")
def _audit(w: World, a: Actor, company: str, owner: str) -> bool:
    return len(w.app.as_actor(a).security.list_audit(company=company)) > 0


@driver("enqueue")
def _enqueue(w: World, a: Actor, company: str, owner: str) -> Any:
    return w.app.as_actor(a).service.enqueue(EnqueueRequest(task="t", company=company))


@driver("act_on_behalf")
def _on_behalf(w: World, a: Actor, company: str, owner: str) -> Any:
    request = EnqueueRequest(task="t", company=OWN_COMPANY, user=OTHER_USER)
    return w.app.as_actor(a).service.enqueue(request)


@driver("remove_failed")
def _remove_failed(w: World, a: Actor, company: str, owner: str) -> Any:
    return w.app.as_actor(a).service.remove_failed(company)


@driver("set_category")
def _set_category(w: World, a: Actor, company: str, owner: str) -> Any:
    return w.app.as_actor(a).companies.set_category(company, w.name("C"))


@driver("add_company")
def _add_company(w: World, a: Actor, company: str, owner: str) -> Any:
    return w.app.as_actor(a).companies.add_company(w.name("N"))


@driver("disable_company")
def _disable_company(w: World, a: Actor, company: str, owner: str) -> Any:
    name = w.app.add_company(w.name("D")).name
    return w.app.as_actor(a).companies.disable_company(name)


@driver("pause_queue")
def _pause(w: World, a: Actor, company: str, owner: str) -> Any:
    queue = w.name("q")
    w.app.as_actor(a).companies.pause_queue(queue)
    return w.app.as_actor(a).companies.resume_queue(queue)


@driver("list_paused_queues")
def _paused(w: World, a: Actor, company: str, owner: str) -> Any:
    return w.app.as_actor(a).companies.paused_queues()


@driver("list_sessions")
def _sessions(w: World, a: Actor, company: str, owner: str) -> Any:
    return w.app.as_actor(a).sessions.list_sessions(), w.app.as_actor(a).sessions.session_events()


@driver("run_worker")
def _worker(w: World, a: Actor, company: str, owner: str) -> Any:
    return w.app.as_actor(a).sessions.check_worker([OWN_COMPANY])


@driver("maintain_schema")
def _schema(w: World, a: Actor, company: str, owner: str) -> Any:
    return w.app.as_actor(a).schema.migration_status()


@driver("set_maintenance")
def _set_maintenance(w: World, a: Actor, company: str, owner: str) -> Any:
    w.app.as_actor(a).maintenance.start(reason="matrix", drain_timeout=0)
    return w.app.as_actor(a).maintenance.stop()


@driver("read_maintenance")
def _read_maintenance(w: World, a: Actor, company: str, owner: str) -> Any:
    return w.app.as_actor(a).maintenance.status()


@driver("list_users")
def _users(w: World, a: Actor, company: str, owner: str) -> Any:
    return w.app.as_actor(a).security.list_users()


@driver("add_user")
def _add_user(w: World, a: Actor, company: str, owner: str) -> Any:
    return w.app.as_actor(a).security.add_user(w.name("n"))


def _fresh_user(w: World) -> str:
    return w.app.security.add_user(w.name("f")).name


@driver("disable_user")
def _disable_user(w: World, a: Actor, company: str, owner: str) -> Any:
    name = _fresh_user(w)
    w.app.as_actor(a).security.disable_user(name)
    return w.app.as_actor(a).security.enable_user(name)


@driver("delete_user")
def _delete_user(w: World, a: Actor, company: str, owner: str) -> Any:
    return w.app.as_actor(a).security.delete_user(_fresh_user(w))


@driver("grant_permission")
def _grant(w: World, a: Actor, company: str, owner: str) -> Any:
    name = _fresh_user(w)
    w.app.as_actor(a).security.grant(name, PermissionSet.VIEW, OWN_COMPANY)
    return w.app.as_actor(a).security.revoke(name, PermissionSet.VIEW, OWN_COMPANY)


@driver("export_user")
def _export(w: World, a: Actor, company: str, owner: str) -> Any:
    return w.app.as_actor(a).security.export_user(OTHER_USER)


@driver("forget_user")
def _forget(w: World, a: Actor, company: str, owner: str) -> Any:
    return w.app.as_actor(a).security.forget_user(_fresh_user(w))


@driver("create_token")
def _create_token(w: World, a: Actor, company: str, owner: str) -> Any:
    return w.app.as_actor(a).security.create_token(owner, name=w.name("k"))


@driver("revoke_token")
def _revoke_token(w: World, a: Actor, company: str, owner: str) -> Any:
    token, _ = w.app.security.create_token(owner, name=w.name("r"))
    return w.app.as_actor(a).security.revoke_token(owner, token.name)


@driver("list_tokens")
def _list_tokens(w: World, a: Actor, company: str, owner: str) -> Any:
    return w.app.as_actor(a).security.list_tokens(owner)


@driver("user_contact")
def _user_contact(w: World, a: Actor, company: str, owner: str) -> Any:
    return w.app.as_actor(a).security.set_contact(owner, email=f"{owner}@example.com")


@driver("list_web_sessions")
def _list_web_sessions(w: World, a: Actor, company: str, owner: str) -> Any:
    return w.app.as_actor(a).security.list_web_sessions(owner)


@driver("end_web_sessions")
def _end_web_sessions(w: World, a: Actor, company: str, owner: str) -> Any:
    w.app.security.start_session(owner)
    return w.app.as_actor(a).security.end_web_sessions(owner)


@driver("update_operation")
def _update(w: World, a: Actor, company: str, owner: str) -> Any:
    return w.app.as_actor(a).service.update_operation(w.op(company, owner).id, description="edited")


@driver("list_log_entries")
def _log_entries(w: World, a: Actor, company: str, owner: str) -> bool:
    return len(w.app.as_actor(a).read_models.list_attempts(company)) > 0


@driver("delete_log_entries")
def _delete_log_entries(w: World, a: Actor, company: str, owner: str) -> Any:
    # Ten years: the world keeps its log entries for the other cases.
    return w.app.as_actor(a).service.delete_log_entries(company, older_than_days=3650)


def _notified(w: World, company: str, user: str) -> Operation:
    """One of ``user``'s operations in ``company`` ends: a notification for ``user``."""
    return w.app.service.cancel(w.op(company, user).id)


@driver("list_notifications")
def _notifications(w: World, a: Actor, company: str, owner: str) -> bool:
    assert a.user is not None
    op = _notified(w, company, a.user)
    return op.id in {n.operation_id for n in w.app.as_actor(a).inbox.notifications(company)}


@driver("mark_notifications_read")
def _mark_read(w: World, a: Actor, company: str, owner: str) -> bool:
    assert a.user is not None
    _notified(w, company, a.user)
    return w.app.as_actor(a).inbox.mark_notifications_read(company, None) >= 1


@driver("list_notification_setup")
def _notification_setup(w: World, a: Actor, company: str, owner: str) -> bool:
    # Every company starts with Business Central's default rule.
    return "default" in [r.name for r in w.app.as_actor(a).notification_setup.list_rules(company)]


@driver("set_notification_preferences")
def _mute(w: World, a: Actor, company: str, owner: str) -> Any:
    setup = w.app.as_actor(a).notification_setup
    setup.mute_rule(company, "default")
    return setup.mute_rule(company, "default", muted=False)


@driver("set_notification_setup")
def _set_notification_setup(w: World, a: Actor, company: str, owner: str) -> Any:
    setup = w.app.as_actor(a).notification_setup
    return setup.add_rule(company, w.name("rule"), on="failed", to=["admins"])


def run_case(w: World, case: Case) -> str:
    actor = w.actors[case.permission_set]
    assert actor.user is not None
    company = OTHER_COMPANY if case.other_company else OWN_COMPANY
    owner = OTHER_USER if case.other_owner else actor.user
    return outcome(lambda: DRIVERS[case.action](w, actor, company, owner))


# -- the tests ----------------------------------------------------------------------------------


def test_every_action_of_the_table_has_a_driver() -> None:
    assert set(DRIVERS) == set(PERMISSIONS)


def test_the_matrix_has_every_combination() -> None:
    operation_actions = [a for a, r in SNAPSHOT.items() if r.scope is Scope.OPERATION]
    assert len([c for c in CASES if c.action == "hold"]) == 4 * 2 * 2
    assert len(CASES) > 16 * len(operation_actions)
    assert {EXPECTED[c] for c in CASES} == {"allowed", "denied", "hidden"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_authorization_matrix(world: World, case: Case) -> None:
    assert run_case(world, case) == EXPECTED[case]


@pytest.mark.parametrize(
    ("action", "flipped_set", "to"),
    [("hold", PermissionSet.USER, Reach.ALL), ("list_audit", PermissionSet.ADMIN, Reach.NONE)],
)
def test_the_matrix_notices_a_flipped_cell(
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    action: str,
    flipped_set: PermissionSet,
    to: Reach,
) -> None:
    rule = PERMISSIONS[action]
    monkeypatch.setitem(
        PERMISSIONS,  # type: ignore[arg-type]
        action,
        Rule(rule.scope, {**rule.cells, flipped_set: to}, rule.what),
    )
    affected = [c for c in CASES if c.action == action]
    wrong = {c.id for c in affected if run_case(world, c) != EXPECTED[c]}
    flipped_expectations = {c.id for c in affected if expected(c, PERMISSIONS) != EXPECTED[c]}
    assert wrong
    assert wrong == flipped_expectations


def test_hidden_looks_exactly_like_missing(world: World) -> None:
    viewer = world.actors[PermissionSet.ADMIN]
    theirs = world.op(OTHER_COMPANY, OTHER_USER)
    with pytest.raises(NotFound) as hidden:
        world.app.as_actor(viewer).service.hold(theirs.id)
    world.app.service.delete(theirs.id)
    with pytest.raises(NotFound) as missing:
        world.app.as_actor(viewer).service.hold(theirs.id)
    assert str(hidden.value) == str(missing.value)
    with pytest.raises(NotFound) as by_entry:
        world.app.as_actor(viewer).service.get(world.op(OTHER_COMPANY, OTHER_USER).entry_no)
    assert "not found" in str(by_entry.value)
    with pytest.raises(ValidationError) as hidden_company:
        world.app.as_actor(viewer).service.enqueue(EnqueueRequest(task="t", company=OTHER_COMPANY))
    with pytest.raises(ValidationError) as missing_company:
        world.app.as_actor(viewer).service.enqueue(EnqueueRequest(task="t", company="NOWHERE"))
    assert str(hidden_company.value).replace(OTHER_COMPANY, "X") == str(
        missing_company.value
    ).replace("NOWHERE", "X")


def test_refusals_say_who_what_and_why(world: World) -> None:
    user = world.actors[PermissionSet.USER]
    theirs = world.op(OWN_COMPANY, OTHER_USER, on_hold=False)
    with pytest.raises(PermissionDenied) as refused:
        world.app.as_actor(user).service.hold(theirs.id)
    message = str(refused.value)
    assert message.startswith(f"u-user may not set on hold (operation {theirs.entry_no}): ")
    assert "with JOBQUEUE-USER only one's own may be reached" in message
    assert "needs JOBQUEUE-ADMIN in A, or SUPER" in message
    assert world.app.service.get(theirs.id).status.value == "ready"  # nothing changed
