"""Time-sortable identifiers (UUID version 7, RFC 9562).

Example::

    >>> new_id(datetime(2026, 1, 1, tzinfo=UTC)).version
    7
"""

from __future__ import annotations

import os
import threading
import uuid
from datetime import datetime

_local = threading.local()
_CHUNK = 10 * 512


def _random80() -> int:
    # One urandom call per 512 ids rather than per id: the system call dominated bulk
    # enqueue. Each thread has its own buffer, so no two threads share random bits.
    buf: bytes | None = getattr(_local, "buf", None)
    pos: int = getattr(_local, "pos", _CHUNK)
    if buf is None or pos >= _CHUNK:
        buf, pos = os.urandom(_CHUNK), 0
        _local.buf = buf
    _local.pos = pos + 10
    return int.from_bytes(buf[pos : pos + 10], "big")


def new_id(at: datetime) -> uuid.UUID:
    """A UUIDv7 whose first 48 bits are ``at`` in Unix milliseconds, the rest random."""
    millis = int(at.timestamp() * 1000) & ((1 << 48) - 1)
    rand = _random80()
    value = (millis << 80) | rand
    # Version and RFC 4122 variant bits, per RFC 9562 section 5.7.
    value &= ~(0xF << 76)
    value |= 0x7 << 76
    value &= ~(0x3 << 62)
    value |= 0x2 << 62
    return uuid.UUID(int=value)
