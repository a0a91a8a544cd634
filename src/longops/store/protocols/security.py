"""What a store keeps about people: users and their grants, API tokens, the pages'
sign-ins, the audit log, and a user's personal data."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from longops.domain.operation import (
    Attempt,
    Operation,
    OperationEvent,
)
from longops.domain.read_models import Notification
from longops.domain.security import PermissionSet
from longops.domain.users import ApiToken, AuditEntry, User, UserState, WebSession
from longops.store.protocols.operations import Companies


@dataclass(frozen=True, slots=True)
class PersonalData:
    """Every row that names a user: what ``longops users export`` prints."""

    user: User | None
    tokens: list[ApiToken]
    operations: list[Operation]
    attempts: list[Attempt]
    audit: list[AuditEntry]
    events: list[OperationEvent] = field(default_factory=list)
    """Timeline entries that name the user (who asked to cancel, who acted)."""
    notifications: list[Notification] = field(default_factory=list)
    """The user's inbox, in every company."""


class SecurityStore(Protocol):
    """Users, grants, tokens, web sessions, the audit log, personal data."""

    def insert_user(
        self, user: User, password_hash: str | None, *, audit: AuditEntry | None = None
    ) -> bool:
        """Create a user with its grants; False (and nothing written) when the name is taken."""
        ...

    def get_user(self, name: str) -> User | None: ...
    def list_users(self) -> list[User]: ...
    def get_password_hash(self, name: str) -> str | None: ...
    def set_password_hash(self, name: str, password_hash: str, at: datetime) -> bool: ...
    def set_user_state(
        self, name: str, state: UserState, at: datetime, *, audit: AuditEntry | None = None
    ) -> bool: ...
    def set_user_super(
        self, name: str, is_super: bool, at: datetime, *, audit: AuditEntry | None = None
    ) -> bool: ...
    def delete_user(self, name: str, *, audit: AuditEntry | None = None) -> bool: ...
    def grant(
        self,
        name: str,
        company: str,
        permission_set: PermissionSet,
        at: datetime,
        *,
        audit: AuditEntry | None = None,
    ) -> bool:
        """Add a membership; False when the user already holds it."""
        ...

    def revoke(
        self,
        name: str,
        company: str,
        permission_set: PermissionSet,
        *,
        audit: AuditEntry | None = None,
    ) -> bool: ...
    def active_users(self, names: Collection[str]) -> set[str]:
        """Those of ``names`` that are users in the active state."""
        ...

    def insert_token(
        self, token: ApiToken, token_hash: str, *, audit: AuditEntry | None = None
    ) -> bool:
        """Store a token's hash; False when the user has an unrevoked token of that name."""
        ...

    def get_token(self, token_id: uuid.UUID) -> tuple[ApiToken, str, UserState] | None:
        """A token, its stored hash and its user's state."""
        ...

    def token_user(self, token_id: uuid.UUID) -> tuple[ApiToken, str, User] | None:
        """A token, its stored hash and its user with the user's grants, in one read (what
        every API request needs first); None when either is missing."""
        ...

    def web_session_user(self, session_id: uuid.UUID) -> tuple[WebSession, str, User] | None:
        """A session of the pages, its stored secret hash and its user, in one read."""
        ...

    def touch_token(self, token_id: uuid.UUID, at: datetime, not_since: datetime) -> None:
        """Set last_used_at, unless it was already set after ``not_since`` (a cheap no-op)."""
        ...

    def list_tokens(self, user: str) -> list[ApiToken]: ...
    def revoke_token(
        self, token_id: uuid.UUID, at: datetime, *, audit: AuditEntry | None = None
    ) -> bool: ...
    def insert_web_session(
        self, session: WebSession, secret_hash: str, *, audit: AuditEntry | None = None
    ) -> None:
        """Store a new sign-in of the pages (the secret only as its hash)."""
        ...

    def get_web_session(self, session_id: uuid.UUID) -> tuple[WebSession, str, UserState] | None:
        """A session, its stored secret hash and its user's state."""
        ...

    def touch_web_session(self, session_id: uuid.UUID, at: datetime, not_since: datetime) -> None:
        """Set last_seen_at, unless it was already set after ``not_since`` (a cheap no-op)."""
        ...

    def list_web_sessions(self, user: str) -> list[WebSession]:
        """The user's sessions, newest first (ended ones too, until pruned)."""
        ...

    def revoke_web_sessions(
        self,
        user: str,
        at: datetime,
        session_id: uuid.UUID | None = None,
        *,
        audit: AuditEntry | None = None,
    ) -> int:
        """End one live session of ``user`` (``session_id``) or all of them; how many ended."""
        ...

    def record_audit(self, entry: AuditEntry) -> None: ...
    def list_audit(
        self,
        companies: Companies,
        *,
        include_global: bool,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditEntry]:
        """Newest first. Rows of companies outside ``companies`` are never returned; rows
        of no company (global actions) only with ``include_global``."""
        ...

    def personal_data(self, name: str) -> PersonalData: ...
    def forget_user(self, name: str, pseudonym: str, *, audit: AuditEntry | None = None) -> int:
        """Replace ``name`` by ``pseudonym`` in operations, attempts, notifications and the
        audit log and delete the user (memberships and tokens go with it); returns the rows
        changed."""
        ...
