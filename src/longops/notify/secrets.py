"""Channel URLs encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256, from
``cryptography``), under a key from ``LONGOPS_SECRET_KEY``.

Several keys, comma-separated, rotate: the first encrypts, any decrypts.

Example::

    box = SecretBox(SecretBox.generate_key())
    token = box.encrypt("json://user:pw@127.0.0.1/hook")
    box.decrypt(token)   # 'json://user:pw@127.0.0.1/hook'
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from longops.domain.errors import ConfigurationError


class SecretBox:
    def __init__(self, keys: str | None) -> None:
        if not keys or not keys.strip():
            raise ConfigurationError(
                "LONGOPS_SECRET_KEY is not set: channels keep their URLs encrypted with it "
                "(make one with `longops notifications key`)"
            )
        try:
            self._fernet = MultiFernet([Fernet(k.strip()) for k in keys.split(",") if k.strip()])
        except ValueError:
            # Never repeat the key in the message.
            raise ConfigurationError(
                "LONGOPS_SECRET_KEY must be a Fernet key (32 url-safe base64-encoded bytes)"
            ) from None

    @staticmethod
    def generate_key() -> str:
        """A new random key for ``LONGOPS_SECRET_KEY``."""
        return Fernet.generate_key().decode()

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ConfigurationError(
                "a channel's URL cannot be decrypted with LONGOPS_SECRET_KEY (wrong key?)"
            ) from None
