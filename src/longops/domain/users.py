"""Users, API tokens and audit entries: the records behind ``domain.security``.

A password is kept only as an Argon2 hash (``core.security`` makes it); an API token only as
the SHA-256 of its text. Both are pure values here.

Example::

    >>> text = new_token_text(token_id)
    >>> parse_token(text) == token_id
    True
    >>> token_hash(text) == token_hash(text)
    True
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from longops.domain.errors import ValidationError
from longops.domain.security import FrontEnd, PermissionSet

TOKEN_PREFIX = "lo_"  # noqa: S105 - a prefix, not a secret
PSEUDONYM_PREFIX = "forgotten-"
_TOKEN_RE = re.compile(r"^lo_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$")
_SESSION_RE = re.compile(r"^([0-9a-f]{32})_([A-Za-z0-9_-]{43})$")


class UserState(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class User:
    """A person (or program) that acts through longops. The password hash stays in the store."""

    name: str
    display_name: str
    state: UserState
    is_super: bool
    created_at: datetime
    disabled_at: datetime | None
    has_password: bool
    grants: tuple[tuple[str, PermissionSet], ...] = ()
    """(company, permission set) pairs, sorted."""

    @property
    def active(self) -> bool:
        return self.state is UserState.ACTIVE

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "display_name": self.display_name,
            "state": self.state.value,
            "super": self.is_super,
            "created_at": _iso(self.created_at),
            "disabled_at": _iso(self.disabled_at),
            "has_password": self.has_password,
            "permission_sets": [{"company": c, "permission_set": s.value} for c, s in self.grants],
        }


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A named bearer token of a user. Its text is shown once and never stored."""

    id: uuid.UUID
    user: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def usable_at(self, now: datetime) -> bool:
        """Not revoked and not expired (the user's state is checked separately)."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "user": self.user,
            "name": self.name,
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
            "last_used_at": _iso(self.last_used_at),
            "revoked_at": _iso(self.revoked_at),
        }


@dataclass(frozen=True, slots=True)
class WebSession:
    """A sign-in of the pages, kept server-side so it can be ended: the cookie holds its
    id and a secret; the store only the secret's SHA-256 (``token_hash``).

    ``expires_at`` is the absolute end; idleness is judged from ``last_seen_at``.
    """

    id: uuid.UUID
    user: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    client: str = ""
    """Where it was signed in from (address and browser), to tell sessions apart."""

    def usable_at(self, now: datetime, idle: timedelta) -> bool:
        """Not revoked, not past its absolute end, not idle longer than ``idle``."""
        return self.revoked_at is None and now < self.expires_at and now - self.last_seen_at < idle

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "user": self.user,
            "created_at": _iso(self.created_at),
            "last_seen_at": _iso(self.last_seen_at),
            "expires_at": _iso(self.expires_at),
            "revoked_at": _iso(self.revoked_at),
            "client": self.client,
        }


def new_session_text(session_id: uuid.UUID) -> str:
    """A session's cookie value: its id and 256 random bits (kept as SHA-256, like a token)."""
    return f"{session_id.hex}_{secrets.token_urlsafe(32)}"


def parse_session(text: str) -> uuid.UUID | None:
    """The session id inside ``text``, or None when it is not shaped like one."""
    match = _SESSION_RE.fullmatch(text) if isinstance(text, str) else None
    return None if match is None else uuid.UUID(hex=match.group(1))


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One operator action: who, when, what, on what, from which front end.

    ``company`` is None for actions that span companies (users, tokens, queues); such rows
    are visible to SUPER only. ``actor`` is None for the local super actor.
    """

    at: datetime
    actor: str | None
    front_end: FrontEnd
    action: str
    target: str
    company: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None
    """The log's own number, set when read back."""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "company": self.company,
            "at": _iso(self.at),
            "actor": self.actor,
            "front_end": self.front_end.value,
            "action": self.action,
            "target": self.target,
            "details": dict(self.details),
        }


def new_token_text(token_id: uuid.UUID) -> str:
    """A fresh token: the prefix, the token's id, and 256 random bits.

    The recognisable prefix lets secret scanners and people spot a leaked token; the id
    lets the store find the row without searching by the secret.
    """
    return f"{TOKEN_PREFIX}{token_id.hex}_{secrets.token_urlsafe(32)}"


def parse_token(text: str) -> uuid.UUID | None:
    """The token id inside ``text``, or None when ``text`` is not shaped like a token."""
    match = _TOKEN_RE.fullmatch(text) if isinstance(text, str) else None
    return None if match is None else uuid.UUID(hex=match.group(1))


def token_hash(text: str) -> str:
    """The stored form of a token.

    SHA-256, not Argon2: a token carries 256 random bits, so there is nothing to guess that
    a slow hash would protect, and a fast hash keeps every API request cheap.
    """
    return hashlib.sha256(text.encode()).hexdigest()


def token_matches(text: str, stored_hash: str) -> bool:
    """Compare in constant time, so response timing says nothing about the stored hash."""
    return hmac.compare_digest(token_hash(text), stored_hash)


def new_pseudonym() -> str:
    """What a forgotten user's name becomes in history.

    Random rather than a hash of the name: a hash of a short user name can be reversed by
    trying names, which would undo the forgetting.
    """
    return f"{PSEUDONYM_PREFIX}{secrets.token_hex(8)}"


def user_target(name: str) -> str:
    """How an audit row names the user it acts on (``users forget`` rewrites it)."""
    return f"user:{name}"


EMAIL_PATTERN = r"^[^@\s<>,;\"\x00]+@[^@\s<>,;\"\x00]+\.[^@\s<>,;\"\x00]+$"
"""One address: what the API's document states and what ``check_email`` enforces (no NUL
either: no stored text holds one, and the document must say so)."""
_EMAIL = re.compile(EMAIL_PATTERN)


def check_email(email: object) -> str:
    """An email address as a user's contact: one address, at most 254 characters.

    Example::

        >>> check_email("ann@example.com")
        'ann@example.com'
    """
    if not isinstance(email, str) or len(email) > 254 or not _EMAIL.fullmatch(email):
        raise ValidationError("email", "must be one email address such as ann@example.com", email)
    return email


def check_user_name(name: object) -> str:
    """A user name follows the same rule as other names and is not a pseudonym."""
    from longops.domain.operation import NAME_RE

    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ValidationError(
            "name",
            "must be 1-100 characters of letters, digits, '_', '.', ':' or '-', "
            "starting with a letter or digit",
            name,
        )
    if name.startswith(PSEUDONYM_PREFIX):
        raise ValidationError("name", f"must not start with {PSEUDONYM_PREFIX!r} (reserved)", name)
    return name


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
