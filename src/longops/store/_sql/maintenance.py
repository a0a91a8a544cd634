"""Maintenance mode in the database: one row (``longops_maintenance``, migration 0013) that
the claim statement reads, and the switch that turns it on and off.

Turning it on takes the row's table lock on PostgreSQL (``lock_maintenance``), so it waits
for claims in flight and no claim lands after it commits; SQLite's write lock does the
same. ``longops db upgrade`` asks ``AdminSql._check_online`` before it applies a migration
that is not marked ``online``.

Example::

    store.start_maintenance("upgrade to 2.0", timedelta(seconds=60), now, audit=entry)
    store.maintenance_mode().active       # True
"""

from __future__ import annotations

from datetime import datetime, timedelta

from longops.domain.maintenance import MaintenanceMode
from longops.domain.users import AuditEntry
from longops.store._sql.core import SqlCore


class MaintenanceSql(SqlCore):
    def maintenance_mode(self) -> MaintenanceMode:
        """Maintenance mode as it stands (off in a database that predates it)."""
        row = self._one("get_maintenance")
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
