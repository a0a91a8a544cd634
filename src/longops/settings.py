"""Settings from ``LONGOPS_*`` environment variables (and a ``.env`` file if present).

Example::

    LONGOPS_DATABASE_URL=postgresql://root@127.0.0.1/longops longops worker
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///longops.db"


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
    secret_key: str | None = None
    """The Fernet key (or comma-separated keys, newest first) that encrypts notification
    channels' URLs at rest (``LONGOPS_SECRET_KEY``); ``longops notifications key`` makes one."""
    base_url: str | None = None
    """Where people open the pages (``LONGOPS_BASE_URL``): notifications link to the
    operation's card under it."""
