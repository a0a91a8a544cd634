"""SecurityService: users, permission sets, API tokens, the audit log, personal data.

Like ``OperationService`` every method runs for an actor under the permission table. It
also turns a user name, a password or an API token into the :class:`Actor` that the other
methods act for.

Passwords are hashed with Argon2id (argon2-cffi); tokens are random, shown once, and kept
as a SHA-256 hash (``domain.users``). A disabled user's tokens stop working at once because
every use reads the user's state with the token.

Example::

    security = SecurityService(store, SystemClock(), actor=Actor.local())
    security.add_user("alice", grants=[("CRONUS", PermissionSet.USER)], password="s3cret-pw")
    token, text = security.create_token("alice", name="ci")
    alice = security.authenticate_token(text)         # Actor for alice, front end "api"
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from longops.core.access import ActorBound, acting, require
from longops.core.signin import HashPool, SignInGuard, SignInPolicy
from longops.domain.clock import Clock
from longops.domain.errors import NotFound, PermissionDenied, ValidationError
from longops.domain.operation import _check_name
from longops.domain.security import (
    Action,
    Actor,
    FrontEnd,
    PermissionSet,
    Verdict,
    companies_for,
    decide,
)
from longops.domain.users import (
    ApiToken,
    AuditEntry,
    User,
    UserState,
    WebSession,
    check_email,
    check_user_name,
    new_pseudonym,
    new_session_text,
    new_token_text,
    parse_session,
    parse_token,
    token_hash,
    token_matches,
    user_target,
)
from longops.store.base import Store

DEFAULT_TOKEN_LIFETIME = timedelta(days=90)
MAX_TOKEN_LIFETIME = timedelta(days=3660)
TOUCH_INTERVAL = timedelta(minutes=1)
"""A token's last_used_at is written at most this often: using a token stays a read."""
MIN_PASSWORD = 8
MAX_PASSWORD = 1024

Grant = tuple[str, PermissionSet]


@dataclasses.dataclass(frozen=True, slots=True)
class SessionPolicy:
    """How long a sign-in of the pages lasts: ``idle`` without a request, ``absolute`` in all.

    Example::

        SessionPolicy(idle=timedelta(minutes=30), absolute=timedelta(hours=8))
    """

    idle: timedelta = timedelta(hours=2)
    absolute: timedelta = timedelta(hours=12)

    def __post_init__(self) -> None:
        if not timedelta(minutes=1) <= self.idle <= self.absolute:
            raise ValidationError("session_idle", "must be at least a minute and at most absolute")
        if self.absolute > timedelta(days=30):
            raise ValidationError("session_absolute", "must be at most 30 days")


class SecurityService(ActorBound):
    """Users, grants, tokens, audit and personal data; see the module docstring."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        actor: Actor,
        hasher: PasswordHasher | None = None,
        guard: SignInGuard | None = None,
        pool: HashPool | None = None,
        sessions: SessionPolicy | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.actor = actor
        self.hasher = hasher or PasswordHasher()
        self.guard = guard or SignInGuard(SignInPolicy(), clock)
        self.pool = pool or HashPool()
        self.sessions = sessions or SessionPolicy()
        self._dummy: list[str] = []
        """A hash of no one's password, made once: unknown users cost the same work."""

    def configure(
        self,
        *,
        sign_in: SignInPolicy | None = None,
        pool: HashPool | None = None,
        sessions: SessionPolicy | None = None,
    ) -> None:
        """Set the sign-in policy, the hashing pool and the session lifetimes (what
        ``longops serve`` reads from its settings). Services bound later share them.

        Example::

            app.security.configure(sign_in=SignInPolicy(account_lockout_after=5))
        """
        if sign_in is not None:
            self.guard = SignInGuard(sign_in, self.clock)
        if pool is not None:
            self.pool = pool
        if sessions is not None:
            self.sessions = sessions

    # -- who acts ----------------------------------------------------------------------------
    def actor_for(self, name: str, front_end: FrontEnd = FrontEnd.LIBRARY) -> Actor:
        """The actor of an existing, active user (what ``--as NAME`` acts as).

        Example::

            alice = security.actor_for("alice", FrontEnd.CLI)
        """
        user = self.store.get_user(check_user_name(name))
        if user is None:
            raise NotFound("user", name)
        if not user.active:
            raise PermissionDenied(name, "act", "", "the user is disabled")
        return _actor(user, front_end)

    def authenticate_token(self, text: str, front_end: FrontEnd = FrontEnd.API) -> Actor:
        """The actor a bearer token stands for. Revoked and expired tokens, and the tokens
        of disabled users, are refused with the same words as an unknown token."""
        token_id = parse_token(text)
        found = self.store.token_user(token_id) if token_id is not None else None
        refused = PermissionDenied("this token", "be used", "", "it is unknown, revoked or expired")
        if found is None:
            raise refused
        token, stored_hash, user = found
        now = self.clock.now()
        if not token_matches(text, stored_hash) or not token.usable_at(now):
            raise refused
        if not user.active:
            raise refused
        if token.last_used_at is None or token.last_used_at < now - TOUCH_INTERVAL:
            # A write only once a minute: using a token stays one read.
            self.store.touch_token(token.id, now, now - TOUCH_INTERVAL)
        return _actor(user, front_end)

    def authenticate_password(
        self,
        name: str,
        password: str,
        front_end: FrontEnd = FrontEnd.WEB,
        *,
        address: str | None = None,
    ) -> Actor:
        """The actor of a user who proves the password (for the pages' sign-in).

        Failures are throttled per account name and per client ``address`` (back-off, then
        a lockout, audited): a try while backed off raises :class:`TooManyRequests` without
        checking the password. An unknown user costs the same Argon2 work as a known one,
        so the answer's timing does not tell whether the name exists.

        Example::

            actor = security.authenticate_password("alice", "s3cret-pw", address="10.0.0.7")
        """
        if not isinstance(name, str) or not isinstance(password, str):
            raise PermissionDenied("?", "sign in", "", "wrong user name or password")
        refused = PermissionDenied(name, "sign in", "", "wrong user name or password")
        self.guard.check(name, address)
        # No stored text holds NUL (PostgreSQL cannot), and a too long password matches none.
        possible = "\x00" not in name and len(name) <= 200 and len(password) <= MAX_PASSWORD
        stored = self.store.get_password_hash(name) if possible else None
        with self.pool.slot():
            ok = self._verify(stored if stored is not None else self._dummy_hash(), password)
        user = self.store.get_user(name) if ok and stored is not None else None
        if user is None:
            self._failed(name, address, front_end)
            raise refused
        if not user.active:
            raise refused
        self.guard.succeeded(name)
        if stored is not None and self.hasher.check_needs_rehash(stored):
            with self.pool.slot():
                rehashed = self.hasher.hash(password)
            self.store.set_password_hash(name, rehashed, self.clock.now())
        return _actor(user, front_end)

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return bool(self.hasher.verify(stored, password))
        except (VerificationError, InvalidHashError):
            return False

    def _dummy_hash(self) -> str:
        if not self._dummy:
            self._dummy.append(self.hasher.hash(uuid.uuid4().hex))
        return self._dummy[0]

    def _failed(self, name: str, address: str | None, front_end: FrontEnd) -> None:
        for key in self.guard.failed(name, address):
            kind, _, value = key.partition(":")
            target = user_target(name[:100]) if kind == "account" else f"address:{value}"
            details = {
                "address": address,
                "failures": self.guard.failures(name),
                "lockout_seconds": int(self.guard.policy.lockout.total_seconds()),
            }
            who = Actor.local(front_end)
            self.store.record_audit(self._audit_entry(who, "sign_in_locked", target, None, details))

    # -- the pages' sessions -----------------------------------------------------------------
    def start_session(
        self, user: str, *, client: str = "", front_end: FrontEnd = FrontEnd.WEB
    ) -> tuple[WebSession, str]:
        """A new server-side session for a user who just signed in: the record and the
        cookie's text (shown this once, stored as a hash). Audited as ``sign_in``.

        Example::

            session, text = security.start_session("alice", client="10.0.0.7 Firefox")
        """
        now = self.clock.now()
        session = WebSession(
            id=uuid.uuid4(),
            user=user,
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.sessions.absolute,
            revoked_at=None,
            client=client[:300],
        )
        text = new_session_text(session.id)
        who = Actor.for_user(user, front_end=front_end)
        details = {"session_id": str(session.id), "client": session.client}
        audit = self._audit_entry(who, "sign_in", user_target(user), None, details)
        self.store.insert_web_session(session, token_hash(text), audit=audit)
        return session, text

    def authenticate_session(self, text: str, front_end: FrontEnd = FrontEnd.WEB) -> Actor:
        """The actor a session cookie stands for. Ended, idle, expired and forged sessions,
        and those of disabled users, raise PermissionDenied alike."""
        session_id = parse_session(text)
        found = self.store.web_session_user(session_id) if session_id is not None else None
        refused = PermissionDenied("this session", "be used", "", "it has ended")
        if found is None:
            raise refused
        session, stored_hash, user = found
        now = self.clock.now()
        if not token_matches(text, stored_hash) or not session.usable_at(now, self.sessions.idle):
            raise refused
        if not user.active:
            raise refused
        if session.last_seen_at < now - TOUCH_INTERVAL:
            self.store.touch_web_session(session.id, now, now - TOUCH_INTERVAL)
        return _actor(user, front_end)

    def end_session(self, text: str, front_end: FrontEnd = FrontEnd.WEB) -> bool:
        """Sign out: the session stops working at once, whichever copy of the cookie is
        used. False when it had already ended (or never existed)."""
        session_id = parse_session(text)
        found = self.store.get_web_session(session_id) if session_id is not None else None
        if found is None or not token_matches(text, found[1]):
            return False
        session = found[0]
        who = Actor.for_user(session.user, front_end=front_end)
        details = {"session_id": str(session.id)}
        audit = self._audit_entry(who, "sign_out", user_target(session.user), None, details)
        ended = self.store.revoke_web_sessions(
            session.user, self.clock.now(), session.id, audit=audit
        )
        return ended > 0

    @acting
    def list_web_sessions(self, user: str) -> list[WebSession]:
        """A user's sign-ins of the pages, newest first (a user their own, SUPER anyone's).

        Example::

            [s.client for s in security.list_web_sessions("alice") if s.revoked_at is None]
        """
        require(self.actor, Action.LIST_WEB_SESSIONS, target=f"user {user}", owner=user)
        self._user(user)
        return self.store.list_web_sessions(user)

    @acting
    def end_web_sessions(self, user: str, session_id: uuid.UUID | str | None = None) -> int:
        """End one of a user's sessions (``session_id``) or, without one, all of them
        ("sign out everywhere"); returns how many ended.

        Example::

            security.end_web_sessions("alice")        # every browser signs in again
        """
        who = self.actor
        require(who, Action.END_WEB_SESSIONS, target=f"user {user}", owner=user)
        self._user(user)
        chosen = None
        if session_id is not None:
            try:
                chosen = session_id if isinstance(session_id, uuid.UUID) else uuid.UUID(session_id)
            except ValueError:
                raise ValidationError("session_id", "must be a UUID", session_id) from None
        details = {"session_id": None if chosen is None else str(chosen)}
        audit = self._audit_entry(who, "end_web_sessions", user_target(user), None, details)
        ended = self.store.revoke_web_sessions(user, self.clock.now(), chosen, audit=audit)
        if chosen is not None and not ended:
            raise NotFound("session", f"{chosen} of user {user}")
        return ended

    # -- users -------------------------------------------------------------------------------
    @acting
    def add_user(
        self,
        name: str,
        *,
        display_name: str | None = None,
        password: str | None = None,
        grants: Iterable[Grant] = (),
        is_super: bool = False,
        email: str | None = None,
    ) -> User:
        """Create a user with permission sets per company (and SUPER, which is global), and
        optionally an email address (see :meth:`set_contact`).

        Example::

            security.add_user("bob", grants=[("CRONUS", PermissionSet.ADMIN)])
        """
        who = self.actor
        require(who, Action.ADD_USER, target=f"user {name}")
        check_user_name(name)
        if display_name is not None and len(display_name) > 250:
            raise ValidationError("display_name", "must be at most 250 characters")
        pairs = self._check_grants(grants)
        if email is not None:
            check_email(email)
        password_hash = None if password is None else self.hasher.hash(_password(password))
        user = User(
            name=name,
            display_name=display_name or name,
            state=UserState.ACTIVE,
            is_super=is_super,
            created_at=self.clock.now(),
            disabled_at=None,
            has_password=password is not None,
            grants=pairs,
        )
        details = {
            "super": is_super,
            "permission_sets": [{"company": c, "permission_set": s.value} for c, s in pairs],
        }
        audit = self._audit_entry(who, "add_user", user_target(name), None, details)
        if not self.store.insert_user(user, password_hash, audit=audit):
            raise ValidationError("name", "is taken by another user", name)
        for company, permission_set in pairs:
            # Each company's admins see in their own audit log who was let in.
            self.store.record_audit(
                self._audit_entry(
                    who,
                    "grant_permission",
                    user_target(name),
                    company,
                    {"permission_set": permission_set.value, "with": "add_user"},
                )
            )
        if email is not None:
            self.store.set_user_contact(name, email, False, self.clock.now())
        return user

    @acting
    def contact(self, name: str) -> tuple[str | None, bool]:
        """A user's (email, notify_by_email); a person reads their own, SUPER anyone's."""
        who = self.actor
        require(who, Action.USER_CONTACT, target=f"user {name}", owner=name)
        found = self.store.get_user_contact(name)
        if found is None:
            raise NotFound("user", name)
        return found

    @acting
    def set_contact(
        self,
        name: str,
        *,
        email: str | None = None,
        notify_by_email: bool | None = None,
        clear_email: bool = False,
    ) -> tuple[str | None, bool]:
        """Set a user's email address and their choice: the in-app inbox only
        (``notify_by_email=False``, the default) or also email, in every company. A person
        sets their own; SUPER anyone's. What is not given stays; ``clear_email`` removes the
        address (and so the choice of email). Returns (email, notify_by_email).

        Example::

            app.as_user("ann").security.set_contact("ann", email="ann@example.com",
                                                    notify_by_email=True)
        """
        who = self.actor
        require(who, Action.USER_CONTACT, target=f"user {name}", owner=name)
        check_user_name(name)
        found = self.store.get_user_contact(name)
        if found is None:
            raise NotFound("user", name)
        new_email = None if clear_email else (found[0] if email is None else check_email(email))
        choice = found[1] if notify_by_email is None else notify_by_email
        if clear_email and notify_by_email is None:
            choice = False
        if not isinstance(choice, bool):
            raise ValidationError("notify_by_email", "must be true or false", choice)
        if choice and new_email is None:
            raise ValidationError("notify_by_email", "needs an email address first")
        # The address itself is personal data: the audit log says that it changed, not what.
        details = {"email_changed": new_email != found[0], "notify_by_email": choice}
        audit = self._audit_entry(who, "set_user_contact", user_target(name), None, details)
        self.store.set_user_contact(name, new_email, choice, self.clock.now(), audit=audit)
        return new_email, choice

    def _check_grants(self, grants: Iterable[Grant]) -> tuple[Grant, ...]:
        pairs = set()
        for company, permission_set in grants:
            _check_name("company", company)
            chosen = PermissionSet.parse(permission_set)
            if chosen is PermissionSet.SUPER:
                raise ValidationError(
                    "permission_set", "SUPER is global: give it without a company", company
                )
            if self.store.get_company(company) is None:
                raise ValidationError("company", "must be an existing company", company)
            pairs.add((company, chosen))
        return tuple(sorted(pairs))

    @acting
    def list_users(self) -> list[User]:
        require(self.actor, Action.LIST_USERS, target="")
        return self.store.list_users()

    @acting
    def get_user(self, name: str) -> User:
        """A user's record; a user may read their own, SUPER anyone's."""
        who = self.actor
        if who.user != name:
            require(who, Action.LIST_USERS, target=f"user {name}")
        return self._user(name)

    def _user(self, name: str) -> User:
        user = self.store.get_user(name)
        if user is None:
            raise NotFound("user", name)
        return user

    @acting
    def disable_user(self, name: str) -> User:
        """Disable a user: their tokens stop working at once, their operations are flagged."""
        return self._set_state(name, UserState.DISABLED, self.actor)

    @acting
    def enable_user(self, name: str) -> User:
        return self._set_state(name, UserState.ACTIVE, self.actor)

    def _set_state(self, name: str, state: UserState, actor: Actor) -> User:
        require(actor, Action.DISABLE_USER, target=f"user {name}")
        action = "disable_user" if state is UserState.DISABLED else "enable_user"
        audit = self._audit_entry(actor, action, user_target(name), None)
        if not self.store.set_user_state(name, state, self.clock.now(), audit=audit):
            raise NotFound("user", name)
        if state is UserState.DISABLED:
            # Refused while disabled anyway; ended, so enabling again revives no old cookie.
            self.store.revoke_web_sessions(name, self.clock.now())
        return self._user(name)

    @acting
    def delete_user(self, name: str) -> None:
        """Delete a user with their permission sets and tokens. Their operations stay (and
        are flagged); ``forget_user`` also removes the name from history."""
        who = self.actor
        require(who, Action.DELETE_USER, target=f"user {name}")
        audit = self._audit_entry(who, "delete_user", user_target(name), None)
        if not self.store.delete_user(name, audit=audit):
            raise NotFound("user", name)

    @acting
    def grant(
        self,
        name: str,
        permission_set: PermissionSet | str,
        company: str | None = None,
    ) -> User:
        """Give a user a permission set in a company, or SUPER (no company)."""
        return self._change_grant(name, permission_set, company, True, self.actor)

    @acting
    def revoke(
        self,
        name: str,
        permission_set: PermissionSet | str,
        company: str | None = None,
    ) -> User:
        """Take a permission set (or SUPER) away again."""
        return self._change_grant(name, permission_set, company, False, self.actor)

    def _change_grant(
        self,
        name: str,
        permission_set: PermissionSet | str,
        company: str | None,
        give: bool,
        actor: Actor,
    ) -> User:
        require(actor, Action.GRANT_PERMISSION, target=f"user {name}")
        chosen = PermissionSet.parse(permission_set)
        self._user(name)
        action = "grant_permission" if give else "revoke_permission"
        details = {"permission_set": chosen.value}
        at = self.clock.now()
        if chosen is PermissionSet.SUPER:
            if company is not None:
                raise ValidationError("company", "SUPER is global: give it without a company")
            audit = self._audit_entry(actor, action, user_target(name), None, details)
            self.store.set_user_super(name, give, at, audit=audit)
            return self._user(name)
        if company is None:
            raise ValidationError("company", f"{chosen.value} is given per company: name one")
        [(company, chosen)] = self._check_grants([(company, chosen)])
        audit = self._audit_entry(actor, action, user_target(name), company, details)
        if give:
            self.store.grant(name, company, chosen, at, audit=audit)
        else:
            self.store.revoke(name, company, chosen, audit=audit)
        return self._user(name)

    # -- tokens ------------------------------------------------------------------------------
    @acting
    def create_token(
        self,
        user: str,
        *,
        name: str = "default",
        expires: datetime | timedelta | None = DEFAULT_TOKEN_LIFETIME,
    ) -> tuple[ApiToken, str]:
        """A new API token for ``user``: the record, and the token's text, which is shown
        this once and stored only as a hash. ``expires``: a time, a lifetime, or None
        (never).

        Example::

            token, text = security.create_token("alice", name="nightly", expires=timedelta(30))
        """
        who = self.actor
        require(who, Action.CREATE_TOKEN, target=f"user {user}", owner=user)
        _check_name("name", name)
        target = self._user(user)
        now = self.clock.now()
        expires_at = _expiry(expires, now)
        token = ApiToken(uuid.uuid4(), target.name, name, now, expires_at, None, None)
        text = new_token_text(token.id)
        details = {"token_id": str(token.id), "name": name, "expires_at": _iso(expires_at)}
        audit = self._audit_entry(who, "create_token", user_target(user), None, details)
        if not self.store.insert_token(token, token_hash(text), audit=audit):
            raise ValidationError("name", f"user {user} already has a token of that name", name)
        return token, text

    @acting
    def list_tokens(self, user: str) -> list[ApiToken]:
        require(self.actor, Action.LIST_TOKENS, target=f"user {user}", owner=user)
        self._user(user)
        return self.store.list_tokens(user)

    @acting
    def revoke_token(self, user: str, token: str) -> ApiToken:
        """Revoke one of ``user``'s tokens, named by its name or its id."""
        who = self.actor
        require(who, Action.REVOKE_TOKEN, target=f"user {user}", owner=user)
        self._user(user)
        every = self.store.list_tokens(user)
        live = [t for t in every if t.revoked_at is None]
        match = [t for t in live if t.name == token or str(t.id) == token]
        if not match:
            if any(t.name == token or str(t.id) == token for t in every):
                raise ValidationError("token", "is already revoked", token)
            raise NotFound("token", f"{token} of user {user}")
        [found] = match
        details = {"token_id": str(found.id), "name": found.name}
        audit = self._audit_entry(who, "revoke_token", user_target(user), None, details)
        self.store.revoke_token(found.id, self.clock.now(), audit=audit)
        return dataclasses.replace(found, revoked_at=self.clock.now())

    # -- audit -------------------------------------------------------------------------------
    @acting
    def list_audit(
        self,
        *,
        company: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditEntry]:
        """Operator actions, newest first, of the companies whose audit log the actor may
        read (JOBQUEUE-ADMIN there, or SUPER; actions on no company: SUPER only)."""
        who = self.actor
        if not 1 <= limit <= 1000:
            raise ValidationError("limit", "must be between 1 and 1000", limit)
        visible = companies_for(who, Action.LIST_AUDIT)
        if company is not None:
            _check_name("company", company)
            if visible is not None and company not in visible:
                # As for a company that does not exist when the actor cannot see it at all.
                if decide(who, Action.LIST_AUDIT, company=company) is Verdict.HIDDEN:
                    return []
                require(who, Action.LIST_AUDIT, target=f"company {company}", company=company)
            visible = frozenset({company})
        elif visible is not None and not visible:
            raise PermissionDenied(
                who.name, "read the audit log", "", "needs JOBQUEUE-ADMIN or SUPER"
            )
        include_global = who.is_super and company is None
        return self.store.list_audit(
            visible, include_global=include_global, limit=limit, before_id=before_id
        )

    # -- personal data -----------------------------------------------------------------------
    @acting
    def export_user(self, name: str) -> dict[str, Any]:
        """Every row that identifies the user, as JSON-ready data (and the export itself is
        recorded in the audit log)."""
        who = self.actor
        require(who, Action.EXPORT_USER, target=f"user {name}")
        check_user_name(name)
        data = self.store.personal_data(name)
        if data.user is None and not (
            data.operations or data.attempts or data.audit or data.events or data.notifications
        ):
            raise NotFound("user", name)
        self.store.record_audit(self._audit_entry(who, "export_user", user_target(name), None))
        contact = self.store.get_user_contact(name)
        return {
            "user": None if data.user is None else data.user.to_json(),
            "contact": None
            if contact is None
            else {"email": contact[0], "notify_by_email": contact[1]},
            "tokens": [t.to_json() for t in data.tokens],
            "operations": [op.to_json() for op in data.operations],
            "attempts": [a.to_json() for a in data.attempts],
            "audit": [e.to_json() for e in data.audit],
            "events": [e.to_json() for e in data.events],
            "notifications": [n.to_json() for n in data.notifications],
        }

    @acting
    def forget_user(self, name: str) -> str:
        """Delete the user and replace their name in operations, attempts, notifications and
        the audit log by a random pseudonym, which is returned. The operations stay."""
        who = self.actor
        require(who, Action.FORGET_USER, target=f"user {name}")
        check_user_name(name)
        pseudonym = new_pseudonym()
        audit = self._audit_entry(who, "forget_user", user_target(pseudonym), None)
        if self.store.forget_user(name, pseudonym, audit=audit) == 0:
            raise NotFound("user", name)
        return pseudonym


def _actor(user: User, front_end: FrontEnd) -> Actor:
    return Actor.for_user(user.name, user.grants, is_super=user.is_super, front_end=front_end)


def _password(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValidationError(
            "password", f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long"
        )
    return password


def _expiry(expires: datetime | timedelta | None, now: datetime) -> datetime | None:
    if expires is None:
        return None
    at = now + expires if isinstance(expires, timedelta) else expires
    if at.tzinfo is None:
        raise ValidationError("expires", "must be timezone-aware")
    if at <= now:
        raise ValidationError("expires", "must be in the future", at.isoformat())
    if at - now > MAX_TOKEN_LIFETIME:
        raise ValidationError("expires", "must be at most ten years ahead", at.isoformat())
    return at


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


__all__ = ["DEFAULT_TOKEN_LIFETIME", "SecurityService", "SessionPolicy"]
