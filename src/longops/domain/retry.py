"""Retry policies: how long to wait before the next attempt of a failed run.

The default is Business Central's: the operation's rerun delay plus an extra 10^n
milliseconds, where n is the number of attempts spent, capped at six hours from the eighth
attempt on. ``exponential`` doubles a base delay with jitter. A task may also pass its own
callable.

Example::

    >>> BusinessCentralBackoff().delay(attempt=3, rerun_delay=60)
    datetime.timedelta(seconds=61)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from longops.domain.errors import ValidationError

SIX_HOURS = timedelta(hours=6)


class RetryPolicy(Protocol):
    """Computes the wait before the attempt after ``attempt`` (1-based, the one that failed)."""

    def delay(self, attempt: int, rerun_delay: int) -> timedelta: ...

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class BusinessCentralBackoff:
    """``rerun_delay`` seconds plus 10^attempt ms; the extra part is 6 h past attempt 7."""

    def delay(self, attempt: int, rerun_delay: int) -> timedelta:
        extra = SIX_HOURS if attempt > 7 else timedelta(milliseconds=10**attempt)
        return timedelta(seconds=rerun_delay) + extra

    def to_json(self) -> dict[str, Any]:
        return {"kind": "business_central"}


@dataclass(frozen=True, slots=True)
class ExponentialBackoff:
    """``base * factor^(attempt-1)`` capped at ``maximum``, spread by +/- ``jitter`` (0..1).

    The rerun delay is added on top, so the operation's own setting still holds.
    """

    base: float = 1.0
    factor: float = 2.0
    maximum: float = 3600.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if not 0 < self.base <= 86400:
            raise ValidationError("retry_policy.base", "must be > 0 and <= 86400 seconds")
        if not 1 <= self.factor <= 10:
            raise ValidationError("retry_policy.factor", "must be between 1 and 10")
        if not self.base <= self.maximum <= 7 * 86400:
            raise ValidationError("retry_policy.maximum", "must be >= base and <= 7 days")
        if not 0 <= self.jitter <= 1:
            raise ValidationError("retry_policy.jitter", "must be between 0 and 1")

    def delay(self, attempt: int, rerun_delay: int, rng: random.Random | None = None) -> timedelta:
        raw = min(self.base * self.factor ** max(attempt - 1, 0), self.maximum)
        spread = raw * self.jitter * (2 * (rng or random).random() - 1)
        return timedelta(seconds=rerun_delay + max(raw + spread, 0.0))

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "exponential",
            "base": self.base,
            "factor": self.factor,
            "maximum": self.maximum,
            "jitter": self.jitter,
        }


CustomRetry = Callable[[int, BaseException | None], timedelta]
"""A task's own policy: ``(attempt, error) -> delay``."""


@dataclass(frozen=True, slots=True)
class CustomBackoff:
    """Marks an operation whose task supplies the policy; the worker resolves the callable."""

    def delay(self, attempt: int, rerun_delay: int) -> timedelta:
        raise RuntimeError("a custom retry policy is resolved from the task registry")

    def to_json(self) -> dict[str, Any]:
        return {"kind": "custom"}


def policy_from_json(data: Mapping[str, Any] | None) -> RetryPolicy:
    """Rebuild a stored policy; ``None`` is the Business Central default."""
    if not data:
        return BusinessCentralBackoff()
    kind = data.get("kind")
    if kind == "business_central":
        return BusinessCentralBackoff()
    if kind == "custom":
        return CustomBackoff()
    if kind == "exponential":
        known = {"base", "factor", "maximum", "jitter"}
        unknown = set(data) - known - {"kind"}
        if unknown:
            raise ValidationError("retry_policy", f"unknown keys {sorted(unknown)}")
        try:
            return ExponentialBackoff(**{k: float(v) for k, v in data.items() if k in known})
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ValidationError):
                raise
            raise ValidationError("retry_policy", "values must be numbers") from exc
    raise ValidationError(
        "retry_policy.kind", "must be 'business_central', 'exponential' or 'custom'", kind
    )
