"""Channel URLs encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256, from
``cryptography``), under a key derived from ``LONGOPS_SECRET_KEY``.

The same secret signs the pages' session cookies (at least 32 characters); the Fernet key
is derived from it with HKDF-SHA256 for this one purpose, so the two uses never share a
key. The secret is taken whole, as the cookies take it (commas and spaces included); after
a rotation the old ones, given as ``previous`` (``LONGOPS_PREVIOUS_SECRET_KEYS``), still
decrypt while the new one encrypts.

Example::

    box = SecretBox(SecretBox.generate_key())
    token = box.encrypt("json://user:pw@127.0.0.1/hook")
    box.decrypt(token)   # 'json://user:pw@127.0.0.1/hook'
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from typing import Any

from longops.domain.errors import ConfigurationError


class SecretBox:
    def __init__(self, key: str | None, previous: Sequence[str] = ()) -> None:
        if not key or not key.strip():
            raise ConfigurationError(
                "LONGOPS_SECRET_KEY is not set: channels keep their URLs encrypted with it "
                "(make one with `longops notifications key`)"
            )
        parts = [key, *(k for k in previous if k)]
        if any(len(k) < 32 for k in parts):
            # Never repeat the key in the message.
            raise ConfigurationError("LONGOPS_SECRET_KEY must be at least 32 characters")
        # Imported here, not with longops: worker children import longops and never need it.
        from cryptography.fernet import Fernet, MultiFernet

        self._fernet: Any = MultiFernet([Fernet(_derive(k)) for k in parts])

    @staticmethod
    def generate_key() -> str:
        """A new random secret for ``LONGOPS_SECRET_KEY`` (43 url-safe characters)."""
        return secrets.token_urlsafe(32)

    def encrypt(self, text: str) -> str:
        return str(self._fernet.encrypt(text.encode()).decode())

    def decrypt(self, token: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return str(self._fernet.decrypt(token.encode()).decode())
        except InvalidToken:
            raise ConfigurationError(
                "a channel's URL cannot be decrypted with LONGOPS_SECRET_KEY (wrong key?)"
            ) from None


def _derive(secret: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"longops notification channels"
    ).derive(secret.encode())
    return base64.urlsafe_b64encode(key)
