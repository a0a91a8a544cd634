"""What a store keeps about maintenance mode: one switch the claim reads."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from longops.domain.maintenance import MaintenanceMode
from longops.domain.users import AuditEntry


class MaintenanceStore(Protocol):
    """Maintenance mode: while it is on, the claim takes nothing (``claim_operations``)."""

    def maintenance_mode(self) -> MaintenanceMode: ...
    def start_maintenance(
        self,
        reason: str | None,
        drain_timeout: timedelta,
        at: datetime,
        *,
        audit: AuditEntry | None = None,
    ) -> MaintenanceMode | None:
        """Turn it on once no claim is in flight; None (nothing written) when it was on."""
        ...

    def stop_maintenance(
        self, at: datetime, *, audit: AuditEntry | None = None
    ) -> MaintenanceMode | None: ...
