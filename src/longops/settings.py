"""Settings from ``LONGOPS_*`` environment variables (and a ``.env`` file if present).

Example::

    LONGOPS_DATABASE_URL=postgresql://root@127.0.0.1/longops longops worker

The connection and payload settings (``LONGOPS_POOL_SIZE``, ``LONGOPS_LOCK_TIMEOUT``,
``LONGOPS_MAX_RESULT_BYTES``, ...) are the defaults of the same-named arguments of
:class:`longops.Longops`; ``docs/design.md`` ("Connections and locks", "Payload limits")
says what each bounds.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from longops.domain.limits import (
    DEFAULT_MAX_ARGUMENT_BYTES,
    DEFAULT_MAX_CHECKPOINT_BYTES,
    DEFAULT_MAX_PROGRESS_MESSAGE_CHARS,
    DEFAULT_MAX_RESULT_BYTES,
    PayloadLimits,
)
from longops.store.base import (
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT,
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_MAINTENANCE_TIMEOUT,
    DEFAULT_POOL_SIZE,
    DEFAULT_STATEMENT_TIMEOUT,
    StoreOptions,
)

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
    api_token_cache_seconds: float = 1.0
    """Seconds a server process trusts an API token it verified (0: check every request).
    A token revoked, or a user disabled or re-granted, through the CLI, the library or
    another server is refused at most this late; through the same server (any of its
    ``--processes``) at once (docs/security.md)."""
    api_wait_context_seconds: float = 1.0
    """Seconds a server process derives ready operations' wait reasons from the queues,
    categories, sessions and users it read (0: read them for every answer). A change made
    through the same process shows at once; one made elsewhere at most this late
    (docs/api.md)."""


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

    # -- connections and locks (see StoreOptions) -----------------------------------------
    pool_size: int = DEFAULT_POOL_SIZE
    """PostgreSQL: most pooled connections of one process (``LONGOPS_POOL_SIZE``)."""
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    """PostgreSQL: seconds a statement waits for a lock held elsewhere
    (``LONGOPS_LOCK_TIMEOUT``; 0: no limit)."""
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT
    """PostgreSQL: seconds one statement may run (``LONGOPS_STATEMENT_TIMEOUT``; 0: none)."""
    idle_in_transaction_timeout: float = DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT
    """PostgreSQL: seconds a session may sit idle in an open transaction before the server
    ends it (``LONGOPS_IDLE_IN_TRANSACTION_TIMEOUT``; 0: no limit)."""
    maintenance_timeout: float = DEFAULT_MAINTENANCE_TIMEOUT
    """PostgreSQL: the statement timeout of work long by nature: migrations, pruning, a
    streamed bulk enqueue (``LONGOPS_MAINTENANCE_TIMEOUT``)."""
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    """SQLite: seconds a write waits for the write lock (``LONGOPS_BUSY_TIMEOUT``)."""

    # -- payload limits (see PayloadLimits) -------------------------------------------------
    max_argument_bytes: int = DEFAULT_MAX_ARGUMENT_BYTES
    """An operation's arguments as JSON, refused at enqueue above this
    (``LONGOPS_MAX_ARGUMENT_BYTES``)."""
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES
    """A run's result as JSON; above it the attempt fails (``LONGOPS_MAX_RESULT_BYTES``)."""
    max_checkpoint_bytes: int = DEFAULT_MAX_CHECKPOINT_BYTES
    """A checkpoint's state as JSON; above it ``ctx.checkpoint`` raises
    (``LONGOPS_MAX_CHECKPOINT_BYTES``)."""
    max_progress_message_chars: int = DEFAULT_MAX_PROGRESS_MESSAGE_CHARS
    """A progress message's characters; above it ``ctx.progress`` raises
    (``LONGOPS_MAX_PROGRESS_MESSAGE_CHARS``)."""

    def store_options(self) -> StoreOptions:
        return StoreOptions(
            pool_size=self.pool_size,
            lock_timeout=self.lock_timeout,
            statement_timeout=self.statement_timeout,
            idle_in_transaction_timeout=self.idle_in_transaction_timeout,
            maintenance_timeout=self.maintenance_timeout,
            busy_timeout=self.busy_timeout,
        )

    def payload_limits(self) -> PayloadLimits:
        return PayloadLimits(
            arguments=self.max_argument_bytes,
            result=self.max_result_bytes,
            checkpoint=self.max_checkpoint_bytes,
            progress_message=self.max_progress_message_chars,
        )

    secret_key: str | None = None
    """The secret (at least 32 characters) that signs the pages' cookies and, through a key
    derived from it, encrypts notification channels' URLs at rest (``LONGOPS_SECRET_KEY``);
    ``longops notifications key`` makes one."""
    previous_secret_keys: str = ""
    """Earlier values of ``LONGOPS_SECRET_KEY``, comma-separated, that still decrypt channels
    after a rotation (``LONGOPS_PREVIOUS_SECRET_KEYS``)."""
    base_url: str | None = None
    """Where people open the pages (``LONGOPS_BASE_URL``): notifications link to the
    operation's card under it."""
    notify_customer_content: bool = False
    """Notifications may carry customer content: an error's text, not only its type
    (``LONGOPS_NOTIFY_CUSTOMER_CONTENT``; see docs/notifications.md)."""
