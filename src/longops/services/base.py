"""What every periodic service has: a name, an interval and ``run_once()``."""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol


class Service(Protocol):
    name: str
    interval: timedelta

    def run_once(self) -> int:
        """Do one round of the duty; returns how many things it changed."""
        ...
