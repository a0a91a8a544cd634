"""Time-sortable identifiers (UUID version 7, RFC 9562).

Example::

    >>> new_id(datetime(2026, 1, 1, tzinfo=UTC)).version
    7
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime


def new_id(at: datetime) -> uuid.UUID:
    """A UUIDv7 whose first 48 bits are ``at`` in Unix milliseconds, the rest random."""
    millis = int(at.timestamp() * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis << 80) | rand
    # Version and RFC 4122 variant bits, per RFC 9562 section 5.7.
    value &= ~(0xF << 76)
    value |= 0x7 << 76
    value &= ~(0x3 << 62)
    value |= 0x2 << 62
    return uuid.UUID(int=value)
