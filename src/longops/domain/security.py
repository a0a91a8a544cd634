"""Who may do what: permission sets, the actor, the permission table, and the one decision.

Business Central grants permission sets per company (domain reference §10); longops does the
same with four sets. ``PERMISSIONS`` is the table as data: for every action, how far each set
reaches (nothing, the actor's own operations, or everything in the company). ``decide`` is the
only function that reads it; ``core`` asks it before every action and read. The same table is
printed in ``docs/permissions.md`` and a test keeps the two in step.

Example::

    >>> alice = Actor.for_user("alice", [("CRONUS", PermissionSet.USER)])
    >>> decide(alice, "hold", company="CRONUS", owner="alice")
    <Verdict.ALLOWED: 'allowed'>
    >>> decide(alice, "hold", company="CRONUS", owner="bob")
    <Verdict.DENIED: 'denied'>
    >>> decide(alice, "get_operation", company="FABRIKAM")   # looks like "not found"
    <Verdict.HIDDEN: 'hidden'>
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from longops.domain.errors import ValidationError


class PermissionSet(StrEnum):
    """The permission sets of the job queue, named as in Business Central."""

    VIEW = "JOBQUEUE-VIEW"
    """Read every operation, attempt and category of the company."""
    USER = "JOBQUEUE-USER"
    """Read as VIEW; enqueue; act on one's own operations."""
    ADMIN = "JOBQUEUE-ADMIN"
    """Act on every operation of the company; categories; the company's audit log."""
    SUPER = "SUPER"
    """Everything, in every company: companies, users, sessions, queues, maintenance."""

    @classmethod
    def parse(cls, value: str) -> PermissionSet:
        """Read a set's name as people type it (case does not matter).

        Example::

            PermissionSet.parse("jobqueue-admin")   # PermissionSet.ADMIN
        """
        text = value.strip().upper() if isinstance(value, str) else value
        for member in cls:
            if text == member.value:
                return member
        raise ValidationError(
            "permission_set", f"must be one of {', '.join(s.value for s in cls)}", value
        )

    def includes(self, other: PermissionSet) -> bool:
        """True when holding this set is at least as much as holding ``other``.

        Used for a task's required permission: a task that requires JOBQUEUE-USER may be
        enqueued by an ADMIN too.
        """
        return _RANK[self] >= _RANK[other]


_RANK = {
    PermissionSet.VIEW: 1,
    PermissionSet.USER: 2,
    PermissionSet.ADMIN: 3,
    PermissionSet.SUPER: 4,
}


class FrontEnd(StrEnum):
    """Where an action came from (recorded in the audit log)."""

    LIBRARY = "library"
    CLI = "cli"
    API = "api"
    WEB = "web"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a user with permission sets per company, or the local super actor.

    ``user`` is None only for the local super actor: a process that holds the database URL
    (the library, the command line without ``--as``) can do anything anyway, so it acts as
    SUPER without a name. ``grants`` holds (company, permission set) pairs; SUPER is global
    and lives in ``is_super``.
    """

    user: str | None
    is_super: bool = False
    grants: frozenset[tuple[str, PermissionSet]] = frozenset()
    front_end: FrontEnd = FrontEnd.LIBRARY

    @classmethod
    def local(cls, front_end: FrontEnd = FrontEnd.LIBRARY) -> Actor:
        """The nameless SUPER actor of a process that holds the database URL.

        Example::

            Actor.local(FrontEnd.CLI)
        """
        return cls(user=None, is_super=True, front_end=front_end)

    @classmethod
    def for_user(
        cls,
        name: str,
        grants: Iterable[tuple[str, PermissionSet]] = (),
        *,
        is_super: bool = False,
        front_end: FrontEnd = FrontEnd.LIBRARY,
    ) -> Actor:
        """A named user with the given (company, set) grants.

        Example::

            Actor.for_user("bob", [("CRONUS", PermissionSet.ADMIN)], front_end=FrontEnd.API)
        """
        pairs = frozenset(grants)
        if any(s is PermissionSet.SUPER for _, s in pairs):
            raise ValidationError("permission_set", "SUPER is global: use is_super, not a grant")
        return cls(user=name, is_super=is_super, grants=pairs, front_end=front_end)

    @property
    def name(self) -> str:
        """How the actor is named in messages and the audit log."""
        return self.user if self.user is not None else "local super actor"

    def sets_in(self, company: str) -> frozenset[PermissionSet]:
        """The permission sets held in ``company`` (SUPER not included)."""
        return frozenset(s for c, s in self.grants if c == company)

    @property
    def companies(self) -> frozenset[str]:
        """Companies the actor holds any set in (for SUPER, only those granted)."""
        return frozenset(c for c, _ in self.grants)

    def scope(self) -> frozenset[str] | None:
        """Companies whose rows this actor may see at all; None means every company."""
        return None if self.is_super else self.companies


class Scope(StrEnum):
    """What an action applies to, which decides the questions ``decide`` asks."""

    OPERATION = "operation"
    """One operation: the company it is in, and whether it is the actor's own."""
    COMPANY = "company"
    """One company as a whole (a list, a category, enqueueing into it)."""
    GLOBAL = "global"
    """Spans companies (users, companies, queues, sessions, maintenance)."""
    SELF = "self"
    """A user's own record (their API tokens)."""


class Reach(StrEnum):
    """One cell of the permission table: how far a set reaches for an action."""

    NONE = "-"
    OWN = "own"
    """Operations whose user is the actor (Scope.OPERATION) or the actor's own record (SELF)."""
    ALL = "all"


@dataclass(frozen=True, slots=True)
class Rule:
    scope: Scope
    cells: Mapping[PermissionSet, Reach]
    what: str
    """One line for the documentation."""

    def reach(self, sets: Iterable[PermissionSet]) -> Reach:
        best = Reach.NONE
        for s in sets:
            cell = self.cells.get(s, Reach.NONE)
            if cell is Reach.ALL:
                return Reach.ALL
            if cell is Reach.OWN:
                best = Reach.OWN
        return best


def _rule(scope: Scope, what: str, view: str, user: str, admin: str, super_: str) -> Rule:
    cells = dict(
        zip(
            (PermissionSet.VIEW, PermissionSet.USER, PermissionSet.ADMIN, PermissionSet.SUPER),
            (Reach(view), Reach(user), Reach(admin), Reach(super_)),
            strict=True,
        )
    )
    return Rule(scope, cells, what)


class Action(StrEnum):
    """What an actor may be allowed to do: the rows of the permission table (``PERMISSIONS``,
    ``docs/permissions.md``). A misspelt action is a type error, not a runtime KeyError."""

    GET_OPERATION = "get_operation"
    LIST_OPERATIONS = "list_operations"
    COUNT_OPERATIONS = "count_operations"
    LIST_ATTEMPTS = "list_attempts"
    LIST_EVENTS = "list_events"
    LIST_CATEGORIES = "list_categories"
    LIST_COMPANIES = "list_companies"
    LIST_PAUSED_QUEUES = "list_paused_queues"
    LIST_AUDIT = "list_audit"
    LIST_LOG_ENTRIES = "list_log_entries"
    LIST_NOTIFICATIONS = "list_notifications"
    MARK_NOTIFICATIONS_READ = "mark_notifications_read"
    ENQUEUE = "enqueue"
    ACT_ON_BEHALF = "act_on_behalf"
    SET_READY = "set_ready"
    RESTART = "restart"
    RUN_NOW = "run_now"
    HOLD = "hold"
    CANCEL = "cancel"
    FORCE_CANCEL = "force_cancel"
    DELETE = "delete"
    UPDATE_OPERATION = "update_operation"
    REMOVE_FAILED = "remove_failed"
    DELETE_LOG_ENTRIES = "delete_log_entries"
    SET_CATEGORY = "set_category"
    SET_NOTIFICATION_PREFERENCES = "set_notification_preferences"
    LIST_NOTIFICATION_SETUP = "list_notification_setup"
    SET_NOTIFICATION_SETUP = "set_notification_setup"
    ADD_COMPANY = "add_company"
    DISABLE_COMPANY = "disable_company"
    PAUSE_QUEUE = "pause_queue"
    LIST_SESSIONS = "list_sessions"
    DRAIN_SESSION = "drain_session"
    RUN_WORKER = "run_worker"
    MAINTAIN_SCHEMA = "maintain_schema"
    SET_MAINTENANCE = "set_maintenance"
    READ_MAINTENANCE = "read_maintenance"
    LIST_USERS = "list_users"
    ADD_USER = "add_user"
    DISABLE_USER = "disable_user"
    DELETE_USER = "delete_user"
    GRANT_PERMISSION = "grant_permission"
    EXPORT_USER = "export_user"
    FORGET_USER = "forget_user"
    CREATE_TOKEN = "create_token"  # noqa: S105 - an action's name, not a secret
    REVOKE_TOKEN = "revoke_token"  # noqa: S105 - an action's name, not a secret
    LIST_TOKENS = "list_tokens"
    LIST_WEB_SESSIONS = "list_web_sessions"
    END_WEB_SESSIONS = "end_web_sessions"
    USER_CONTACT = "user_contact"


_O, _C, _G, _S = Scope.OPERATION, Scope.COMPANY, Scope.GLOBAL, Scope.SELF

# The permission table. Columns: JOBQUEUE-VIEW, JOBQUEUE-USER, JOBQUEUE-ADMIN, SUPER.
# docs/permissions.md prints it; tests/unit/test_permissions.py keeps the two in step and
# tests/integration/test_authorization_matrix.py runs every cell against the real core.
PERMISSIONS: Mapping[Action, Rule] = {
    # reads
    Action.GET_OPERATION: _rule(_O, "read an operation", "all", "all", "all", "all"),
    Action.LIST_OPERATIONS: _rule(_C, "list operations", "all", "all", "all", "all"),
    Action.COUNT_OPERATIONS: _rule(_C, "count operations by status", "all", "all", "all", "all"),
    Action.LIST_ATTEMPTS: _rule(_O, "read an operation's attempts", "all", "all", "all", "all"),
    Action.LIST_EVENTS: _rule(_O, "read an operation's timeline", "all", "all", "all", "all"),
    Action.LIST_CATEGORIES: _rule(_C, "list categories", "all", "all", "all", "all"),
    Action.LIST_COMPANIES: _rule(_C, "list companies", "all", "all", "all", "all"),
    Action.LIST_PAUSED_QUEUES: _rule(_G, "list paused queues", "all", "all", "all", "all"),
    Action.LIST_AUDIT: _rule(_C, "read the audit log", "-", "-", "all", "all"),
    Action.LIST_LOG_ENTRIES: _rule(_C, "list a company's log entries", "all", "all", "all", "all"),
    # one's own inbox (a company-wide read that only ever returns the actor's own rows)
    Action.LIST_NOTIFICATIONS: _rule(_C, "read one's notifications", "all", "all", "all", "all"),
    Action.MARK_NOTIFICATIONS_READ: _rule(
        _C, "mark one's notifications read", "all", "all", "all", "all"
    ),
    # creating work
    Action.ENQUEUE: _rule(_C, "enqueue an operation", "-", "all", "all", "all"),
    Action.ACT_ON_BEHALF: _rule(_G, "enqueue or set ready as another user", "-", "-", "-", "all"),
    # Business Central's actions on one operation
    Action.SET_READY: _rule(_O, "set ready", "-", "own", "all", "all"),
    Action.RESTART: _rule(_O, "restart", "-", "own", "all", "all"),
    Action.RUN_NOW: _rule(_O, "run now", "-", "own", "all", "all"),
    Action.HOLD: _rule(_O, "set on hold", "-", "own", "all", "all"),
    Action.CANCEL: _rule(_O, "cancel", "-", "own", "all", "all"),
    Action.FORCE_CANCEL: _rule(_O, "cancel by force (no grace period)", "-", "-", "all", "all"),
    Action.DELETE: _rule(_O, "delete", "-", "own", "all", "all"),
    Action.UPDATE_OPERATION: _rule(_O, "edit an operation on hold", "-", "own", "all", "all"),
    # company set-up
    Action.REMOVE_FAILED: _rule(_C, "remove failed entries", "-", "-", "all", "all"),
    Action.DELETE_LOG_ENTRIES: _rule(
        _C, "delete log entries older than N days", "-", "-", "all", "all"
    ),
    Action.SET_CATEGORY: _rule(
        _C, "create, change, pause or resume a category", "-", "-", "all", "all"
    ),
    Action.SET_NOTIFICATION_PREFERENCES: _rule(
        _C, "mute or unmute a notification rule for oneself", "all", "all", "all", "all"
    ),
    # notification setup (Business Central: Job Queue Notification Setup, Notified Admin)
    Action.LIST_NOTIFICATION_SETUP: _rule(
        _C, "read notification rules, admins, channels and deliveries", "-", "-", "all", "all"
    ),
    Action.SET_NOTIFICATION_SETUP: _rule(
        _C,
        "change notification rules, admins and channels; test-send; retry a delivery",
        "-",
        "-",
        "all",
        "all",
    ),
    # spanning companies
    Action.ADD_COMPANY: _rule(_G, "add or change a company", "-", "-", "-", "all"),
    Action.DISABLE_COMPANY: _rule(_G, "disable a company", "-", "-", "-", "all"),
    Action.PAUSE_QUEUE: _rule(_G, "pause or resume a queue", "-", "-", "-", "all"),
    Action.LIST_SESSIONS: _rule(_G, "list worker sessions and their events", "-", "-", "-", "all"),
    Action.DRAIN_SESSION: _rule(_G, "drain a worker session", "-", "-", "-", "all"),
    Action.RUN_WORKER: _rule(_G, "run a worker session", "-", "-", "-", "all"),
    Action.MAINTAIN_SCHEMA: _rule(_G, "upgrade or print the schema", "-", "-", "-", "all"),
    Action.SET_MAINTENANCE: _rule(_G, "start or stop maintenance mode", "-", "-", "-", "all"),
    Action.READ_MAINTENANCE: _rule(
        _G, "see whether maintenance mode is on, and why", "all", "all", "all", "all"
    ),
    # users
    Action.LIST_USERS: _rule(_G, "list users", "-", "-", "-", "all"),
    Action.ADD_USER: _rule(_G, "add a user", "-", "-", "-", "all"),
    Action.DISABLE_USER: _rule(_G, "disable or enable a user", "-", "-", "-", "all"),
    Action.DELETE_USER: _rule(_G, "delete a user", "-", "-", "-", "all"),
    Action.GRANT_PERMISSION: _rule(_G, "grant or revoke a permission set", "-", "-", "-", "all"),
    Action.EXPORT_USER: _rule(_G, "export a user's personal data", "-", "-", "-", "all"),
    Action.FORGET_USER: _rule(_G, "pseudonymise a user in history", "-", "-", "-", "all"),
    Action.CREATE_TOKEN: _rule(_S, "create an API token", "own", "own", "own", "all"),
    Action.REVOKE_TOKEN: _rule(_S, "revoke an API token", "own", "own", "own", "all"),
    Action.LIST_TOKENS: _rule(_S, "list API tokens", "own", "own", "own", "all"),
    Action.LIST_WEB_SESSIONS: _rule(_S, "list sign-ins of the pages", "own", "own", "own", "all"),
    Action.END_WEB_SESSIONS: _rule(_S, "end sign-ins of the pages", "own", "own", "own", "all"),
    Action.USER_CONTACT: _rule(
        _S, "read or set an email address and how one is notified", "own", "own", "own", "all"
    ),
}
"""Action → rule. Every public method of core names its action here."""


class Verdict(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    """The actor sees the target but may not act: PermissionDenied."""
    HIDDEN = "hidden"
    """The target is in a company the actor has no set in: it must look like NotFound."""


def decide(
    actor: Actor, action: Action, *, company: str | None = None, owner: str | None = None
) -> Verdict:
    """The one decision: may ``actor`` do ``action``?

    ``company`` is the target's company (OPERATION and COMPANY scopes); ``owner`` is the
    operation's user (OPERATION) or the user whose record it is (SELF).
    """
    rule = PERMISSIONS[action]
    if actor.is_super:
        reach = rule.cells[PermissionSet.SUPER]
        if reach is Reach.ALL or (reach is Reach.OWN and _own(actor, owner)):
            return Verdict.ALLOWED
        return Verdict.DENIED
    if rule.scope in (Scope.OPERATION, Scope.COMPANY):
        if company is None:
            raise ValueError(f"{action} needs the target's company")
        held = actor.sets_in(company)
        if not held:
            return Verdict.HIDDEN
    else:
        held = frozenset(s for _, s in actor.grants)
    reach = rule.reach(held)
    if reach is Reach.ALL:
        return Verdict.ALLOWED
    if reach is Reach.OWN and rule.scope in (Scope.OPERATION, Scope.SELF) and _own(actor, owner):
        return Verdict.ALLOWED
    return Verdict.DENIED


def _own(actor: Actor, owner: str | None) -> bool:
    return actor.user is not None and owner == actor.user


def companies_for(actor: Actor, action: Action) -> frozenset[str] | None:
    """The companies in which ``action`` reaches anything for ``actor``; None means all.

    Core passes this list to the store, so a read is filtered in SQL.

    Example::

        companies_for(Actor.for_user("v", [("A", PermissionSet.VIEW)]), "list_audit")
        # frozenset(): VIEW does not read the audit log anywhere
    """
    rule = PERMISSIONS[action]
    if actor.is_super:
        return None if rule.cells[PermissionSet.SUPER] is not Reach.NONE else frozenset()
    return frozenset(c for c in actor.companies if rule.reach(actor.sets_in(c)) is not Reach.NONE)


def satisfies(actor: Actor, company: str, required: PermissionSet | None) -> bool:
    """True when ``actor`` holds ``required`` (or more) in ``company``; a task's requirement."""
    if required is None or actor.is_super:
        return True
    return any(s.includes(required) for s in actor.sets_in(company))


def _check_table() -> None:
    # Cells that cannot mean anything would be silent holes: refuse them at import.
    for action, rule in PERMISSIONS.items():
        if set(rule.cells) != set(PermissionSet):
            raise AssertionError(f"{action}: every permission set needs a cell")
        if rule.scope in (Scope.COMPANY, Scope.GLOBAL) and Reach.OWN in rule.cells.values():
            raise AssertionError(f"{action}: 'own' means nothing for a {rule.scope} action")


_check_table()
