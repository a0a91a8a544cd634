"""How large the data an operation carries may be.

An operation's arguments, its result and its checkpoint travel through the database as
JSON text. Each has a size limit, far below what strains the database or its driver, so a
runaway payload is refused with a clear error instead of slowing or blocking everyone:

- arguments are refused at enqueue (``ValidationError`` naming ``args`` and the limit;
  nothing is written);
- a result or a checkpoint over its limit fails the attempt like a task error (its message
  names the limit), and the retry policy applies;
- a progress message longer than its limit (in characters: it is shown, not stored as a
  blob) raises ``ValidationError`` in task code.

Example::

    limits = PayloadLimits(arguments=4 * MIB)
    limits.check("args", '{"args":[],"kwargs":{}}', limits.arguments, "LONGOPS_MAX_ARGUMENT_BYTES")
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from longops.domain.errors import ValidationError
from longops.domain.progress import MAX_MESSAGE

KIB = 1024
MIB = 1024 * KIB

DEFAULT_MAX_ARGUMENT_BYTES = MIB
DEFAULT_MAX_RESULT_BYTES = MIB
DEFAULT_MAX_CHECKPOINT_BYTES = MIB
DEFAULT_MAX_PROGRESS_MESSAGE_CHARS = MAX_MESSAGE
CEILING_BYTES = 256 * MIB
"""No limit may be set above this: PostgreSQL refuses a single value over 1 GB, and long
before that one payload would hold a worker's writes for seconds."""
CEILING_MESSAGE_CHARS = 16 * KIB
"""Every progress write is also a timeline event: a message is kept short."""


def json_size(text: str) -> int:
    """Bytes of ``text`` as UTF-8: what the database stores (longops writes its JSON with
    non-ASCII characters as themselves, see :func:`dumps`, so "é" counts 2 bytes and "€"
    3, not the 6 of a ``\\u`` escape). ASCII text is its length."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _encoders(**options: Any) -> tuple[Callable[[Any], str], Callable[[Any], str]]:
    plain = json.JSONEncoder(allow_nan=False, ensure_ascii=False, **options).encode
    escaped = json.JSONEncoder(allow_nan=False, **options).encode
    return plain, escaped


_COMPACT = _encoders(separators=(",", ":"))
_SPACED = _encoders()


def dumps(value: Any, *, compact: bool = True) -> str:
    """The JSON text longops stores for arguments, results and checkpoints: non-ASCII
    characters as themselves (UTF-8 in the database, what :func:`json_size` measures), not
    as ``\\u`` escapes six bytes each. Text with a lone surrogate, which UTF-8 cannot
    carry, keeps its escapes. Raises TypeError/ValueError as ``json.dumps`` does (NaN and
    infinities are refused). ``compact``: no spaces after ``,`` and ``:``."""
    plain, escaped = _COMPACT if compact else _SPACED
    text = plain(value)
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return escaped(value)
    return text


@dataclass(frozen=True, slots=True)
class PayloadLimits:
    """Size limits in bytes of the JSON an operation carries; see the module docstring.

    Settings: ``LONGOPS_MAX_ARGUMENT_BYTES``, ``LONGOPS_MAX_RESULT_BYTES``,
    ``LONGOPS_MAX_CHECKPOINT_BYTES`` (each 1 MiB by default) and
    ``LONGOPS_MAX_PROGRESS_MESSAGE_CHARS`` (500 characters).
    """

    arguments: int = DEFAULT_MAX_ARGUMENT_BYTES
    result: int = DEFAULT_MAX_RESULT_BYTES
    checkpoint: int = DEFAULT_MAX_CHECKPOINT_BYTES
    progress_message: int = DEFAULT_MAX_PROGRESS_MESSAGE_CHARS

    def __post_init__(self) -> None:
        for name in ("arguments", "result", "checkpoint"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= CEILING_BYTES:
                raise ValidationError(
                    f"max_{name}_bytes", f"must be between 1 and {CEILING_BYTES} bytes", value
                )
        message = self.progress_message
        if not isinstance(message, int) or not 1 <= message <= CEILING_MESSAGE_CHARS:
            raise ValidationError(
                "max_progress_message_chars",
                f"must be between 1 and {CEILING_MESSAGE_CHARS} characters",
                message,
            )

    @staticmethod
    def check(field: str, text: str, limit: int, setting: str) -> None:
        """Raise ValidationError naming ``field`` when ``text`` is over ``limit`` bytes."""
        size = json_size(text)
        if size > limit:
            raise ValidationError(field, too_large(limit, setting), size)


def too_large(limit: int, setting: str) -> str:
    """The rule a payload over ``limit`` broke, in words."""
    return f"must be at most {shown(limit)} as JSON (the limit is set by {setting})"


def shown(size: int) -> str:
    """``1048576`` -> ``1 MiB (1048576 bytes)``."""
    for unit, name in ((MIB, "MiB"), (KIB, "KiB")):
        if size >= unit:
            return f"{size / unit:.3g} {name} ({size} bytes)"
    return f"{size} bytes"
