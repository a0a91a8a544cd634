"""Company time zones, read once per company (recurrence is evaluated in them)."""

from __future__ import annotations

import threading
from zoneinfo import ZoneInfo

from longops.store.base import Store


class CompanyZones:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._zones: dict[str, ZoneInfo] = {}
        self._lock = threading.Lock()

    def known(self, company: str) -> ZoneInfo | None:
        """The zone if it was read already (no database call: safe on the event loop)."""
        with self._lock:
            return self._zones.get(company)

    def __call__(self, company: str) -> ZoneInfo:
        with self._lock:
            zone = self._zones.get(company)
        if zone is None:
            found = self._store.get_company(company)
            zone = ZoneInfo(found.time_zone if found else "UTC")
            with self._lock:
                self._zones[company] = zone
        return zone
