"""Expiry: ready operations past their expiration are cancelled with reason ``expired``.

Business Central deletes such an entry at dispatch; longops keeps it, cancelled, so that
people can see what did not run and why.
"""

from __future__ import annotations

from datetime import timedelta

from longops import telemetry
from longops.domain.clock import Clock
from longops.store.base import Store

INTERVAL = timedelta(seconds=5)


class Expiry:
    name = "expiry"

    def __init__(self, store: Store, clock: Clock, *, interval: timedelta = INTERVAL) -> None:
        self.store = store
        self.clock = clock
        self.interval = interval

    def run_once(self) -> int:
        expired = self.store.expire_operations(self.clock.now())
        telemetry.expired(expired)
        return len(expired)
