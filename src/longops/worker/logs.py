"""Log redaction by data class: structured log fields carry only what their class allows.

The worker itself never puts task arguments, results or error text into a log message at
the default level. ``RedactingFilter`` is the net under that rule for structured fields
(``extra=``): attach it to a handler and every field whose class is not allowed is replaced
by a marker naming the class (``domain.classification``).

Example::

    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())                      # the default classes
    handler.addFilter(RedactingFilter({DataClass.SYSTEM_METADATA}))   # stricter
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from longops.domain.classification import LOG_FIELDS, LOGGED_BY_DEFAULT, DataClass, loggable


class RedactingFilter(logging.Filter):
    """Redact structured log fields by the class of the column they come from."""

    def __init__(self, allowed: Iterable[DataClass] = LOGGED_BY_DEFAULT) -> None:
        super().__init__()
        self.allowed = frozenset(allowed)

    def filter(self, record: logging.LogRecord) -> bool:
        for field, column in LOG_FIELDS.items():
            if field in record.__dict__:
                record.__dict__[field] = loggable(column, record.__dict__[field], self.allowed)
        return True
