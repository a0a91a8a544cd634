"""Reading what a form posted: task arguments as JSON, a date and time in the company's
time zone, a whole number; and a refused form to draw again with its message.

Each raises ``ValidationError`` (a 400 page, or the form again beside the field).

Example::

    args, kwargs = parse_args('{"month": "2026-01"}')       # ((), {"month": "2026-01"})
    parse_local("2026-01-31 18:00", ctx, "earliest_start")  # in the company's zone
    whole_number("max_attempts", "", 3)                     # 3 (empty: the default)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from longops.domain.errors import ValidationError
from longops.web.context import Context


@dataclass(frozen=True, slots=True)
class FormError:
    """A refused form: the field at fault, the sentence shown beside it, what was typed."""

    field: str
    message: str
    given: Mapping[str, str]


def parse_args(text: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The task's arguments from the form: a JSON list (positional) or object (keywords)."""
    if not text.strip():
        return (), {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError("args", f"must be JSON: {exc.msg}") from None
    if isinstance(data, list):
        return tuple(data), {}
    if isinstance(data, dict):
        return (), data
    raise ValidationError("args", "must be a JSON list (positional) or object (keywords)")


def parse_local(value: str, ctx: Context, field: str) -> datetime | None:
    """A date-and-time field (ISO, "YYYY-MM-DD HH:MM[:SS]"), read in the company's time zone."""
    if not value.strip():
        return None
    try:
        naive = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(field, "must be a date and time (YYYY-MM-DD HH:MM)", value) from None
    if naive.tzinfo is not None:
        return naive
    return naive.replace(tzinfo=ctx.zone)


def whole_number(field: str, text: str, default: int) -> int:
    """A whole-number field; ``default`` when left empty."""
    if not text.strip():
        return default
    try:
        return int(text.strip())
    except ValueError:
        raise ValidationError(field, "must be a whole number", text) from None
