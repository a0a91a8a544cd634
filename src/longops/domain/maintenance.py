"""Maintenance mode: one switch for the whole database that stops every claim.

While it is on, no worker claims (the claim statement itself refuses, so a worker that has
not noticed yet takes nothing either); runs in progress may finish within the drain
timeout, counted from when it began, after which each worker hands back what still runs
without spending an attempt (status reason ``maintenance``); enqueueing goes on, and ready
operations wait with the wait reason ``maintenance``. A schema migration that is not marked
``online`` is applied only while it is on (``longops db upgrade``).

Example::

    mode = MaintenanceMode(True, "upgrade to 2.0", timedelta(seconds=60), started_at=now)
    mode.drain_deadline           # now + 60 s
    mode.wait_message()           # 'maintenance mode since ...: upgrade to 2.0; ...'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from longops.domain.errors import ValidationError

DEFAULT_DRAIN_TIMEOUT = 60.0
"""Seconds running work may take to finish once maintenance mode began, by default."""
MAX_DRAIN_TIMEOUT = 7 * 24 * 3600.0
"""The longest drain timeout (a week): longer is a typo, not a plan."""
MAX_REASON_CHARS = 500
"""The longest reason (it is shown in a banner on every page)."""


@dataclass(frozen=True, slots=True)
class MaintenanceMode:
    """Whether maintenance mode is on, why, since when, and its drain timeout."""

    active: bool
    reason: str | None = None
    drain_timeout: timedelta = timedelta(seconds=DEFAULT_DRAIN_TIMEOUT)
    started_at: datetime | None = None
    """When it was last started (kept after it stops)."""
    stopped_at: datetime | None = None
    """When it was last stopped (None while on, or if it never was)."""

    @property
    def drain_deadline(self) -> datetime | None:
        """When workers hand back the runs still going (None while off)."""
        if not self.active or self.started_at is None:
            return None
        return self.started_at + self.drain_timeout

    def wait_message(self) -> str:
        """What a ready operation's wait reason says while it is on."""
        since = "" if self.started_at is None else f" since {self.started_at.isoformat()}"
        why = f": {self.reason}" if self.reason else ""
        return f"maintenance mode{since}{why}; nothing starts until it stops"

    def hand_back_message(self, session: object) -> str:
        """What the attempt of a run handed back at the drain deadline says."""
        why = f" ({self.reason})" if self.reason else ""
        return (
            f"worker session {session} handed the run back: maintenance mode{why} began and "
            f"the run did not end within its drain timeout of "
            f"{self.drain_timeout.total_seconds():g} s; the attempt is not spent"
        )

    def to_json(self) -> dict[str, Any]:
        """The mode as the CLI's ``--json`` and the API show it.

        Example::

            MaintenanceMode(False).to_json()["active"]     # False
        """
        deadline = self.drain_deadline
        return {
            "active": self.active,
            "reason": self.reason,
            "drain_timeout": self.drain_timeout.total_seconds(),
            "started_at": None if self.started_at is None else self.started_at.isoformat(),
            "stopped_at": None if self.stopped_at is None else self.stopped_at.isoformat(),
            "drain_deadline": None if deadline is None else deadline.isoformat(),
        }


def check_drain_timeout(seconds: float | int | None) -> timedelta:
    """The drain timeout as given (seconds, 0 to a week), or :data:`DEFAULT_DRAIN_TIMEOUT`.

    Example::

        check_drain_timeout(30)      # timedelta(seconds=30)
        check_drain_timeout(-1)      # ValidationError: drain_timeout: must be 0 or more ...
    """
    if seconds is None:
        return timedelta(seconds=DEFAULT_DRAIN_TIMEOUT)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ValidationError("drain_timeout", "must be a number of seconds", seconds)
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_DRAIN_TIMEOUT:
        raise ValidationError(
            "drain_timeout",
            f"must be 0 or more seconds, at most {MAX_DRAIN_TIMEOUT:g} (a week)",
            seconds,
        )
    return timedelta(seconds=seconds)


def check_reason(reason: str | None) -> str | None:
    """The reason, stripped (None when blank); at most :data:`MAX_REASON_CHARS` characters
    and no NUL."""
    if reason is None:
        return None
    if not isinstance(reason, str):
        raise ValidationError("reason", "must be text", reason)
    text = reason.strip()
    if len(text) > MAX_REASON_CHARS:
        raise ValidationError("reason", f"must be at most {MAX_REASON_CHARS} characters")
    if "\x00" in text:
        raise ValidationError("reason", "must not contain NUL characters")
    return text or None
