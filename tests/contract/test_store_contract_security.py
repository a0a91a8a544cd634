"""Store contract, part 5: users, memberships, API tokens, the audit log, personal data,
company filters on reads, and the per-company limits of the claim.

Every test takes the ``store`` fixture and so runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest
from contract_support import add_company, build, claim, finish, get, insert, make_error, register

from longops.domain.clock import FrozenClock
from longops.domain.operation import Category, Company, Outcome
from longops.domain.security import FrontEnd, PermissionSet
from longops.domain.status import Status, allowed_from, target_of
from longops.domain.users import ApiToken, AuditEntry, User, UserState, token_hash
from longops.store.base import ActionParams, ClaimParams, OperationQuery, Store

VIEW, USER, ADMIN = PermissionSet.VIEW, PermissionSet.USER, PermissionSet.ADMIN


def user(clock: FrozenClock, name: str, *grants: tuple[str, PermissionSet], **kw: object) -> User:
    fields: dict[str, object] = {
        "name": name,
        "display_name": name.title(),
        "state": UserState.ACTIVE,
        "is_super": False,
        "created_at": clock.now(),
        "disabled_at": None,
        "has_password": False,
        "grants": tuple(sorted(grants)),
    }
    fields.update(kw)
    return User(**fields)  # type: ignore[arg-type]


def audit(clock: FrozenClock, action: str, target: str, company: str | None = None) -> AuditEntry:
    return AuditEntry(
        at=clock.now(),
        actor="root",
        front_end=FrontEnd.CLI,
        action=action,
        target=target,
        company=company,
        details={"n": 1},
    )


# -- users and memberships ---------------------------------------------------------------------


def test_users_round_trip_with_grants(store: Store, clock: FrozenClock) -> None:
    add_company(store, "acme")
    alice = user(clock, "alice", ("acme", VIEW), ("default", USER), ("default", ADMIN))
    assert store.insert_user(alice, "$argon2id$hash", audit=audit(clock, "add_user", "user:alice"))
    assert store.get_user("alice") == dataclasses.replace(alice, has_password=True)
    assert store.get_password_hash("alice") == "$argon2id$hash"
    assert store.insert_user(user(clock, "alice"), None) is False  # name taken: nothing written
    assert store.get_user("alice") == dataclasses.replace(alice, has_password=True)
    bob = user(clock, "bob", is_super=True)
    assert store.insert_user(bob, None)
    assert store.list_users() == [dataclasses.replace(alice, has_password=True), bob]
    assert store.get_user("nobody") is None
    assert store.get_password_hash("nobody") is None
    [entry] = store.list_audit(None, include_global=True)
    assert (entry.action, entry.target, entry.company, entry.details) == (
        "add_user", "user:alice", None, {"n": 1}
    )  # fmt: skip


def test_grant_revoke_state_super_and_delete(store: Store, clock: FrozenClock) -> None:
    store.insert_user(user(clock, "alice"), None)
    assert store.grant("alice", "default", VIEW, clock.now()) is True
    assert store.grant("alice", "default", VIEW, clock.now()) is False
    assert store.get_user("alice").grants == (("default", VIEW),)  # type: ignore[union-attr]
    assert store.revoke("alice", "default", VIEW) is True
    assert store.revoke("alice", "default", VIEW) is False
    at = clock.advance(seconds=5)
    assert store.set_user_state("alice", UserState.DISABLED, at)
    disabled = store.get_user("alice")
    assert disabled is not None
    assert (disabled.state, disabled.disabled_at, disabled.active) == (
        UserState.DISABLED,
        at,
        False,
    )
    assert store.set_user_state("alice", UserState.ACTIVE, at)
    assert store.get_user("alice").disabled_at is None  # type: ignore[union-attr]
    assert store.set_user_super("alice", True, at)
    assert store.get_user("alice").is_super is True  # type: ignore[union-attr]
    assert store.set_user_state("nobody", UserState.DISABLED, at) is False
    assert store.set_password_hash("alice", "new", at)
    assert store.get_password_hash("alice") == "new"
    store.grant("alice", "default", USER, at)
    assert store.insert_token(_token(clock, "alice"), "h")
    assert store.delete_user("alice") is True
    assert store.get_user("alice") is None
    assert store.list_tokens("alice") == []  # tokens and memberships go with the user
    assert store.delete_user("alice") is False


def test_active_users(store: Store, clock: FrozenClock) -> None:
    store.insert_user(user(clock, "alice"), None)
    store.insert_user(user(clock, "bob"), None)
    store.set_user_state("bob", UserState.DISABLED, clock.now())
    assert store.active_users({"alice", "bob", "ghost"}) == {"alice"}
    assert store.active_users(set()) == set()


# -- tokens ------------------------------------------------------------------------------------


def _token(clock: FrozenClock, owner: str, name: str = "ci", **kw: object) -> ApiToken:
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "user": owner,
        "name": name,
        "created_at": clock.now(),
        "expires_at": clock.now() + timedelta(days=1),
        "last_used_at": None,
        "revoked_at": None,
    }
    fields.update(kw)
    return ApiToken(**fields)  # type: ignore[arg-type]


def test_tokens_round_trip_touch_and_revoke(store: Store, clock: FrozenClock) -> None:
    store.insert_user(user(clock, "alice"), None)
    token = _token(clock, "alice")
    assert store.insert_token(token, token_hash("secret"))
    assert store.insert_token(_token(clock, "alice"), "other") is False  # same name, live
    assert store.get_token(token.id) == (token, token_hash("secret"), UserState.ACTIVE)
    assert store.get_token(uuid.uuid4()) is None
    first = clock.advance(seconds=1)
    store.touch_token(token.id, first, first - timedelta(minutes=1))
    store.touch_token(token.id, clock.advance(seconds=1), first - timedelta(minutes=1))
    found = store.get_token(token.id)
    assert found is not None
    assert found[0].last_used_at == first  # the second touch was within the interval
    later = clock.advance(seconds=120)
    store.touch_token(token.id, later, later - timedelta(minutes=1))
    assert store.list_tokens("alice")[0].last_used_at == later
    assert store.revoke_token(token.id, later) is True
    assert store.revoke_token(token.id, later) is False
    assert store.list_tokens("alice")[0].revoked_at == later
    # A revoked token's name may be used again.
    assert store.insert_token(_token(clock, "alice"), "again")
    store.set_user_state("alice", UserState.DISABLED, later)
    assert store.get_token(token.id)[2] is UserState.DISABLED  # type: ignore[index]


# -- audit -------------------------------------------------------------------------------------


def test_audit_is_written_with_the_action_and_only_when_it_applies(
    store: Store, clock: FrozenClock
) -> None:
    op = insert(store, clock)
    params = ActionParams(
        operation_id=op.id,
        company="default",
        allowed_from=allowed_from("hold"),
        status=target_of("hold"),
        at=clock.now(),
    )
    assert store.apply_action(params, audit=audit(clock, "hold", str(op.id), "default"))
    assert store.apply_action(params, audit=audit(clock, "hold", str(op.id), "default")) is None
    assert [e.action for e in store.list_audit(None, include_global=False)] == ["hold"]
    assert store.delete_operation(op.id, "default", audit=audit(clock, "delete", str(op.id)))
    assert not store.delete_operation(op.id, "default", audit=audit(clock, "delete", "x"))
    sid = register(store, clock.now())
    make_error(store, clock, sid, clock.now())
    removed = store.delete_failed(
        "default", clock.now(), audit=audit(clock, "remove_failed", "company default", "default")
    )
    assert removed == 1
    newest = store.list_audit(None, include_global=True)
    assert [e.action for e in newest] == ["remove_failed", "delete", "hold"]
    assert newest[0].details == {"n": 1, "removed": 1}
    assert newest[0].id is not None
    assert newest[0].id > newest[1].id  # type: ignore[operator]
    assert [e.action for e in store.list_audit(None, include_global=True, limit=1)] == [
        "remove_failed"
    ]
    before = store.list_audit(None, include_global=True, before_id=newest[0].id)
    assert [e.action for e in before] == ["delete", "hold"]


def test_audit_companies_filter(store: Store, clock: FrozenClock) -> None:
    add_company(store, "acme")
    store.record_audit(audit(clock, "a", "x", "acme"))
    store.record_audit(audit(clock, "d", "x", "default"))
    store.record_audit(audit(clock, "g", "x", None))
    store.upsert_category(
        Category("acme", "C"), audit=audit(clock, "set_category", "category C", "acme")
    )
    store.set_queue_paused("q", True, clock.now(), audit=audit(clock, "pause_queue", "queue q"))

    def actions(companies: frozenset[str] | None, include_global: bool) -> list[str]:
        return [e.action for e in store.list_audit(companies, include_global=include_global)]

    assert actions(None, True) == ["pause_queue", "set_category", "g", "d", "a"]
    assert actions(None, False) == ["set_category", "d", "a"]
    assert actions(frozenset({"acme"}), False) == ["set_category", "a"]
    assert actions(frozenset({"acme"}), True) == ["pause_queue", "set_category", "g", "a"]
    assert actions(frozenset(), False) == []


# -- company filters on reads ------------------------------------------------------------------


def test_reads_take_a_list_of_companies(store: Store, clock: FrozenClock) -> None:
    add_company(store, "acme")
    add_company(store, "zeta")
    a = insert(store, clock, company="acme")
    d = insert(store, clock)
    z = insert(store, clock, company="zeta", on_hold=True)
    sid = register(store, clock.now())
    [run] = claim(store, sid, clock.now(), limit=1)
    assert run.operation.id == a.id
    only_acme = frozenset({"acme"})
    assert store.get_operation(a.id, companies=only_acme) is not None
    assert store.get_operation(d.id, companies=only_acme) is None
    assert store.get_operation(d.id, companies=frozenset()) is None
    assert store.get_operation_by_entry_no(d.entry_no, companies=only_acme) is None
    assert store.get_operation_by_entry_no(a.entry_no, companies=only_acme) is not None
    listed = store.list_operations(OperationQuery(companies=frozenset({"acme", "zeta"})))
    assert [op.id for op in listed] == [a.id, z.id]
    assert store.list_operations(OperationQuery(companies=frozenset())) == []
    assert store.list_operations(OperationQuery(company="default", companies=only_acme)) == []
    counts = store.count_operations(companies=frozenset({"zeta", "default"}))
    assert (counts[Status.READY], counts[Status.ON_HOLD], counts[Status.IN_PROCESS]) == (1, 1, 0)
    assert len(store.list_attempts(a.id, companies=only_acme)) == 1
    assert store.list_attempts(a.id, companies=frozenset({"zeta"})) == []
    assert [c.name for c in store.list_companies(frozenset({"zeta", "acme"}))] == ["acme", "zeta"]
    assert store.list_companies(frozenset()) == []


def test_company_limit_round_trips(store: Store) -> None:
    made = store.upsert_company(Company("acme", "Acme", "UTC", max_in_process=3))
    assert made.max_in_process == 3
    assert store.get_company("acme") == Company("acme", "Acme", "UTC", True, 3)
    cleared = store.upsert_company(Company("acme", "Acme", "UTC"))
    assert cleared.max_in_process is None


def test_session_records_the_companies_it_serves(store: Store, clock: FrozenClock) -> None:
    from contract_support import session

    every = session(clock.now())
    some = dataclasses.replace(session(clock.now()), companies=("acme", "default"))
    store.register_session(every)
    store.register_session(some)
    assert {s.id: s.companies for s in store.list_sessions()} == {
        every.id: None,
        some.id: ("acme", "default"),
    }


# -- personal data -----------------------------------------------------------------------------


def test_personal_data_and_forget(store: Store, clock: FrozenClock) -> None:
    store.insert_user(user(clock, "alice", ("default", USER)), "$argon2id$x")
    store.insert_token(_token(clock, "alice"), "h")
    # bob is a user too: in a database with users, a claim starts only the operations of
    # existing, active users (docs/permissions.md, "At run time").
    store.insert_user(user(clock, "bob", ("default", USER)), None)
    mine = insert(store, clock, user="alice")
    theirs = insert(store, clock, user="bob")
    sid = register(store, clock.now())
    runs = claim(store, sid, clock.now())
    assert store.request_cancel(theirs.id, None, clock.now(), "alice", "stop") is not None
    assert all(finish(store, r, clock.now()) for r in runs)
    store.record_audit(dataclasses.replace(audit(clock, "hold", str(mine.id)), actor="alice"))
    store.record_audit(audit(clock, "create_token", "user:alice"))
    store.record_audit(audit(clock, "create_token", "user:bob"))

    data = store.personal_data("alice")
    assert data.user is not None
    assert data.user.name == "alice"
    assert [t.user for t in data.tokens] == ["alice"]
    assert [op.id for op in data.operations] == [mine.id, theirs.id]  # user, or cancelled by
    assert [a.operation_id for a in data.attempts] == [mine.id]
    assert [(e.action, e.target) for e in data.audit] == [
        ("hold", str(mine.id)), ("create_token", "user:alice")
    ]  # fmt: skip

    changed = store.forget_user("alice", "forgotten-1", audit=audit(clock, "forget_user", "f"))
    assert changed >= 5
    assert store.get_user("alice") is None
    assert store.list_tokens("alice") == []
    assert get(store, mine).user == "forgotten-1"
    assert get(store, mine).status is Status.FINISHED  # the operation stays
    assert get(store, theirs).user == "bob"
    assert get(store, theirs).cancel_request is not None
    assert get(store, theirs).cancel_request.requested_by == "forgotten-1"  # type: ignore[union-attr]
    assert store.list_attempts(mine.id)[0].user == "forgotten-1"
    gone = store.personal_data("alice")
    assert (gone.user, gone.tokens, gone.operations, gone.attempts, gone.audit) == (
        None, [], [], [], []
    )  # fmt: skip
    targets = {e.target for e in store.list_audit(None, include_global=True)}
    assert "user:alice" not in targets
    assert "user:forgotten-1" in targets
    assert store.forget_user("alice", "forgotten-2") == 0


# -- claims: fairness, limits, served companies ------------------------------------------------


def test_claims_take_turns_between_companies(store: Store, clock: FrozenClock) -> None:
    add_company(store, "big")
    add_company(store, "small")
    store.insert_operations_bulk([build(clock, company="big") for _ in range(300)])
    small = store.insert_operations([build(clock, company="small") for _ in range(3)])
    sid = register(store, clock.now())
    one_at_a_time = [claim(store, sid, clock.now(), limit=1) for _ in range(6)]
    assert [[r.operation.company for r in runs] for runs in one_at_a_time] == [
        ["big"], ["small"], ["big"], ["small"], ["big"], ["small"]
    ]  # fmt: skip
    assert {runs[0].operation.id for runs in one_at_a_time[1::2]} == {op.id for op in small}


def test_a_batch_interleaves_companies_and_keeps_order_within_each(
    store: Store, clock: FrozenClock
) -> None:
    add_company(store, "big")
    add_company(store, "small")
    big = store.insert_operations([build(clock, company="big") for _ in range(20)])
    late_high = insert(store, clock, company="big", priority="high")
    small = store.insert_operations([build(clock, company="small") for _ in range(2)])
    sid = register(store, clock.now())
    runs = claim(store, sid, clock.now(), limit=6)
    ids = {r.operation.id for r in runs}
    assert {op.id for op in small} <= ids
    assert {late_high.id, big[0].id, big[1].id} <= ids  # High first, then FIFO, in "big"
    assert len(runs) == 6


def test_claim_honours_company_max_in_process(store: Store, clock: FrozenClock) -> None:
    store.upsert_company(Company("capped", "Capped", "UTC", max_in_process=2))
    capped = store.insert_operations([build(clock, company="capped") for _ in range(5)])
    free = store.insert_operations([build(clock) for _ in range(3)])
    sid = register(store, clock.now())
    runs = claim(store, sid, clock.now(), limit=10)
    assert sorted(r.operation.company for r in runs) == ["capped", "capped"] + ["default"] * 3
    assert claim(store, sid, clock.now(), limit=10) == []
    capped_run = next(r for r in runs if r.operation.company == "capped")
    assert finish(store, capped_run, clock.now())
    [more] = claim(store, sid, clock.now(), limit=10)
    assert more.operation.id == capped[2].id
    assert {op.id for op in free} <= {r.operation.id for r in runs}


def test_claim_serves_only_the_sessions_companies_and_active_ones(
    store: Store, clock: FrozenClock
) -> None:
    add_company(store, "acme")
    add_company(store, "off")
    a = insert(store, clock, company="acme")
    d = insert(store, clock)
    off = insert(store, clock, company="off")
    store.upsert_company(Company("off", "off", "UTC", active=False))
    sid = register(store, clock.now())
    params = ClaimParams(sid, ("default",), 10, clock.now(), companies=("acme",))
    assert [r.operation.id for r in store.claim(params)] == [a.id]
    assert [r.operation.id for r in claim(store, sid, clock.now())] == [d.id]
    assert claim(store, sid, clock.now()) == []
    assert get(store, off).status is Status.READY  # a disabled company's work waits
    store.upsert_company(Company("off", "off", "UTC"))
    assert [r.operation.id for r in claim(store, sid, clock.now())] == [off.id]
    assert store.next_due_at(("default",), ["acme"]) is None
    waiting = insert(
        store, clock, company="acme", earliest_start_at=clock.now() + timedelta(hours=1)
    )
    assert store.next_due_at(("default",), ["acme"]) == waiting.earliest_start_at
    assert store.next_due_at(("default",), ["zeta"]) is None


@pytest.mark.parametrize("limit", [1, 4])
def test_category_limits_hold_with_company_turns(
    store: Store, clock: FrozenClock, limit: int
) -> None:
    from contract_support import category

    add_company(store, "acme")
    category(store, "ONE", max_concurrent=1)
    category(store, "ONE", max_concurrent=1, company="acme")
    for company in ("default", "acme"):
        store.insert_operations([build(clock, company=company, category="ONE") for _ in range(3)])
    sid = register(store, clock.now())
    runs = [r for _ in range(4) for r in claim(store, sid, clock.now(), limit=limit)]
    assert sorted(r.operation.company for r in runs) == ["acme", "default"]
    for r in runs:
        assert finish(store, r, clock.now(), status=Status.ERROR, outcome=Outcome.ERROR)
