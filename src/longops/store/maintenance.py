"""Maintenance mode in the database: one row (``longops_maintenance``, migration 0013) that
the claim statement reads, and the switch that turns it on and off.

Turning it on takes the row's table lock on PostgreSQL (``lock_maintenance``), so it waits
for claims in flight and no claim lands after it commits; SQLite's write lock does the
same. ``longops db upgrade`` asks :meth:`MaintenanceSql._check_online` before it applies a
migration that is not marked ``online``.

Example::

    store.start_maintenance("upgrade to 2.0", timedelta(seconds=60), now, audit=entry)
    store.maintenance_mode().active       # True
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from longops.domain.errors import ConfigurationError
from longops.domain.maintenance import MaintenanceMode
from longops.domain.users import AuditEntry
from longops.store.migrate import (
    MAINTENANCE_MIGRATION,
    Migration,
    offline_refusal,
)


class MaintenanceSql:
    """The maintenance-mode methods of the SQL stores (a base of ``SqlStore``)."""

    if TYPE_CHECKING:
        q: dict[str, str]

        def _tx(self) -> AbstractContextManager[Any]: ...
        def _read(self) -> AbstractContextManager[Any]: ...
        def _audit(self, cur: Any, entry: AuditEntry | None) -> None: ...
        def _wake(self, queue: str) -> None: ...
        def enc_ts(self, value: datetime | None) -> Any: ...
        def dec_ts_opt(self, value: Any) -> datetime | None: ...

    def maintenance_mode(self) -> MaintenanceMode:
        """Maintenance mode as it stands (off in a database that predates it)."""
        with self._read() as cur:
            cur.execute(self.q["get_maintenance"])
            row = cur.fetchone()
        return MaintenanceMode(False) if row is None else self._maintenance(row)

    def start_maintenance(
        self,
        reason: str | None,
        drain_timeout: timedelta,
        at: datetime,
        *,
        audit: AuditEntry | None = None,
    ) -> MaintenanceMode | None:
        """Turn it on; None (nothing written) when it already was."""
        with self._tx() as cur:
            cur.execute(self.q["lock_maintenance"])
            cur.execute(
                self.q["start_maintenance"],
                {
                    "reason": reason,
                    "drain_timeout": drain_timeout.total_seconds(),
                    "at": self.enc_ts(at),
                },
            )
            row = cur.fetchone()
            if row is None:
                return None
            self._audit(cur, audit)
            return self._maintenance(row)

    def stop_maintenance(
        self, at: datetime, *, audit: AuditEntry | None = None
    ) -> MaintenanceMode | None:
        """Turn it off and wake the idle dispatchers; None (nothing written) when it was off."""
        with self._tx() as cur:
            cur.execute(self.q["stop_maintenance"], {"at": self.enc_ts(at)})
            row = cur.fetchone()
            if row is None:
                return None
            self._audit(cur, audit)
            mode = self._maintenance(row)
        self._wake("*")
        return mode

    def _maintenance(self, row: Mapping[str, Any]) -> MaintenanceMode:
        return MaintenanceMode(
            active=bool(row["active"]),
            reason=row["reason"],
            drain_timeout=timedelta(seconds=float(row["drain_timeout"])),
            started_at=self.dec_ts_opt(row["started_at"]),
            stopped_at=self.dec_ts_opt(row["stopped_at"]),
        )

    def _check_online(self, cur: Any, applied: Collection[int], pending: list[Migration]) -> None:
        """Refuse (in ``migrate``'s transaction) pending migrations not marked ``online``
        while maintenance mode is off. A database with no migrations yet has no workers to
        protect, and one from before maintenance mode cannot be in it: both go ahead."""
        offline = [m for m in pending if not m.online]
        if not offline or MAINTENANCE_MIGRATION not in applied:
            return
        cur.execute(self.q["get_maintenance"])
        row = cur.fetchone()
        if row is None or not row["active"]:
            raise ConfigurationError(offline_refusal(offline))
