"""Settings from ``LONGOPS_*`` environment variables (and a ``.env`` file if present).

Example::

    LONGOPS_DATABASE_URL=postgresql://root@127.0.0.1/longops longops worker
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///longops.db"


class ServerSettings(BaseSettings):
    """What ``longops serve`` guards itself with (``LONGOPS_*``; see docs/security.md).

    Example::

        LONGOPS_BASE_URL=https://ops.example.com LONGOPS_TRUSTED_PROXIES=10.0.0.5 longops serve
    """

    model_config = SettingsConfigDict(env_prefix="LONGOPS_", env_file=".env", extra="ignore")

    base_url: str | None = None
    """The pages' public origin (``https://ops.example.com``): forms must come from it
    (Origin/Referer). Unset: the origin the request itself was made to."""
    secure_cookies: bool | None = None
    """Mark the session cookie ``Secure`` (``__Host-`` prefixed). Unset: when the request
    came over HTTPS, or a trusted proxy says so with ``X-Forwarded-Proto``."""
    trusted_proxies: str = ""
    """Comma-separated addresses whose ``X-Forwarded-For``/``-Proto`` are believed."""
    max_body_api: int = 2_000_000
    """Bytes a REST API request body may have (413 beyond, while reading)."""
    max_body_form: int = 256_000
    """Bytes a form post of the pages may have."""
    signin_account_free: int = 3
    signin_account_lockout_after: int = 10
    signin_address_free: int = 10
    signin_address_lockout_after: int = 50
    signin_backoff_seconds: float = 1.0
    signin_backoff_max_seconds: float = 60.0
    signin_lockout_seconds: float = 900.0
    hash_slots: int = 2
    """Password hashes (64 MiB each) that may run at once."""
    hash_queue: int = 8
    """Password hashes that may wait for a slot; more are refused with 429."""
    session_idle_minutes: float = 120.0
    session_absolute_hours: float = 12.0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LONGOPS_", env_file=".env", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    app: str | None = None
    row_level_security: bool = False
    """PostgreSQL only: scope every transaction to its actor's companies
    (``LONGOPS_ROW_LEVEL_SECURITY=true``)."""
    stream_gap_timeout: float = 5.0
    """Seconds the live streams wait at most for a missing event id whose transaction may
    still commit (``LONGOPS_STREAM_GAP_TIMEOUT``); see ``longops.core.streams``."""
