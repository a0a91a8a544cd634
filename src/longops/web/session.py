"""The pages' session: a signed cookie naming the signed-in user, with its CSRF token.

The cookie holds ``{"u": user or null, "s": the server-side session's id and secret, "c":
csrf token, "t": issued at, "f": a one-time notice, "o": the operation a notice awaits the
end of}`` as JSON, then an HMAC-SHA256 of it
under the server's key. A changed or foreign cookie is treated as no cookie at all. The
session itself lives in the store (``core.security.start_session``): signing out, "sign out
everywhere" and disabling the user end it there, so a copied cookie stops working at once.
Who the user is and what they may do is read from the store on every request.

Over HTTPS the cookie is named ``__Host-longops_session`` and marked ``Secure``: a browser
then sends it only to this host over TLS, and no sibling domain can set it.

Every form carries the session's CSRF token (``csrf_token``); a POST whose token does not
match the cookie's is refused (403). The sign-in form has one too: a visitor gets an
anonymous session (no user) with a token before signing in.

Example::

    signer = CookieSigner(b"a key of at least 32 bytes ....")
    text = signer.dump(SessionData(user="alice", csrf="..."))
    signer.load(text).user      # "alice"
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, replace

COOKIE = "longops_session"
SECURE_COOKIE = "__Host-longops_session"
"""The name over HTTPS: the prefix makes browsers insist on Secure, Path=/ and no Domain."""
MAX_AGE = 12 * 3600
"""Seconds the cookie lasts at most; the server-side session's own lifetimes (idle and
absolute, ``LONGOPS_SESSION_*``) decide when a sign-in ends."""


@dataclass(frozen=True, slots=True)
class SessionData:
    """What the cookie says: who signed in (None: nobody yet) and the CSRF token."""

    user: str | None
    csrf: str
    issued_at: float = 0.0
    notice: str | None = None
    """A message shown once on the next page (what a bulk action did, say)."""
    sid: str | None = None
    """The server-side session's cookie text (id and secret); None before signing in."""
    undo: tuple[str, ...] = ()
    """With the notice of a Delete that can be undone: the deleted operations' ids (the
    notice's Undo button puts them back)."""
    about: str | None = None
    """With a notice that foretells an operation's end ("asked to stop"): that operation's
    id (its card says what happened instead once it is done)."""

    @classmethod
    def anonymous(cls) -> SessionData:
        return cls(user=None, csrf=secrets.token_urlsafe(32), issued_at=time.time())

    def signed_in(self, user: str, sid: str | None = None) -> SessionData:
        # A new token on sign-in: a token seen before signing in is worth nothing after.
        return SessionData(
            user=user, csrf=secrets.token_urlsafe(32), issued_at=time.time(), sid=sid
        )

    def with_notice(
        self, notice: str | None, undo: tuple[str, ...] = (), about: str | None = None
    ) -> SessionData:
        kept = notice is not None
        return replace(
            self, notice=notice, undo=undo if kept else (), about=about if kept else None
        )

    def csrf_ok(self, token: str | None) -> bool:
        return isinstance(token, str) and hmac.compare_digest(token, self.csrf)


class CookieSigner:
    """Signs and checks session cookies with one server key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the session key must be at least 32 bytes")
        self._key = key

    def _mac(self, payload: bytes) -> str:
        digest = hmac.new(self._key, payload, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def dump(self, data: SessionData) -> str:
        raw = json.dumps(
            {
                "u": data.user,
                "s": data.sid,
                "c": data.csrf,
                "t": data.issued_at,
                "f": data.notice,
                **({"d": list(data.undo)} if data.undo else {}),
                **({"o": data.about} if data.about else {}),
            },
            separators=(",", ":"),
        ).encode()
        payload = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return f"{payload}.{self._mac(payload.encode())}"

    def load(self, text: str | None, *, now: float | None = None) -> SessionData | None:
        """The session a cookie stands for; None when it is missing, forged or too old."""
        if not text or "." not in text:
            return None
        payload, _, mac = text.rpartition(".")
        if not hmac.compare_digest(mac, self._mac(payload.encode())):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return None
        if not isinstance(data, dict):
            return None
        user, csrf, issued, notice = data.get("u"), data.get("c"), data.get("t"), data.get("f")
        sid, undo, about = data.get("s"), data.get("d"), data.get("o")
        if not isinstance(csrf, str) or not isinstance(issued, (int, float)):
            return None
        if user is not None and not isinstance(user, str):
            return None
        current = time.time() if now is None else now
        if user is not None and current - issued > MAX_AGE:
            return None
        return SessionData(
            user=user,
            csrf=csrf,
            issued_at=float(issued),
            notice=notice if isinstance(notice, str) else None,
            sid=sid if isinstance(sid, str) else None,
            undo=tuple(i for i in undo if isinstance(i, str)) if isinstance(undo, list) else (),
            about=about if isinstance(about, str) else None,
        )
