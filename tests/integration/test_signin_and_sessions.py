"""Sign-in abuse and the pages' server-side sessions, through core on both databases:
back-off and lockout per account and per address (audited), equal Argon2 work for unknown
users, the bounded hashing pool, and sessions that end on sign-out, "sign out everywhere",
disabling the user, idleness and their absolute lifetime."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, Literal

import pytest
from argon2 import PasswordHasher

from longops import FrozenClock, Longops
from longops.core.security import SecurityService, SessionPolicy
from longops.core.signin import HashPool, SignInGuard, SignInPolicy
from longops.domain.errors import PermissionDenied, TooManyRequests, ValidationError
from longops.domain.security import Actor, FrontEnd, PermissionSet
from procs import wait_for

PASSWORD = "correct horse battery staple"  # noqa: S105 - a test password


class CountingHasher(PasswordHasher):
    """A cheap Argon2id that counts its verifications (the work a sign-in costs)."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verified = 0
        self.gate: threading.Event | None = None
        self.entered = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verified += 1
        self.entered += 1
        if self.gate is not None:
            self.gate.wait(30)
        return super().verify(hash, password)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def app(db_url: str, clock: FrozenClock) -> Iterator[Longops]:
    application = Longops(db_url, clock=clock)
    application.add_company("CRONUS")
    yield application
    application.close()


def security(app: Longops, clock: FrozenClock, **policy: Any) -> SecurityService:
    hasher = CountingHasher()
    service = SecurityService(
        app.store,
        clock,
        actor=Actor.local(),
        hasher=hasher,
        guard=SignInGuard(SignInPolicy(**policy), clock),
    )
    for name in ("alice", "bob"):
        service.add_user(name, password=PASSWORD, grants=[("CRONUS", PermissionSet.USER)])
    hasher.verified = 0
    return service


def test_failures_back_off_then_lock_the_account_until_the_lockout_passes(
    app: Longops, clock: FrozenClock
) -> None:
    sec = security(
        app, clock, account_free=2, account_lockout_after=4, lockout=timedelta(minutes=10)
    )
    for _ in range(2):  # free failures: no wait
        with pytest.raises(PermissionDenied):
            sec.authenticate_password("alice", "wrong password", address="10.0.0.1")
    with pytest.raises(PermissionDenied):
        sec.authenticate_password("alice", "wrong password", address="10.0.0.1")
    with pytest.raises(TooManyRequests) as backed_off:
        sec.authenticate_password("alice", PASSWORD, address="10.0.0.2")
    assert backed_off.value.retry_after == 1, "the first wait is the back-off's base"
    verified = sec.hasher.verified  # type: ignore[attr-defined]
    clock.advance(seconds=1)
    with pytest.raises(PermissionDenied):  # the fourth failure locks
        sec.authenticate_password("alice", "wrong password", address="10.0.0.3")
    with pytest.raises(TooManyRequests) as locked:
        sec.authenticate_password("alice", PASSWORD, address="10.0.0.4")
    assert locked.value.retry_after == 600
    assert sec.hasher.verified == verified + 1, "a refused try checks no password"  # type: ignore[attr-defined]
    # bob is not locked by alice's failures
    assert sec.authenticate_password("bob", PASSWORD, address="10.0.0.4").user == "bob"
    audit = [e for e in sec.list_audit() if e.action == "sign_in_locked"]
    assert [(e.target, e.details["failures"]) for e in audit] == [("user:alice", 4)]
    clock.advance(timedelta(minutes=10))
    assert sec.authenticate_password("alice", PASSWORD).user == "alice", "released"
    with pytest.raises(PermissionDenied):  # and the count started again: free once more
        sec.authenticate_password("alice", "wrong password")


def test_one_address_guessing_many_accounts_is_locked(app: Longops, clock: FrozenClock) -> None:
    sec = security(app, clock, address_free=1, address_lockout_after=3, account_free=10,
                   account_lockout_after=20)  # fmt: skip
    for name in ("x1", "x2", "x3"):
        with pytest.raises(PermissionDenied):
            sec.authenticate_password(name, "guess", address="203.0.113.9")
        clock.advance(seconds=10)
    with pytest.raises(TooManyRequests):
        sec.authenticate_password("alice", PASSWORD, address="203.0.113.9")
    assert sec.authenticate_password("alice", PASSWORD, address="198.51.100.1").user == "alice"
    audit = [e.target for e in sec.list_audit() if e.action == "sign_in_locked"]
    assert audit == ["address:203.0.113.9"]


def test_unknown_users_cost_the_same_argon2_work_as_known_ones(
    app: Longops, clock: FrozenClock
) -> None:
    sec = security(app, clock, account_free=1000, account_lockout_after=2000,
                   address_free=1000, address_lockout_after=2000)  # fmt: skip
    hasher: CountingHasher = sec.hasher  # type: ignore[assignment]
    for _ in range(50):
        with pytest.raises(PermissionDenied):
            sec.authenticate_password("alice", "wrong password")
    known = hasher.verified
    for i in range(50):
        with pytest.raises(PermissionDenied) as refused:
            sec.authenticate_password(f"nobody{i}", "wrong password")
        assert "wrong user name or password" in str(refused.value)
    assert known == 50
    assert hasher.verified - known == 50, "each unknown user's try verifies a dummy hash"


def test_the_hashing_pool_refuses_at_once_when_full(app: Longops, clock: FrozenClock) -> None:
    sec = security(app, clock)
    sec.pool = HashPool(slots=1, queue=1, wait=30)
    hasher: CountingHasher = sec.hasher  # type: ignore[assignment]
    hasher.gate = threading.Event()
    hasher.entered = 0
    outcomes: list[str] = []

    def sign_in() -> None:
        try:
            sec.authenticate_password("alice", PASSWORD)
            outcomes.append("in")
        except TooManyRequests:
            outcomes.append("busy")

    threads = [threading.Thread(target=sign_in) for _ in range(2)]
    for t in threads:
        t.start()
    wait_for(lambda: hasher.entered == 1 and sec.pool.admitted == 2, timeout=30, what="a full pool")
    with pytest.raises(TooManyRequests) as busy:
        sec.authenticate_password("bob", PASSWORD)
    assert busy.value.retry_after >= 1
    hasher.gate.set()
    for t in threads:
        t.join(30)
    assert outcomes == ["in", "in"], "the queued sign-in waited its turn"
    assert sec.authenticate_password("bob", PASSWORD).user == "bob"
    with pytest.raises(ValidationError, match="hash_slots"):
        HashPool(slots=0)


def test_a_session_ends_on_sign_out_and_a_copy_of_it_with_it(
    app: Longops, clock: FrozenClock
) -> None:
    sec = security(app, clock)
    session, text = sec.start_session("alice", client="10.0.0.1 test")
    assert sec.authenticate_session(text).user == "alice"
    forged = text[:-1] + ("A" if text[-1] != "A" else "B")
    with pytest.raises(PermissionDenied):
        sec.authenticate_session(forged)
    assert not sec.end_session(forged), "a forged cookie ends nothing"
    assert sec.end_session(text)
    with pytest.raises(PermissionDenied):
        sec.authenticate_session(text)
    assert not sec.end_session(text)
    [listed] = sec.list_web_sessions("alice")
    assert listed.id == session.id
    assert listed.revoked_at == clock.now()
    actions = [e.action for e in sec.list_audit()]
    assert "sign_in" in actions
    assert "sign_out" in actions


def test_sessions_end_when_idle_at_their_absolute_end_and_everywhere(
    app: Longops, clock: FrozenClock
) -> None:
    sec = security(app, clock)
    sec.sessions = SessionPolicy(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
    _, idle = sec.start_session("alice")
    _, busy = sec.start_session("alice")
    for _ in range(5):  # a used session lives on; an unused one goes idle
        clock.advance(timedelta(minutes=20))
        sec.authenticate_session(busy)
    with pytest.raises(PermissionDenied):
        sec.authenticate_session(idle)
    clock.advance(timedelta(minutes=20))
    with pytest.raises(PermissionDenied):  # 2 h in all, however busy
        sec.authenticate_session(busy)
    _, one = sec.start_session("alice")
    _, two = sec.start_session("alice")
    alice = sec.as_actor(sec.authenticate_session(one))
    bob = sec.as_actor(sec.authenticate_session(sec.start_session("bob")[1]))
    with pytest.raises(PermissionDenied):
        bob.end_web_sessions("alice")
    with pytest.raises(PermissionDenied):
        bob.list_web_sessions("alice")
    assert alice.end_web_sessions("alice") == 2, "sign out everywhere"
    for text in (one, two):
        with pytest.raises(PermissionDenied):
            sec.authenticate_session(text)
    with pytest.raises(ValidationError, match="session_idle"):
        SessionPolicy(idle=timedelta(hours=3), absolute=timedelta(hours=2))


def test_disabling_a_user_ends_their_sessions_for_good(app: Longops, clock: FrozenClock) -> None:
    sec = security(app, clock)
    _, text = sec.start_session("alice", front_end=FrontEnd.WEB)
    sec.disable_user("alice")
    with pytest.raises(PermissionDenied):
        sec.authenticate_session(text)
    sec.enable_user("alice")
    with pytest.raises(PermissionDenied):
        sec.authenticate_session(text)
    _, fresh = sec.start_session("alice")
    assert sec.authenticate_session(fresh).user == "alice"


def test_names_no_user_can_have_are_refused_like_any_unknown_user(
    app: Longops, clock: FrozenClock
) -> None:
    sec = security(app, clock)
    hasher: CountingHasher = sec.hasher  # type: ignore[assignment]
    for name in ("nul\x00name", "x" * 5000, ""):
        with pytest.raises(PermissionDenied, match="wrong user name or password"):
            sec.authenticate_password(name, "wrong password")
    assert hasher.verified == 3, "the same work for each"
